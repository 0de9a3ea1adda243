"""A shift summary backfilled for a shift whose plant events the audit archive already moved out of the
inbox is refused with a clear, non-retryable error (`ShiftArchived`), and nothing is written; a shift after
the archive's cutoff is still summarized. The activity runs in temporalio's ActivityEnvironment on a real
SQLite store; the archive is written by the real `archive_store`."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from plantbridge.activities.batch import BatchActivities
from plantbridge.batch.archive import archive_store, last_cutoff
from plantbridge.batch.sources import LATE_ARRIVAL
from plantbridge.canonical.batch_jobs import SHIFT_ARCHIVED, ShiftSummaryJob
from plantbridge.canonical.plant_config import PlantConfig
from plantbridge.store import Database, sqlite_url
from plantbridge.store.inbox import InboxMessage

PLANT = "3200"


async def test_backfill_older_than_the_inbox_archive_is_refused(tmp_path: Path) -> None:
    db = await Database(sqlite_url(tmp_path / "store.db")).init()
    now = datetime.now(UTC)
    async with db.sessions() as s:
        s.add(InboxMessage(received_at=now - timedelta(days=40), updated_at=now - timedelta(days=40),
                           channel="plant_event", body=json.dumps({"event_id": "old"}).encode(), status="processed",
                           plant=PLANT, order_number="4711", event_id="old"))
        await s.commit()
    exports = tmp_path / "exports"
    cutoff = now - timedelta(days=30)
    files = await archive_store(db, exports / "archive", audit_cutoff=now - timedelta(days=90), inbox_cutoff=cutoff)
    assert [f.table for f in files] == ["inbox"]
    assert last_cutoff(exports / "archive", "inbox") == cutoff

    cfg = PlantConfig.model_validate({
        "plant": PLANT, "erp": {"kind": "reference"}, "timezone": "UTC",
        "shifts": [{"name": "day", "start": "06:00", "end": "14:00"}],
        "working_days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]})
    acts = BatchActivities({PLANT: cfg}, db, exports)
    env = ActivityEnvironment()
    for days_ago in (45, 31, 29):  # 29: the shift itself is after the cutoff, its look-back is not
        day = (now - timedelta(days=days_ago)).date()
        with pytest.raises(ApplicationError) as refused:
            await env.run(acts.shift_summary, ShiftSummaryJob(plant=PLANT, shift="day", day=day))
        err = refused.value
        assert err.type == SHIFT_ARCHIVED and err.non_retryable, err
        assert f"shift day of {day.isoformat()}" in err.message and "older than the inbox archive" in err.message
        assert cutoff.isoformat() in err.message
    assert not (exports / PLANT).exists()  # nothing written, not even an empty summary

    day = (now - timedelta(days=27)).date()  # its look-back (LATE_ARRIVAL) starts after the cutoff
    assert datetime(day.year, day.month, day.day, 6, tzinfo=UTC) - LATE_ARRIVAL > cutoff
    ok = await env.run(acts.shift_summary, ShiftSummaryJob(plant=PLANT, shift="day", day=day))
    assert ok.shift == "day" and ok.day == day and ok.written and ok.orders == []
    await db.close()
