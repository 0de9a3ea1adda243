"""Edge agent load benchmark: N machines x M nodes changing at R Hz (the simulator's stress profile).

The machine simulator runs in its own process (so the CPU measured is the agent's), the gateway is
a small local receiver in a thread of this process that answers ``accepted``; the agent runs on the
main thread's event loop and its CPU is measured with ``getrusage(RUSAGE_THREAD)`` on that thread.
The stress profile toggles every machine between Executing and stopped on every tick, so with
``min_downtime_s=0`` each machine sends downtime events at the tick rate (a worst case for the
outbox). The simulator's order values (``LOAD-0001``) are not valid order numbers, so the order is
set through :meth:`EdgeAgent.set_current_order` and the order/operation nodes are subscribed as
plain telemetry. Not a test: call ``bench_edge()`` or ``python -m plantbridge_devtools.edge_bench``.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import statistics
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from plantbridge.edge.agent import EdgeAgent
from plantbridge.edge.config import parse_config
from plantbridge_devtools.temporal_server import free_port

SIM_URI = "urn:plantbridge:machine-simulator"
# the ten nodes per machine the benchmark subscribes (the first `nodes` of them)
_NODES: list[tuple[str, str]] = [
    ("state", "MachineryItemState.CurrentState.Id"),
    ("good", "GoodCount"),
    ("scrap", "ScrapCount"),
    ("stop_reason", "StopReason"),
    ("cycle_time", "CycleTimeMs"),
    ("extra:temperature", "Temperature"),
    ("extra:order", "CurrentOrder"),
    ("extra:operation", "CurrentOperation"),
    ("extra:state_number", "MachineryItemState.CurrentState.Number"),
    ("extra:transition", "MachineryItemState.LastTransition.Number"),
]


def _cpu_thread() -> float:
    usage = resource.getrusage(getattr(resource, "RUSAGE_THREAD", resource.RUSAGE_SELF))
    return usage.ru_utime + usage.ru_stime


class _Receiver:
    """A minimal gateway stand-in (Starlette/uvicorn in its own thread) answering ``accepted``."""

    def __init__(self) -> None:
        self.port = free_port()
        self.lags: list[float] = []
        self.events = 0
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        import uvicorn
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import JSONResponse
        from starlette.routing import Route

        async def events(request: Request) -> JSONResponse:
            body = await request.json()
            now = time.time()
            results = []
            for event in body["events"]:
                self.events += 1
                self.lags.append(now - datetime.fromisoformat(event["occurred_at"]).timestamp())
                results.append({"event_id": event["event_id"], "status": "accepted"})
            return JSONResponse({"results": results})

        app = Starlette(routes=[Route("/v1/plant/events", events, methods=["POST"])])
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        while not self._server.started:
            time.sleep(0.02)

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)


async def _start_simulator(endpoint: str, machines: int, rate_hz: float) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "plantbridge_devtools.simulators.machines", "--endpoint", endpoint,
        "--generate", str(machines), "--auto", str(rate_hz), "--profile", "stress", "--seed", "1",
        "--no-control", stdout=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert proc.stdout is not None
    while True:
        line = await asyncio.wait_for(proc.stdout.readline(), timeout=300)
        if not line:
            raise RuntimeError("the machine simulator exited before it was ready")
        try:
            if json.loads(line).get("event") == "ready":
                return proc
        except ValueError:
            continue


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def bench_edge(
    machines: int = 100,
    nodes: int = 10,
    rate_hz: float = 10,
    seconds: float = 20,
    *,
    warmup_s: float = 3.0,
    min_downtime_s: float = 0.0,
    publishing_interval_ms: float = 200.0,
) -> dict[str, Any]:
    """Run the agent against the stress simulator; returns notifications/s, CPU s/s, lags."""
    nodes = max(1, min(nodes, len(_NODES)))
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/plantbridge/"
    receiver = _Receiver()
    receiver.start()
    sim = await _start_simulator(endpoint, machines, rate_hz)
    width = max(2, len(str(machines)))
    ids = [f"M{str(i).zfill(width)}" for i in range(1, machines + 1)]
    with tempfile.TemporaryDirectory(prefix="plantbridge-edge-bench-") as tmp:
        selected = dict(_NODES[:nodes])
        node_refs = {role: f"nsu={SIM_URI};s={{id}}.{suffix}" for role, suffix in selected.items()}
        plain = {role: ref for role, ref in node_refs.items() if not role.startswith("extra:")}
        extras = {role[6:]: ref for role, ref in node_refs.items() if role.startswith("extra:")}
        config = parse_config(
            {
                "plant": "1000",
                "source": "edge-bench",
                "gateway": {"url": f"http://127.0.0.1:{receiver.port}", "batch_size": 500},
                # the stress simulator offers SecurityPolicy None: the bench measures the agent's logic
                "endpoints": {"sim": {"url": endpoint, "security": "none", "allow_insecure": True,
                                      "publishing_interval_ms": publishing_interval_ms}},
                "machines": [
                    {"id": mid, "endpoint": "sim", "work_center": f"WC-{mid[1:]}",
                     "nodes": {"state": plain.get("state", node_refs[next(iter(node_refs))]),
                               **{k: v for k, v in plain.items() if k != "state"}},
                     "telemetry": extras}
                    for mid in ids
                ],
                "min_downtime_s": min_downtime_s,
                "rollup_interval_s": 60,
                "outbox_path": str(Path(tmp) / "outbox.db"),
            },
            "<bench>",
        )  # fmt: skip
        agent = EdgeAgent(config, api_key="bench")
        try:
            await agent.start()
            for mid in ids:
                agent.set_current_order(f"WC-{mid[1:]}", "1004157", "0010")
            deadline = time.monotonic() + 120
            while not all(s.stats.connected for s in agent.sessions):
                if time.monotonic() > deadline:
                    raise RuntimeError("the agent did not connect")
                await asyncio.sleep(0.2)
            await asyncio.sleep(warmup_s)
            agent.lags.clear()
            receiver.lags.clear()
            n0 = agent.stats()["notifications"]
            e0 = agent.tracker_stats.events
            cpu0, proc0, wall0 = _cpu_thread(), time.process_time(), time.monotonic()
            await asyncio.sleep(seconds)
            cpu1, proc1, wall1 = _cpu_thread(), time.process_time(), time.monotonic()
            stats = agent.stats()
            lags = list(agent.lags)
            event_lags = list(receiver.lags)
        finally:
            await agent.stop()
            sim.terminate()
            try:
                await asyncio.wait_for(sim.wait(), timeout=15)
            except TimeoutError:
                sim.kill()
            receiver.stop()
    elapsed = wall1 - wall0
    return {
        "machines": machines,
        "nodes_per_machine": nodes,
        "rate_hz": rate_hz,
        "seconds": round(elapsed, 2),
        "offered_changes_per_s": machines * nodes * rate_hz,
        "notifications_per_s": round((stats["notifications"] - n0) / elapsed, 1),
        "agent_cpu_s_per_s": round((cpu1 - cpu0) / elapsed, 3),  # the agent's thread
        "process_cpu_s_per_s": round((proc1 - proc0) / elapsed, 3),  # incl. the receiver thread
        "processing_lag_mean_s": round(statistics.fmean(lags), 4) if lags else None,
        "processing_lag_p95_s": round(_percentile(lags, 0.95) or 0.0, 4) if lags else None,
        "events_per_s": round((stats["events_emitted"] - e0) / elapsed, 1),
        "event_lag_mean_s": round(statistics.fmean(event_lags), 4) if event_lags else None,
        "event_lag_p95_s": round(_percentile(event_lags, 0.95) or 0.0, 4) if event_lags else None,
        "outbox_queued_at_end": stats["queued"],
        "reconnects": stats["reconnects"],
    }


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m plantbridge_devtools.edge_bench")
    parser.add_argument("--machines", type=int, default=100)
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--rate", type=float, default=10)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--min-downtime", type=float, default=0.0)
    args = parser.parse_args()
    result = asyncio.run(
        bench_edge(args.machines, args.nodes, args.rate, args.seconds, min_downtime_s=args.min_downtime)
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
