"""Free loopback ports and ASGI apps served by uvicorn inside the test's event loop."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass
from typing import Any

import uvicorn

HOST = "127.0.0.1"


def free_port() -> int:
    """A port nothing listens on right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass
class ServedApp:
    server: uvicorn.Server
    task: asyncio.Task[None]
    url: str

    async def stop(self) -> None:
        self.server.should_exit = True
        await self.task


async def serve_app(app: Any, port: int | None = None, **ssl: Any) -> ServedApp:
    """Serve `app` on 127.0.0.1 (a free port unless given) until `stop()`; returns once it listens.

    `ssl`: uvicorn's TLS options (ssl_certfile, ssl_keyfile, ssl_ca_certs, ssl_cert_reqs): HTTPS."""
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, host=HOST, port=port, log_level="warning", lifespan="on", **ssl))
    server.install_signal_handlers = lambda: None  # type: ignore[attr-defined]  # older uvicorn: keep the test runner's handlers
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
        if task.done():
            task.result()
    return ServedApp(server, task, f"{'https' if ssl else 'http'}://{HOST}:{port}")
