"""Issue 15 item 7: no double posting from overlapping attempts.

An ERP call slower than the activity's start-to-close: Temporal starts attempt 2 while attempt 1's
call is still in flight. Attempt 2 must wait on attempt 1's ledger lease (renewed by its heartbeat),
then find the posting, instead of looking it up too early (missing) and posting a second document.
The worker refuses to start when a plant's activity timeout is below its connectors' worst case.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client

from plantbridge.canonical.plant_config import PlantConfig
from plantbridge.client import start_order, submit_event
from plantbridge.connectors.memory import MemoryStore
from plantbridge.store import Database, Ledger
from plantbridge.workers.registry import ConfigurationError
from plantbridge.workers.timeouts import check_activity_timeouts, worst_cases
from tests.conftest import event, fast_policy, new_order, qty
from tests.support import eventually


async def test_slow_erp_call_past_the_activity_timeout_posts_once(
    client: Client, worker: object, reference: MemoryStore, db: Database
) -> None:
    order = new_order(components=False)
    # The first call to the ERP takes 5 s; the activity's start-to-close is 2 s.
    await reference.add_rule("erp", "confirm_operation", kind="hang", code="5", order=order.number, times=1,
                             message="the ERP is slow")
    handle = await start_order(client, order, fast_policy(activity_timeout=timedelta(seconds=2)))
    confirm = event(order, "operation_confirmed", operation="0010", yield_qty=qty(10))
    await submit_event(client, confirm, ack_wait=timedelta(seconds=1))

    async def confirmation() -> tuple[HistoryEvent, HistoryEvent, HistoryEvent] | None:
        scheduled: HistoryEvent | None = None
        started = None
        async for e in handle.fetch_history_events():
            if (e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
                    and e.activity_task_scheduled_event_attributes.activity_type.name == "erp.confirm_operation"):
                scheduled = e
            elif (e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED and scheduled is not None
                    and e.activity_task_started_event_attributes.scheduled_event_id == scheduled.event_id):
                started = e
            elif (e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED and started and scheduled
                    and e.activity_task_completed_event_attributes.scheduled_event_id == scheduled.event_id):
                return scheduled, started, e
        return None

    scheduled, started, completed = await eventually(confirmation, timeout=60, what="the confirmation step completed")
    # One document; the only call the ERP saw is attempt 1's posting (no look-up that missed, no
    # second posting beside it).
    postings = await reference.calls(system="erp", operation="confirm_operation", order=order.number)
    assert len(postings) == 1, postings
    erp_log = [(e.action, e.outcome) for e in reference.entries(order=order.number) if e.system == "erp"]
    assert erp_log == [("post", "posted")], erp_log
    # Attempt 1 timed out; a later attempt completed with attempt 1's document, found in the ledger
    # after waiting on the lease (the result says `replayed`).
    assert started.activity_task_started_event_attributes.attempt >= 2
    # ... which waited for attempt 1's slow call (5 s) rather than answer before it ended.
    waited = completed.event_time.ToDatetime() - scheduled.event_time.ToDatetime()
    assert waited >= timedelta(seconds=4.5), waited
    result = await client.data_converter.decode(completed.activity_task_completed_event_attributes.result.payloads)
    assert result[0]["documents"] == [postings[0].document] and result[0]["replayed"] is True
    # The ledger row: succeeded once, begun by two attempts at least, lease released.
    [row] = [e for e in await Ledger(db).entries(handle.id) if e.system == "erp"]
    assert row.status == "succeeded" and row.attempts >= 2 and row.lease_owner is None


async def test_lease_is_exclusive_until_it_lapses_or_the_row_is_finished(db: Database) -> None:
    ledger = Ledger(db)
    key = f"lease-test-{id(ledger)}"
    assert await ledger.begin(key, "h", workflow_id="wf", step_kind="confirm_operation", system="erp") is None
    assert await ledger.acquire(key, "a1", timedelta(seconds=30))
    assert not await ledger.acquire(key, "a2", timedelta(seconds=30))  # attempt 1's call in flight
    assert await ledger.renew(key, "a1", timedelta(milliseconds=200))
    assert not await ledger.renew(key, "a2", timedelta(seconds=30))
    await asyncio.sleep(0.3)  # attempt 1's worker died: no renewal, the lease lapses
    assert await ledger.acquire(key, "a2", timedelta(seconds=30))
    await ledger.finish(key, "succeeded", ["DOC-1"], None)
    assert not await ledger.acquire(key, "a3", timedelta(seconds=30))  # succeeded: never leased


def _plant(**policy: object) -> PlantConfig:
    return PlantConfig.model_validate({
        "plant": "1000",
        "erp": {"kind": "sap_odata", "url": "http://127.0.0.1:1", "user": "U", "password_env": "X", "timeout_s": 30},
        "mes": {"kind": "rest", "url": "http://127.0.0.1:2", "api_key_env": "Y", "timeout_s": 15},
        "policy": policy,
    })


def test_worst_case_of_a_sap_plant() -> None:
    cases = worst_cases(_plant())
    assert cases["erp"][0] == 150  # look-up + CSRF fetch + POST + CSRF refetch + POST, 30 s each
    assert cases["mes"][0] == 30
    check_activity_timeouts({"1000": _plant()})  # the default (300 s) is above it
    with pytest.raises(ConfigurationError) as err:
        check_activity_timeouts({"1000": _plant(activity_timeout="PT60S")})
    text = str(err.value)
    assert "plant 1000" in text and "60 s" in text and "150 s" in text and "erp" in text


def test_plant_system_worst_case_must_fit_a_local_step() -> None:
    """MES steps run as local activities of at most 45 s (workflows/local_steps.py): an MES connector whose
    worst case (look-up + POST) reaches that is refused, even under a long `activity_timeout`."""
    slow_mes = _plant().model_copy(update={"mes": _plant().mes.model_copy(update={"timeout_s": 25})})
    with pytest.raises(ConfigurationError) as err:
        check_activity_timeouts({"1000": slow_mes})
    text = str(err.value)
    assert "mes steps run as local activities of at most 45 s" in text and "50 s" in text, text


def test_worker_refuses_to_start_with_a_too_short_activity_timeout(tmp_path: Path) -> None:
    plants = tmp_path / "plants"
    plants.mkdir()
    (plants / "1000.yaml").write_text(
        'plant: "1000"\n'
        "erp: {kind: sap_odata, url: 'http://127.0.0.1:1', user: U, password_env: PB_TEST_SAP_PW, timeout_s: 30}\n"
        "policy: {activity_timeout: PT60S}\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "plantbridge.workers.cli", "worker", "--plants-dir", str(plants),
         "--store-url", f"sqlite+aiosqlite:///{tmp_path / 's.db'}", "--temporal", "127.0.0.1:1"],
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert "plant 1000" in proc.stderr and "150 s" in proc.stderr, proc.stderr
