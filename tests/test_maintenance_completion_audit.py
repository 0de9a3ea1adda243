"""Issue 15 item 8: the maintenance-request signal `complete_maintenance` (sent from the Temporal UI or
the CLI) is audited with who sent it and their note."""

from __future__ import annotations

from temporalio.client import Client

from plantbridge.canonical import SupervisorAction
from plantbridge.client import order_summary, start_order, submit_event
from plantbridge.store import AuditTrail, Database
from plantbridge.workflows.maintenance import MaintenanceRequestWorkflow, MaintenanceState
from tests.conftest import event, fast_policy, new_order
from tests.support import eventually


async def test_completion_is_audited_with_identity(client: Client, worker: object, db: Database) -> None:
    order = new_order(components=False)
    await start_order(client, order, fast_policy())
    await submit_event(client, event(order, "maintenance_requested", equipment="PUMP-8", priority=2,
                                     description="leak"))

    async def child() -> str | None:
        started = [m for m in (await order_summary(client, order.plant, order.number)).maintenance if m.workflow_id]
        return started[0].workflow_id if started else None

    child_id = await eventually(child)
    handle = client.get_workflow_handle(child_id, result_type=MaintenanceState)
    await handle.signal(MaintenanceRequestWorkflow.complete_maintenance,
                        SupervisorAction(by="tech.kim", reason="seal replaced"))
    state = await handle.result()
    assert state.status == "completed" and state.completed_by == "tech.kim"
    records = await AuditTrail(db).records(workflow_id=child_id, action="maintenance_completed")
    assert [(r.actor, r.detail.get("reason")) for r in records] == [("tech.kim", "seal replaced")]
