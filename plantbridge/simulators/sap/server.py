"""Run the simulator with uvicorn in a background thread (for tests and local tooling).

    with SimulatorServer("/tmp/sap.db", webhook_url=...) as sap:
        httpx.get(f"{sap.url}/admin/health")

``sap.url`` is ``http://127.0.0.1:<port>``; the OData services live under
``{sap.url}/sap/opu/odata/sap/<SERVICE>/``.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType
from typing import Any

import uvicorn

from plantbridge.simulators.sap.app import create_app


class SimulatorServer:
    def __init__(self, db_path: str, *, host: str = "127.0.0.1", port: int = 0, **app_options: Any) -> None:
        self.db_path = db_path
        self.host = host
        self.port = port
        self.app_options = app_options
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout_s: float = 10.0) -> str:
        app = create_app(self.db_path, **self.app_options)
        config = uvicorn.Config(
            app, host=self.host, port=self.port, log_level="warning", timeout_graceful_shutdown=1, lifespan="on"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="sap-simulator", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the SAP simulator did not start")
            time.sleep(0.01)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self.url

    def stop(self, timeout_s: float = 10.0) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout_s)
        self._server = None
        self._thread = None

    def __enter__(self) -> SimulatorServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
