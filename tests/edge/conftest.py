"""Fixtures of the edge tests: the real asyncua machine simulator on a free port, and a small real HTTP
receiver (Starlette on uvicorn) playing the gateway's ``POST /v1/plant/events``.

The receiver answers like the saga does (``accepted``, ``duplicate`` for a repeated event id) and can
be switched to answer 503, to record-then-503 (an answer lost after the event was taken), to take the
events and answer a malformed 2xx body or one answering only the first event, to take them and never
answer (``hang``, until ``release`` is set), to refuse chosen event ids per event as the gateway does
(``{"http_status": 409, "error": ...}``, no event id), or be stopped. The real gateway is tested
elsewhere (tests of ``plantbridge/gateway``); here it only has to speak the wire format of
ARCHITECTURE §7.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import uvicorn
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from plantbridge.canonical import PlantEvent
from plantbridge.edge import EdgeAgent, load_config
from plantbridge_devtools.simulators.machines import MachineKind, MachineSimulator, MachineSpec
from tests.support import eventually as wait_for  # the edge tests' name for it
from tests.support import free_port

API_KEY = "edge-test-key"
SIM_URI = "urn:plantbridge:machine-simulator"
MACHINES = [
    MachineSpec("M01", work_center="ASSY-01"),
    MachineSpec("M02", work_center="ASSY-02"),
    MachineSpec("M03", work_center="ASSY-03"),
    MachineSpec("M04", work_center="ASSY-04"),
    MachineSpec("M05", work_center="ASSY-05"),
    MachineSpec("P01", work_center="PACK-01", kind=MachineKind.PACKML),
]


class Receiver:
    """The gateway, played by a real HTTP server that records what it accepted."""

    def __init__(self) -> None:
        self.port = free_port()
        self.mode = "ok"  # ok | 503 | accept_then_503 | 401 | malformed | partial | hang
        self.refuse: set[str] = set()  # event ids answered with a per-event 409
        self.refusals: dict[str, int] = {}
        self.release = asyncio.Event()  # ends a `hang`
        self.accepted: dict[str, dict[str, Any]] = {}
        self.order: list[str] = []  # event ids in the order they were first accepted
        self.received_at: dict[str, float] = {}
        self.posts = 0
        self.duplicates = 0
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def events(self, machine: str | None = None, event_type: str | None = None) -> list[dict[str, Any]]:
        found = [self.accepted[eid] for eid in self.order]
        return [
            e for e in found
            if (machine is None or e.get("equipment") == machine)
            and (event_type is None or e["event_type"] == event_type)
        ]

    async def handle(self, request: Request) -> Response:
        self.posts += 1
        if request.headers.get("authorization") != f"Bearer {API_KEY}" or self.mode == "401":
            return JSONResponse({"detail": "unauthorized"}, status_code=401)
        if self.mode == "503":
            return JSONResponse({"detail": "saga unavailable"}, status_code=503)
        body = await request.json()
        results = []
        for raw in body["events"]:
            event = PlantEvent.model_validate(raw)  # the wire format of §7, or the test fails
            if event.event_id in self.refuse:
                self.refusals[event.event_id] = self.refusals.get(event.event_id, 0) + 1
                results.append({"http_status": 409, "error": {
                    "status": 409, "code": "conflict", "message": "event id received before with other content",
                    "fields": []}})
                continue
            if event.event_id in self.accepted:
                self.duplicates += 1
                results.append({"event_id": event.event_id, "status": "duplicate"})
                continue
            self.accepted[event.event_id] = raw
            self.order.append(event.event_id)
            self.received_at[event.event_id] = time.time()
            results.append({"event_id": event.event_id, "status": "accepted", "order_state": "in_progress"})
        if self.mode == "accept_then_503":
            return JSONResponse({"detail": "answer lost"}, status_code=503)
        if self.mode == "malformed":
            return PlainTextResponse("<html>OK</html>", status_code=200)
        if self.mode == "partial":
            return JSONResponse({"results": results[:1]}, status_code=200)
        if self.mode == "hang":
            await self.release.wait()
        return JSONResponse({"results": results})

    async def start(self) -> None:
        app = Starlette(routes=[Route("/v1/plant/events", self.handle, methods=["POST"])])
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off",
                                timeout_graceful_shutdown=1)
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
        self._server = self._task = None


@pytest.fixture(scope="session")
async def sim() -> AsyncIterator[MachineSimulator]:
    simulator = MachineSimulator(f"opc.tcp://127.0.0.1:{free_port()}/plantbridge/", MACHINES)
    await simulator.start()
    yield simulator
    await simulator.stop()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()
    await rec.start()
    yield rec
    await rec.stop()


def edge_config_dict(
    endpoint: str, gateway: str, machines: list[str], tmp_path: Path, **overrides: Any
) -> dict[str, Any]:
    packml = {s.id for s in MACHINES if s.kind is MachineKind.PACKML}
    work_centers = {s.id: s.work_center for s in MACHINES}
    config: dict[str, Any] = {
        "plant": "1000",
        "source": "edge-1000",
        "gateway": {"url": gateway, "api_key_env": "PLANTBRIDGE_EDGE_TEST_KEY", "backoff_initial_s": 0.1,
                    "backoff_max_s": 0.5, "timeout_s": 3},
        # the session's simulator offers SecurityPolicy None (test_edge_opcua_security covers the secure path)
        "endpoints": {"sim": {"url": endpoint, "security": "none", "allow_insecure": True, "publishing_interval_ms": 50,
                              "reconnect_initial_s": 0.3, "reconnect_max_s": 1.0, "watchdog_s": 0.5}},
        "namespaces": {"sim": SIM_URI, "machinery": "http://opcfoundation.org/UA/Machinery/"},
        "machine_defaults": {
            "endpoint": "sim",
            "nodes": {
                "state": f"nsu={SIM_URI};s={{id}}.MachineryItemState.CurrentState.Id",
                "good": "/machinery:Machines/sim:{id}/sim:GoodCount",  # a browse path
                "scrap": f"nsu={SIM_URI};s={{id}}.ScrapCount",
                "stop_reason": f"nsu={SIM_URI};s={{id}}.StopReason",
                "order": f"nsu={SIM_URI};s={{id}}.CurrentOrder",
                "operation": f"nsu={SIM_URI};s={{id}}.CurrentOperation",
                "cycle_time": f"nsu={SIM_URI};s={{id}}.CycleTimeMs",
            },
            "telemetry": {"temperature": f"nsu={SIM_URI};s={{id}}.Temperature"},
        },
        "machines": [
            {"id": mid, "work_center": work_centers[mid]}
            | ({"state_source": "packml", "nodes": {"state": f"nsu={SIM_URI};s={mid}.PackMLState"}}
               if mid in packml else {})
            for mid in machines
        ],
        "reason_map": {"MAINT": "MAINT-01", "BREAKDOWN": "BRK-01", "NO_MATERIAL": "MAT-01"},
        "min_downtime_s": 0,
        "outbox_path": str(tmp_path / "outbox.db"),
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        else:
            config[key] = value
    return config


@pytest.fixture
def make_agent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., EdgeAgent]:
    monkeypatch.setenv("PLANTBRIDGE_EDGE_TEST_KEY", API_KEY)

    def make(endpoint: str, gateway: str, machines: list[str], **overrides: Any) -> EdgeAgent:
        data = edge_config_dict(endpoint, gateway, machines, tmp_path, **overrides)
        path = tmp_path / "edge.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
        return EdgeAgent(load_config(path))

    return make


async def settle(agent: EdgeAgent, seconds: float = 0.3) -> None:
    """Let the publishing interval pass and the agent process what came."""
    await asyncio.sleep(seconds)


async def connected(agent: EdgeAgent) -> None:
    await wait_for(lambda: agent.sessions and all(s.stats.connected for s in agent.sessions), what="OPC UA session")
    await asyncio.sleep(0.2)


Step = Callable[[], Awaitable[Any]]
