"""`plantbridge status` and the business report show an Odoo plant like the others: its ERP (from the
sagas' `ErpSystem`), its release poller with the poller's cursor, and an Odoo webhook that ended as a
dead letter counted as a failed release. Real Temporal server, the session's in-memory worker (its
Odoo poll activity has no Odoo config for the plant, so the poller keeps its cursor and goes on)."""

from __future__ import annotations

from datetime import timedelta

from rich.console import Console
from temporalio.client import Client

from plantbridge.client import order_handle, start_order
from plantbridge.store import Database
from plantbridge.store.inbox import Inbox
from plantbridge.workers.settings import Settings
from plantbridge.workers.status import collect_status, print_status
from plantbridge.workflows.odoo_poller import POLLER_WORKFLOW, PollerInput, poller_id
from plantbridge_devtools.temporal_server import DevServer
from tests.conftest import TASK_QUEUE, fast_policy, new_order
from tests.support import eventually

CURSOR = "2026-03-02 07:15:00"


async def test_status_shows_the_odoo_plant_its_poller_and_failed_webhooks(
    temporal_server: DevServer, client: Client, db: Database, worker: object,
) -> None:
    plant = "3901"
    order = new_order(plant, components=False, erp_system="odoo")
    await start_order(client, order, fast_policy(hold_sla=timedelta(hours=1)))
    sap = new_order("3902", components=False, erp_system="sap_s4")
    await start_order(client, sap, fast_policy(hold_sla=timedelta(hours=1)))
    await Inbox(db).receive(f"odoo:{plant}", b'{"_model": "mrp.production", "_id": 77}', status="dead",
                            reason="Odoo has no manufacturing order with id 77")
    poller = await client.start_workflow(POLLER_WORKFLOW, PollerInput(plant=plant, interval_s=3600, cursor=CURSOR),
                                         id=poller_id(plant), task_queue=TASK_QUEUE)
    try:
        async def shown() -> str | None:
            report = await collect_status(client, db)
            odoo, other = report.get(plant), report.get("3902")
            ok = (odoo is not None and other is not None and odoo.erp == {"odoo"} and other.erp == {"sap_s4"}
                  and odoo.failed_releases == 1 and odoo.odoo_poller == f"cursor {CURSOR}"
                  and sum(odoo.orders_by_state.values()) == 1 and other.odoo_poller is None)
            return "shown" if ok else None

        await eventually(shown, timeout=30)
        console = Console(record=True, width=250)
        await print_status(Settings(temporal_address=temporal_server.address, store_url=db.url), plant, console)
        row = next(line for line in console.export_text().splitlines() if f" {plant} " in line)
        assert "odoo" in row and f"cursor {CURSOR}" in row, row
    finally:
        await poller.terminate("test over")
        for o in (order, sap):
            await order_handle(client, o.plant, o.number).terminate("test over")
