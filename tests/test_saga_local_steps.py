"""Plant-system steps run as local activities (patch `local-plant-system-steps`, workflows/local_steps.py):
nothing of their behaviour changes but where they run. A rejection still parks the step as an exception a
supervisor retries; transient failures are retried, a defect only so often; the history holds them as
markers, not activity tasks; the current details show a step being retried; no heartbeat is sent."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from datetime import timedelta
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment

from plantbridge.activities import base as activity_base
from plantbridge.activities.base import ActivityBase
from plantbridge.canonical import ExceptionResolution
from plantbridge.canonical import commands as c
from plantbridge.canonical.order import workflow_id
from plantbridge.client import current_details, order_summary, start_order, submit_event
from plantbridge.connectors.memory import MemoryRegistry, MemoryStore
from plantbridge.connectors.ports import PlantSystems
from plantbridge.store import AuditTrail, Ledger
from tests.conftest import event, fast_policy, new_order, qty
from tests.support import eventually


def step_calls(events: list[Any]) -> tuple[list[str], list[str]]:
    """(regular activity types scheduled, local activity types recorded) in a history's events."""
    regular = [e.activity_task_scheduled_event_attributes.activity_type.name for e in events
               if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED]
    local = []
    for e in events:
        attrs = e.marker_recorded_event_attributes
        if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED and attrs.marker_name == "core_local_activity":
            local.append(json.loads(attrs.details["data"].payloads[0].data)["activity_type"])
    return regular, local


async def test_rejected_local_dispatch_opens_an_exception_a_supervisor_retries(
    client: Client, worker: object, reference: MemoryStore, audit: AuditTrail
) -> None:
    order = new_order()
    await reference.add_rule("mes", "dispatch", order=order.number, code="MES-409",
                             message="work center ASSY-01 has no shift planned")
    handle = await start_order(client, order, fast_policy())

    async def parked() -> bool:
        return bool((await order_summary(client, order.plant, order.number)).open_exceptions)

    await eventually(parked)
    [exc] = (await order_summary(client, order.plant, order.number)).open_exceptions
    assert (exc.step_kind, exc.system, exc.erp_code, exc.category) == (
        "mes.dispatch", "mes", "MES-409", "business_rejection")
    current = await current_details(client, order.plant, order.number)
    assert exc.id in current and "no shift planned" in current and '"action": "retry"' in current
    summary = await order_summary(client, order.plant, order.number)
    assert any(f"{exc.id} mes.dispatch rejected by mes" in t.text for t in summary.timeline)

    # Retried while the cause is still there: rejected again, the same exception open again.
    await handle.signal("resolve_exception", ExceptionResolution(exception_id=exc.id, action="retry", by="anna"))

    async def refused_again() -> bool:
        found = (await order_summary(client, order.plant, order.number)).exceptions[0]
        return found.attempts == 2 and found.status == "open"

    await eventually(refused_again)
    await reference.clear_rules()  # the shift is planned in the MES
    await handle.signal("resolve_exception", ExceptionResolution(exception_id=exc.id, action="retry", by="anna"))

    async def dispatched() -> bool:
        summary = await order_summary(client, order.plant, order.number)
        return [s.status for s in summary.steps if s.kind.value == "mes.dispatch"] == ["done"]

    await eventually(dispatched)
    summary = await order_summary(client, order.plant, order.number)
    assert summary.exceptions[0].status == "resolved" and summary.exceptions[0].resolved_by == "anna"
    assert len(await reference.calls(system="mes", operation="dispatch", order=order.number)) == 1
    alerts = await reference.calls(system="notify", operation="alert", order=order.number)
    assert any("mes.dispatch" in a.payload["message"] for a in alerts)
    actions = [r.action for r in await audit.records(workflow_id=handle.id)]
    assert actions.count("exception_opened") == 2 and actions.count("exception_retry") == 2

    ack = await submit_event(client, event(order, "operation_confirmed", operation="0010", yield_qty=qty(10)))
    assert ack.erp is not None and ack.erp.status == "posted"

    async def acknowledged() -> bool:
        return len(await reference.calls(system="mes", operation="acknowledge", order=order.number)) == 1

    await eventually(acknowledged)
    regular, local = step_calls(list((await handle.fetch_history()).events))
    assert "erp.confirm_operation" in regular  # ERP postings stay activities
    assert not [kind for kind in regular if kind.split(".")[0] in ("mes", "qms", "wms", "notify")], regular
    # Every attempt that ended the step (rejected, rejected, done) is a marker: the rejections too.
    assert local.count("mes.dispatch") == 3 and "mes.acknowledge" in local and "notify.alert" in local, local


async def test_transient_failures_of_a_local_step_retry_and_a_defect_parks_after_its_attempts(
    client: Client, worker: object, reference: MemoryStore
) -> None:
    locked, broken = new_order(), new_order()
    await reference.add_rule("wms", "stage", order=locked.number, kind="transient", times=3,
                             message="bin 01-02-03 is locked by an inventory count")
    await reference.add_rule("wms", "stage", order=broken.number, kind="crash", message="'handling_unit'")
    await start_order(client, locked, fast_policy())
    await start_order(client, broken, fast_policy(unexpected_error_attempts=2))

    async def staged() -> bool:
        summary = await order_summary(client, locked.plant, locked.number)
        return [s.status for s in summary.steps if s.kind.value == "wms.stage"] == ["done"]

    await eventually(staged)
    assert (await order_summary(client, locked.plant, locked.number)).exceptions == []
    assert len(await reference.calls(system="wms", operation="stage", order=locked.number)) == 1
    outcomes = [(e.action, e.outcome) for e in reference.entries(order=locked.number) if e.operation == "stage"]
    assert outcomes == [("post", "transient"), ("lookup", "missing"), ("post", "transient"),
                        ("lookup", "missing"), ("post", "transient"), ("lookup", "missing"), ("post", "posted")]

    async def parked() -> bool:
        return bool((await order_summary(client, broken.plant, broken.number)).open_exceptions)

    await eventually(parked)
    [exc] = (await order_summary(client, broken.plant, broken.number)).open_exceptions
    assert exc.category == "unexpected_error" and exc.step_kind == "wms.stage"
    assert "unexpected error after 2 attempts: KeyError" in exc.message  # the local activity's own attempt count
    crashes = [e for e in reference.entries(order=broken.number) if e.operation == "stage"]
    assert [(e.action, e.outcome) for e in crashes] == [("post", "crash"), ("lookup", "missing"), ("post", "crash")]


async def test_current_details_show_a_local_step_waiting_to_be_retried(
    client: Client, worker: object, reference: MemoryStore
) -> None:
    """A backoff above the local retry threshold waits on a workflow timer: the order answers meanwhile and its
    current details list the step in progress (the UI has no pending activity for it)."""
    order = new_order()
    await reference.add_rule("wms", "stage", order=order.number, kind="transient", times=1,
                             message="WMS 503 Service Unavailable")
    await start_order(client, order, fast_policy(retry_initial=timedelta(seconds=4),
                                                 retry_max_interval=timedelta(seconds=4)))

    async def retried_later() -> str | None:
        current = await current_details(client, order.plant, order.number)
        return current if "`wms.stage`" in current and "In progress" in current else None

    current = await eventually(retried_later)
    assert "since" in current and "worker's log" in current

    async def staged() -> bool:
        summary = await order_summary(client, order.plant, order.number)
        return [s.status for s in summary.steps if s.kind.value == "wms.stage"] == ["done"]

    await eventually(staged)
    assert "`wms.stage`" not in await current_details(client, order.plant, order.number)
    history = await client.get_workflow_handle(workflow_id(order.plant, order.number)).fetch_history()
    fired = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_TIMER_FIRED]
    assert fired, "the 4 s backoff waited on a workflow timer, not inside the workflow task"


@pytest.mark.parametrize("local", [True, False], ids=["local", "regular"])
async def test_a_local_step_renews_its_lease_without_heartbeats(
    local: bool, ledger: Ledger, reference: MemoryStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Core refuses a local activity's heartbeat (a warning per beat): the keep-alive renews the ledger lease
    only. A regular activity heartbeats too."""
    monkeypatch.setattr(activity_base, "HEARTBEAT_INTERVAL", timedelta(milliseconds=20))
    renewals: list[str] = []
    renew = ledger.renew

    async def counting_renew(key: str, owner: str, ttl: timedelta) -> bool:
        renewals.append(key)
        return await renew(key, owner, ttl)

    monkeypatch.setattr(ledger, "renew", counting_renew)
    order = new_order()
    req = c.StepRequest(idempotency_key=f"keepalive-{order.number}-{local}", workflow_id="wf", step_id="s1",
                        kind=c.StepKind.MES_ACKNOWLEDGE, order=order,
                        command=c.Acknowledge(event_id="e1", status="posted"))

    async def slow_call(_systems: PlantSystems, _key: str, _retry: bool) -> c.StepResult:
        await asyncio.sleep(0.3)
        return c.StepResult(documents=["ACK-1"])

    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, is_local=local, heartbeat_timeout=None)
    beats: list[object] = []
    env.on_heartbeat = lambda *details: beats.append(details)
    result = await env.run(ActivityBase(MemoryRegistry(reference), ledger).execute, req, slow_call)
    assert result.documents == ["ACK-1"]
    assert renewals, "the lease is renewed while the call runs"
    assert bool(beats) is not local
