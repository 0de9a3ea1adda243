"""Run the WMS simulator in a background thread: ``with WmsServer("/tmp/wms.db") as wms: ...``."""

from __future__ import annotations

from typing import Any

from plantbridge_devtools.simulators.common.server import ThreadedServer
from plantbridge_devtools.simulators.wms.app import create_app


class WmsServer(ThreadedServer):
    def __init__(self, db_path: str, *, host: str = "127.0.0.1", port: int = 0, **app_options: Any) -> None:
        super().__init__(app_factory=lambda: create_app(db_path, **app_options), host=host, port=port,
                         name="wms-simulator")
        self.db_path = db_path
