"""Run an ASGI app with uvicorn in a background thread (tests, ``plantbridge dev``, receivers).

    with ThreadedServer(app) as server:
        httpx.get(f"{server.url}/admin/health")

The first start picks a free port (``port=0``); ``stop()`` then ``start()`` again reuses the same
port, so a test can take a receiver down and bring it back at the same URL.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

import uvicorn

AppFactory = Callable[[], Any]


class ThreadedServer:
    def __init__(
        self, app: Any = None, *, app_factory: AppFactory | None = None, host: str = "127.0.0.1", port: int = 0,
        name: str = "simulator",
    ) -> None:
        if (app is None) == (app_factory is None):
            raise ValueError("give either app or app_factory")
        self._factory: AppFactory = app_factory if app_factory is not None else (lambda: app)
        self.host = host
        self.port = port
        self.name = name
        self.app: Any = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, timeout_s: float = 10.0) -> str:
        self.app = self._factory()
        config = uvicorn.Config(
            self.app, host=self.host, port=self.port, log_level="warning", timeout_graceful_shutdown=1,
            lifespan="on", interface="asgi3",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name=self.name, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the {self.name} did not start on {self.host}:{self.port}")
            time.sleep(0.01)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self.url

    def stop(self, timeout_s: float = 10.0) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout_s)
        self._server = None
        self._thread = None

    def __enter__(self) -> ThreadedServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
