"""Run the simulator with uvicorn in a background thread (for tests and local tooling).

    with SimulatorServer("/tmp/sap.db", webhook_url=...) as sap:
        httpx.get(f"{sap.url}/admin/health")

``sap.url`` is ``http://127.0.0.1:<port>``; the OData services live under
``{sap.url}/sap/opu/odata/sap/<SERVICE>/``.
"""

from __future__ import annotations

from typing import Any

from plantbridge_devtools.simulators.common.server import ThreadedServer
from plantbridge_devtools.simulators.sap.app import create_app


class SimulatorServer(ThreadedServer):
    """The S/4HANA simulator in a background thread, on its own SQLite file."""

    def __init__(self, db_path: str, *, host: str = "127.0.0.1", port: int = 0, **app_options: Any) -> None:
        self.db_path = db_path
        self.app_options = app_options
        super().__init__(app_factory=lambda: create_app(db_path, **app_options), host=host, port=port,
                         name="sap-simulator")
