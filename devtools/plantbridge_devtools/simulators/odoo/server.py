"""Run the Odoo simulator with uvicorn in a background thread (tests, local tooling).

    with OdooServer("/tmp/odoo.db", version="19.0") as odoo:
        httpx.get(f"{odoo.url}/admin/health")
"""

from __future__ import annotations

from typing import Any

from plantbridge_devtools.simulators.common.server import ThreadedServer
from plantbridge_devtools.simulators.odoo.app import create_app


class OdooServer(ThreadedServer):
    def __init__(self, db_path: str, *, host: str = "127.0.0.1", port: int = 0, **app_options: Any) -> None:
        self.db_path = db_path
        self.app_options = app_options
        super().__init__(app_factory=lambda: create_app(db_path, **app_options), host=host, port=port,
                         name="odoo-simulator")
