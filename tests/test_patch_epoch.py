"""The patch epoch (`workflows/patches.py`): a new order records one patch marker, not one per patch; an
order started before the epoch keeps taking each patch through `workflow.patched` to its end.

The order started "before the epoch" runs first on a worker whose `patch_activation_callback` refuses
the epoch's id: that is the code before the epoch exactly (the epoch's `workflow.patched` records
nothing and answers False; every other patch is consulted and recorded as before). That worker stops
mid-order; a worker with today's code replays the history and takes the order to its end.
Record the histories with `PLANTBRIDGE_RECORD_HISTORY=1` (they land in `tests/histories/`).
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import timedelta
from pathlib import Path

from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory
from temporalio.worker import PatchActivationInput, UnsandboxedWorkflowRunner, Worker

from plantbridge.activities import all_activities
from plantbridge.canonical import ProductionOrder, SupervisorAction
from plantbridge.client import order_summary, start_order, submit_event
from plantbridge.connectors.memory import MemoryRegistry, MemoryStore
from plantbridge.store import AuditTrail, Database, Ledger
from plantbridge.workers.runner import workflow_runner_for
from plantbridge.workers.worker import WORKFLOWS
from plantbridge.workflows import patches
from plantbridge.workflows.maintenance import MaintenanceRequestWorkflow
from tests.conftest import event, fast_policy, new_order, qty
from tests.support import eventually
from tests.support.replay import assert_replays, consumption_rejected_then_retried, refuse_the_seal_once

HISTORIES = Path(__file__).parent / "histories"
AFTER_THE_EPOCH = "a-patch-added-after-the-epoch"


@workflow.defn(name="patch-epoch-probe")
class EpochProbe:
    """Consults the epoch at its start, then a patch the epoch covers and one it does not."""

    @workflow.init
    def __init__(self) -> None:
        self._patches = patches.RunPatches.at_start()

    @workflow.run
    async def run(self) -> list[bool]:
        return [self._patches.epoch, self._patches.on(patches.STEP_INPUTS), self._patches.on(AFTER_THE_EPOCH)]


def _patch_markers(history: WorkflowHistory) -> list[tuple[int, str]]:
    """(event id, patch id) of every patch marker in the history."""
    found = []
    for ev in history.events:
        if ev.event_type != EventType.EVENT_TYPE_MARKER_RECORDED:
            continue
        attrs = ev.marker_recorded_event_attributes
        if attrs.marker_name != "core_patch":
            continue
        data = json.loads(attrs.details["patch-data"].payloads[0].data)
        found.append((ev.event_id, data["id"]))
    return found


def _change_version_upserts(history: WorkflowHistory) -> int:
    return sum(
        1 for ev in history.events
        if ev.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES
        and "TemporalChangeVersion" in ev.upsert_workflow_search_attributes_event_attributes.search_attributes
        .indexed_fields
    )


def _order_worker(client: Client, queue: str, reference: MemoryStore, db: Database, *, epoch: bool) -> Worker:
    def before_the_epoch(inp: PatchActivationInput) -> bool:
        return inp.patch_id != patches.EPOCH

    return Worker(
        client,
        task_queue=queue,
        workflows=WORKFLOWS,
        activities=all_activities(MemoryRegistry(reference), Ledger(db), AuditTrail(db)),  # type: ignore[arg-type]
        workflow_runner=workflow_runner_for(client.data_converter),
        patch_activation_callback=None if epoch else before_the_epoch,
        sticky_queue_schedule_to_start_timeout=timedelta(seconds=1),  # the next worker takes over at once
        graceful_shutdown_timeout=timedelta(seconds=5),
    )



async def _state(client: Client, order: ProductionOrder, state: str) -> bool:
    return (await order_summary(client, order.plant, order.number)).state.value == state


async def _complete_child(client: Client, order: ProductionOrder) -> None:
    """Complete the order's `MaintenanceRequest` child (started behind `maintenance-child-workflow`)."""
    async def child() -> str | None:
        started = [m for m in (await order_summary(client, order.plant, order.number)).maintenance if m.workflow_id]
        return started[0].workflow_id if started else None

    await eventually(child)
    handle = client.get_workflow_handle(await child() or "")
    await handle.signal(MaintenanceRequestWorkflow.complete_maintenance, SupervisorAction(by="tech.lee"))
    await handle.result()


async def test_order_started_before_the_epoch_keeps_its_patches(client: Client, reference: MemoryStore,
                                                                db: Database) -> None:
    """Two orders started before the epoch: one halfway through (posted a partial confirmation), one still
    waiting for its release (its first tasks consulted no patch at all, so a patch consulted later is the
    first this run ever consults). Both go on under today's code to `posted`, with a marker per patch."""
    from plantbridge.canonical.order import OrderReleaseNotice

    queue = f"plantbridge-epoch-{uuid.uuid4().hex[:8]}"
    order = new_order()
    planned = new_order(components=False, released=False)
    async with _order_worker(client, queue, reference, db, epoch=False):
        handle = await start_order(client, order, fast_policy(task_queue=queue))
        await submit_event(client, event(order, "operation_started", operation="0010"))
        ack = await submit_event(client, event(order, "operation_confirmed", operation="0010", yield_qty=qty(50)))
        assert ack.erp is not None and ack.erp.status == "posted"
        waiting = await start_order(client, planned, fast_policy(task_queue=queue))
        await eventually(lambda: _state(client, planned, "planned"))
    midway = await handle.fetch_history()
    before = {patch for _, patch in _patch_markers(midway)}
    assert patches.EPOCH not in before
    assert {patches.STEP_INPUTS, patches.ACK_PER_TRIGGER} <= before  # consulted, one marker each
    assert patches.MAINTENANCE_CHILD not in before
    unreleased = await waiting.fetch_history()
    assert not _patch_markers(unreleased)

    # Today's code from here on: the first task replays without the epoch's marker; later tasks are new.
    async with _order_worker(client, queue, reference, db, epoch=True):
        await submit_event(client, event(order, "maintenance_requested", equipment="PRESS-2", priority=3,
                                         description="oil leak"))
        await _complete_child(client, order)
        await submit_event(client, event(order, "operation_confirmed", operation="0010", yield_qty=qty(50),
                                         final=True))
        await submit_event(client, event(order, "operation_confirmed", operation="0020", yield_qty=qty(100),
                                         final=True))
        await eventually(lambda: _state(client, order, "posted"), timeout=60)
        await handle.result()

        reference.orders[planned.number] = planned.model_copy(update={"released": True})
        await waiting.signal("order_released", OrderReleaseNotice(plant=planned.plant, order=planned.number))
        await eventually(lambda: _state(client, planned, "released"))
        for op in ("0010", "0020"):
            await submit_event(client, event(planned, "operation_confirmed", operation=op, yield_qty=qty(100),
                                             final=True))
        await eventually(lambda: _state(client, planned, "posted"), timeout=60)
        await waiting.result()
        history = await handle.fetch_history()
        released_later = await waiting.fetch_history()

    markers = _patch_markers(history)
    assert patches.EPOCH not in {patch for _, patch in markers}  # never taken on a later, new task
    later = {patch for at, patch in markers if at > len(midway.events)}
    # A patch first consulted after the switch still goes to `workflow.patched`: its marker is recorded.
    assert patches.MAINTENANCE_CHILD in later
    assert _change_version_upserts(history) == len(markers)
    first_consulted_late = {patch for _, patch in _patch_markers(released_later)}
    assert patches.EPOCH not in first_consulted_late
    assert {patches.RELEASE_READS_ORDER, patches.STEP_INPUTS} <= first_consulted_late
    await assert_replays(history)
    await assert_replays(released_later)
    if os.environ.get("PLANTBRIDGE_RECORD_HISTORY"):
        (HISTORIES / "production_order_pre_epoch_continued.json").write_text(history.to_json())
        (HISTORIES / "production_order_pre_epoch_released_later.json").write_text(released_later.to_json())


async def test_new_order_records_the_epoch_only(client: Client, worker: object, reference: MemoryStore) -> None:
    """A whole order with the epoch: a rejected posting retried, a quality hold released, a plant event sent
    as a signal (refused), a maintenance child; one patch marker (the epoch) and one visibility upsert of
    `TemporalChangeVersion`, every patched branch taken."""
    order = new_order()
    await refuse_the_seal_once(reference, order)
    handle = await start_order(client, order, fast_policy())
    await handle.signal("plant_event", event(order, "quality_disposition", decision="release", source="qms-forged"))
    await consumption_rejected_then_retried(client, handle, order)
    await submit_event(client, event(order, "quality_hold", reason="scratch on surface"))
    await submit_event(client, event(order, "maintenance_requested", equipment="PRESS-2", priority=3,
                                     description="oil leak"))
    await _complete_child(client, order)
    await submit_event(client, event(order, "operation_confirmed", operation="0010", yield_qty=qty(49), final=True))
    await handle.signal("release_hold", SupervisorAction(by="qa.lead"))
    await submit_event(client, event(order, "operation_confirmed", operation="0020", yield_qty=qty(99), final=True))
    await eventually(lambda: _state(client, order, "posted"), timeout=60)
    await handle.result()
    summary = await order_summary(client, order.plant, order.number)
    assert summary.events_rejected == 1  # the signal refused: `plant-event-signal-closed` taken
    assert [m.workflow_id for m in summary.maintenance if m.workflow_id]  # `maintenance-child-workflow` taken
    history = await handle.fetch_history()
    # The epoch, and the one patch added after it (`local-plant-system-steps`: its own marker and upsert).
    assert [patch for _, patch in _patch_markers(history)] == [patches.EPOCH, patches.LOCAL_PLANT_STEPS]
    assert _change_version_upserts(history) == 2
    await assert_replays(history)
    if os.environ.get("PLANTBRIDGE_RECORD_HISTORY"):
        (HISTORIES / "production_order_epoch.json").write_text(history.to_json())


async def test_patch_added_after_the_epoch_is_consulted(client: Client) -> None:
    """An id not in `EPOCH_COVERS` goes to `workflow.patched` (its own marker) even in a run with the epoch."""
    queue = f"plantbridge-epoch-probe-{uuid.uuid4().hex[:8]}"
    assert AFTER_THE_EPOCH not in patches.EPOCH_COVERS
    async with Worker(client, task_queue=queue, workflows=[EpochProbe], workflow_runner=UnsandboxedWorkflowRunner()):
        handle = await client.start_workflow(EpochProbe.run, id=queue, task_queue=queue)
        assert await handle.result() == [True, True, True]
    history = await handle.fetch_history()
    assert [patch for _, patch in _patch_markers(history)] == [patches.EPOCH, AFTER_THE_EPOCH]
