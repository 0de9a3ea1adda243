"""Run the MES simulator in a background thread::

    with MesServer("/tmp/mes.db", outbound_url=receiver_url, outbound_token="t") as mes:
        httpx.post(f"{mes.url}/api/v2/workorders", headers={"X-API-Key": "mes-dev-key"}, json=...)
"""

from __future__ import annotations

from typing import Any

from plantbridge_devtools.simulators.common.server import ThreadedServer
from plantbridge_devtools.simulators.mes.app import create_app


class MesServer(ThreadedServer):
    def __init__(self, db_path: str, *, host: str = "127.0.0.1", port: int = 0, **app_options: Any) -> None:
        super().__init__(app_factory=lambda: create_app(db_path, **app_options), host=host, port=port,
                         name="mes-simulator")
        self.db_path = db_path
