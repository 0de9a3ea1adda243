"""Batch runs on the Prometheus endpoint: runs by job, plant and outcome, their duration, documents
written (new or already held) and dead letters; and `batch run shift-summary` by hand without a shift
(the last shift that ended and the running one so far). The activities run in temporalio's
ActivityEnvironment with a real Temporal runtime meter exporting Prometheus on a free port, on a real
SQLite store; the endpoint is scraped over HTTP."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from temporalio.exceptions import ApplicationError
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig
from temporalio.testing import ActivityEnvironment

from plantbridge.activities.batch import BatchActivities
from plantbridge.canonical.batch_jobs import AuditArchiveJob, ShiftSummaryJob
from plantbridge.canonical.plant_config import PlantConfig
from plantbridge.store import Database, Inbox, sqlite_url
from plantbridge.store.inbox import InboxMessage
from tests.batch.test_shift_schedule import store_event
from tests.support import free_port

PLANT = "3300"


def scrape(port: int) -> list[str]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return [line for line in text.splitlines() if line.startswith("plantbridge_batch")]


def value(lines: list[str], name: str, *labels: str) -> float:
    found = [float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith(name + "{")
             and all(lb in line for lb in labels)]
    return sum(found)


async def test_batch_runs_outcomes_durations_documents_and_dead_letters(tmp_path: Path) -> None:
    db = await Database(sqlite_url(tmp_path / "store.db")).init()
    now = datetime.now(UTC)
    # A round-the-clock plant: a shift always runs now, and one always ended before it.
    cfg = PlantConfig.model_validate({
        "plant": PLANT, "erp": {"kind": "reference"}, "timezone": "UTC",
        "shifts": [{"name": "a", "start": "00:00", "end": "08:00"}, {"name": "b", "start": "08:00", "end": "16:00"},
                   {"name": "c", "start": "16:00", "end": "00:00"}],
        "working_days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]})
    base = {"source": "mes-t", "plant": PLANT, "operation": "0010", "work_center": "ASSY-01",
            "event_type": "operation_confirmed"}
    await store_event(Inbox(db), PLANT, {**base, "event_id": "now-1", "order": "9001",
                                         "occurred_at": (now - timedelta(seconds=5)).isoformat(),
                                         "yield_qty": {"quantity": "12", "uom": "H87"}})
    await store_event(Inbox(db), PLANT, {**base, "event_id": "prev-1", "order": "9002",
                                         "occurred_at": (now - timedelta(hours=8, minutes=1)).isoformat(),
                                         "yield_qty": {"quantity": "3", "uom": "H87"}})
    async with db.sessions() as s:
        s.add(InboxMessage(received_at=now - timedelta(days=9), updated_at=now - timedelta(days=9),
                           channel="plant_event", body=json.dumps({"event_id": "w"}).encode(), status="waiting",
                           plant=PLANT, order_number="4711", event_id="w"))
        await s.commit()

    port = free_port()
    runtime = Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(
        bind_address=f"127.0.0.1:{port}", counters_total_suffix=True, durations_as_seconds=True)))
    env = ActivityEnvironment()
    env.metric_meter = runtime.metric_meter
    acts = BatchActivities({PLANT: cfg}, db, tmp_path / "exports")

    # By hand, no shift named: the last shift that ended and the running one so far, each in its documents.
    first = await env.run(acts.shift_summary, ShiftSummaryJob(plant=PLANT))
    assert [(s.in_progress, s.orders) for s in first.shifts][-1] == (True, ["9001"]), first
    assert len(first.shifts) == 2 and not first.shifts[0].in_progress
    assert "9001" in first.orders and len(first.written) == 4 == len(first.new)
    assert all("-so-far_" in p for p in first.shifts[1].written)
    assert json.loads(Path(next(p for p in first.shifts[1].written if p.endswith(".json"))).read_text())["in_progress"]
    again = await env.run(acts.shift_summary, ShiftSummaryJob(plant=PLANT, shift=first.shifts[0].shift,
                                                             day=first.shifts[0].day))
    assert again.written == first.shifts[0].written and not again.new  # a finished shift: the same documents
    with pytest.raises(ApplicationError):
        await env.run(acts.shift_summary, ShiftSummaryJob(plant=PLANT, shift="no-such-shift", day=now.date()))
    archive = await env.run(acts.audit_archive, AuditArchiveJob(as_of=now))
    assert archive.dead_letters and [a.order for a in archive.alerts] == ["4711"]

    lines = scrape(port)
    job = 'job="shift-summary"'
    assert value(lines, "plantbridge_batch_runs_total", job, f'plant="{PLANT}"', 'outcome="ok"') == 2, lines
    assert value(lines, "plantbridge_batch_runs_total", job, f'plant="{PLANT}"', 'outcome="failed"') == 1, lines
    assert value(lines, "plantbridge_batch_documents_total", job, 'new="true"') == 4, lines
    assert value(lines, "plantbridge_batch_documents_total", job, 'new="false"') == 2, lines
    assert value(lines, "plantbridge_batch_run_seconds_count", job, 'outcome="ok"') == 2, lines
    assert value(lines, "plantbridge_batch_runs_total", 'job="audit-archive"', 'plant="-"', 'outcome="ok"') == 1
    assert value(lines, "plantbridge_batch_dead_letters_total", f'plant="{PLANT}"') == 1, lines
    await db.close()
