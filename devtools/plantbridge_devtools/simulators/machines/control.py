"""Tiny JSON HTTP control API of the machine simulator (Starlette app, served by uvicorn in-process).

    GET  /health                       {"status": "ok", "opcua": endpoint, "running": bool, ...}
    GET  /machines                     {"machines": [status, ...]}
    GET  /machines/{id}                status + "node_map"
    POST /machines/{id}/run            -> status
    POST /machines/{id}/stop           {"reason": "MAINT", "state"?: "OutOfService" | PackML name/code}
    POST /machines/{id}/state          {"state": "Executing" | "Held" | 11}
    POST /machines/{id}/count          {"good": 1, "scrap": 0, "cycle_time_ms"?: 950.0}
    POST /machines/{id}/counter        {"good"?: 4294967290, "scrap"?: 0}   (absolute values)
    POST /machines/{id}/reset          counters to 0
    POST /machines/{id}/order          {"order": "1004157", "operation": "0010"}
    POST /auto                         {"rate_hz": 2, "seed"?: 1, "profile"?: "realistic" | "stress"}
    DELETE /auto                       stop auto mode;  GET /auto -> stats
    POST /server/restart               {"down_s"?: 1.0}  stop + start the OPC UA server (clients must resubscribe)

Errors: 404 unknown machine, 422 invalid body or value. Scripting works while the OPC UA server is
stopped (values are applied at the next start).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import Awaitable, Callable, Generator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .server import MachineSimulator, UnknownMachineError


class BadRequest(ValueError):
    pass


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise BadRequest(f"invalid JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise BadRequest("the body must be a JSON object")
    return data


def _int(data: dict[str, Any], key: str, default: int | None = None) -> int | None:
    value = data.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"{key} must be an integer")
    return value


def _str(data: dict[str, Any], key: str, default: str = "") -> str:
    value = data.get(key, default)
    if not isinstance(value, str):
        raise BadRequest(f"{key} must be a string")
    return value


def _number(data: dict[str, Any], key: str, default: float | None = None) -> float | None:
    value = data.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadRequest(f"{key} must be a number")
    return float(value)


Handler = Callable[[Request], Awaitable[Any]]


def _endpoint(handler: Handler) -> Callable[[Request], Awaitable[JSONResponse]]:
    async def wrapped(request: Request) -> JSONResponse:
        try:
            return JSONResponse(await handler(request))
        except UnknownMachineError as exc:
            return JSONResponse({"error": f"unknown machine {exc.args[0]}"}, status_code=404)
        except (BadRequest, ValueError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=422)

    return wrapped


def create_app(sim: MachineSimulator) -> Starlette:
    def mid(request: Request) -> str:
        return str(request.path_params["machine_id"])

    async def health(request: Request) -> dict[str, Any]:
        return {
            "status": "ok",
            "opcua": sim.endpoint,
            "running": sim.running,
            "namespace_uri": sim.namespace_uri,
            "namespace_index": sim.namespace_index if sim.running else None,
            "security": sim.security,
            "machines": sim.machine_ids,
            "auto": sim.auto_stats(),
        }

    async def machines(request: Request) -> dict[str, Any]:
        return {"machines": sim.statuses()}

    async def machine(request: Request) -> dict[str, Any]:
        data = sim.status(mid(request))
        data["node_map"] = sim.node_map(mid(request)) if sim.running else None
        return data

    async def run(request: Request) -> dict[str, Any]:
        return await sim.run(mid(request))

    async def stop(request: Request) -> dict[str, Any]:
        data = await _body(request)
        state = data.get("state")
        if state is not None and not isinstance(state, str | int):
            raise BadRequest("state must be a name or a PackML code")
        return await sim.stop_machine(mid(request), _str(data, "reason"), state)

    async def state(request: Request) -> dict[str, Any]:
        data = await _body(request)
        value = data.get("state")
        if not isinstance(value, str | int) or isinstance(value, bool):
            raise BadRequest("state is required: a MachineryItemState or PackML name, or a PackML code")
        return await sim.set_state(mid(request), value)

    async def count(request: Request) -> dict[str, Any]:
        data = await _body(request)
        return await sim.count(
            mid(request),
            good=_int(data, "good", 0) or 0,
            scrap=_int(data, "scrap", 0) or 0,
            cycle_time_ms=_number(data, "cycle_time_ms"),
        )

    async def counter(request: Request) -> dict[str, Any]:
        data = await _body(request)
        return await sim.set_counter(mid(request), good=_int(data, "good"), scrap=_int(data, "scrap"))

    async def reset(request: Request) -> dict[str, Any]:
        return await sim.reset_counters(mid(request))

    async def order(request: Request) -> dict[str, Any]:
        data = await _body(request)
        return await sim.set_order(mid(request), _str(data, "order"), _str(data, "operation"))

    async def auto_start(request: Request) -> dict[str, Any]:
        data = await _body(request)
        rate = _number(data, "rate_hz", 2.0) or 2.0
        profile = _str(data, "profile", "realistic")
        if profile not in ("realistic", "stress"):
            raise BadRequest("profile must be 'realistic' or 'stress'")
        await sim.start_auto(rate, _int(data, "seed"), profile=profile)  # type: ignore[arg-type]
        return sim.auto_stats()

    async def auto_stop(request: Request) -> dict[str, Any]:
        await sim.stop_auto()
        return sim.auto_stats()

    async def auto_stats(request: Request) -> dict[str, Any]:
        return sim.auto_stats()

    async def restart(request: Request) -> dict[str, Any]:
        data = await _body(request)
        down = _number(data, "down_s", 0.0) or 0.0
        if not 0 <= down <= 300:
            raise BadRequest("down_s must be within 0..300")
        await sim.restart(down)
        return {"running": sim.running, "opcua": sim.endpoint}

    m = "/machines/{machine_id}"
    routes = [
        Route("/health", _endpoint(health), methods=["GET"]),
        Route("/machines", _endpoint(machines), methods=["GET"]),
        Route(m, _endpoint(machine), methods=["GET"]),
        Route(f"{m}/run", _endpoint(run), methods=["POST"]),
        Route(f"{m}/stop", _endpoint(stop), methods=["POST"]),
        Route(f"{m}/state", _endpoint(state), methods=["POST"]),
        Route(f"{m}/count", _endpoint(count), methods=["POST"]),
        Route(f"{m}/counter", _endpoint(counter), methods=["POST"]),
        Route(f"{m}/reset", _endpoint(reset), methods=["POST"]),
        Route(f"{m}/order", _endpoint(order), methods=["POST"]),
        Route("/auto", _endpoint(auto_start), methods=["POST"]),
        Route("/auto", _endpoint(auto_stop), methods=["DELETE"]),
        Route("/auto", _endpoint(auto_stats), methods=["GET"]),
        Route("/server/restart", _endpoint(restart), methods=["POST"]),
    ]
    return Starlette(routes=routes)


class _Uvicorn(uvicorn.Server):
    """uvicorn without its signal capture: the owner (CLI or test) handles signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class ControlServer:
    """Serves :func:`create_app` on ``host:port`` inside the running event loop (``port=0``: any free)."""

    def __init__(self, sim: MachineSimulator, host: str = "127.0.0.1", port: int = 8105) -> None:
        self.sim = sim
        self.host = host
        self.port = port
        self._server: _Uvicorn | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(create_app(self.sim), log_level="warning", access_log=False, lifespan="off")
        self._server = _Uvicorn(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]), name="machine-simulator-control")
        while not self._server.started:
            if self._task.done():
                self._task.result()  # raises the startup error
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
        self._server, self._task = None, None
