"""Run the QMS simulator in a background thread: ``with QmsServer("/tmp/qms.db") as qms: ...``."""

from __future__ import annotations

from typing import Any

from plantbridge_devtools.simulators.common.server import ThreadedServer
from plantbridge_devtools.simulators.qms.app import create_app


class QmsServer(ThreadedServer):
    def __init__(self, db_path: str, *, host: str = "127.0.0.1", port: int = 0, **app_options: Any) -> None:
        super().__init__(app_factory=lambda: create_app(db_path, **app_options), host=host, port=port,
                         name="qms-simulator")
        self.db_path = db_path
