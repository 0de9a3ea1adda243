"""Audit archive and retention: old audit and finished inbox rows move to JSON Lines + gzip archives
with a manifest and sha256; `waiting` inbox rows past the TTL become dead letters with an alert.
Real Temporal dev server, the AuditArchive workflow on an in-process worker, the store in SQLite,
`plantbridge batch run audit-archive` through typer's CliRunner in a thread."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError
from rich.console import Console
from sqlalchemy import select
from temporalio.client import Client
from temporalio.worker import Worker
from typer.testing import CliRunner

from plantbridge.activities.batch import BatchActivities
from plantbridge.activities.notify import NotifyActivities
from plantbridge.batch.archive import write_archive
from plantbridge.canonical.batch_config import RetentionPolicy
from plantbridge.connectors.memory import MemoryRegistry, MemoryStore
from plantbridge.store import AuditTrail, Database, sqlite_url
from plantbridge.store.inbox import InboxMessage
from plantbridge.store.ledger import Ledger
from plantbridge.store.models import AuditRecord
from plantbridge.workers import batch_cli
from plantbridge.workers.cli import app
from plantbridge.workers.schedules import sync_schedules
from plantbridge.workflows.batch.audit_archive import AuditArchiveWorkflow
from plantbridge_devtools.temporal_server import DevServer


def test_retention_must_keep_what_the_shift_summary_reads() -> None:
    with pytest.raises(ValidationError, match="look-back"):
        RetentionPolicy(inbox_retention=timedelta(days=2))
    with pytest.raises(ValidationError, match="look-back"):
        RetentionPolicy(audit_retention=timedelta(days=3))
    with pytest.raises(ValidationError, match="shorter than inbox_retention"):
        RetentionPolicy(inbox_retention=timedelta(days=10), waiting_ttl=timedelta(days=10))
    assert RetentionPolicy(inbox_retention=timedelta(days=4), waiting_ttl=timedelta(days=1))


def test_same_rows_same_archive(tmp_path: Path) -> None:
    rows = [{"id": 1, "at": "2026-01-01T00:00:00+00:00", "x": "a"}, {"id": 2, "at": "2026-01-02T00:00:00+00:00"}]
    cutoff = datetime(2026, 2, 1, tzinfo=UTC)
    first = write_archive(tmp_path, "audit", rows, cutoff, "at")
    again = write_archive(tmp_path, "audit", rows, cutoff, "at")  # a retry after a crash before the delete
    assert first.new and not again.new and first.path == again.path and len(list(tmp_path.iterdir())) == 2


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Database]:
    db = await Database(sqlite_url(tmp_path / "pb.db")).init()
    yield db
    await db.close()


async def test_archive_run_moves_old_rows_and_dead_letters_waiting(
        client: Client, temporal_server: DevServer, store: Database, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    now = datetime.now(UTC)
    ago = lambda days: now - timedelta(days=days)  # noqa: E731
    async with store.sessions() as s:
        s.add_all([AuditRecord(at=ago(100 + i), workflow_id="wf", plant="1000", order_number=f"o{i}", actor="a",
                               action="hold", detail={"i": i}) for i in range(3)])
        s.add(AuditRecord(at=ago(10), workflow_id="wf", plant="1000", order_number="recent", actor="a",
                          action="hold", detail={}))
        for status, days, event in (("processed", 40, "p-old"), ("dead", 35, "d-old"), ("processed", 5, "p-new"),
                                    ("waiting", 8, "w-old"), ("waiting", 1, "w-new"), ("received", 40, "r-old")):
            s.add(InboxMessage(received_at=ago(days), updated_at=ago(days), channel="plant_event",
                               body=json.dumps({"event_id": event}).encode(), status=status, plant="1000",
                               order_number="4711", event_id=event))
        await s.commit()

    queue = f"archive-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("PLANTBRIDGE_TASK_QUEUE", queue)
    monkeypatch.setattr(batch_cli, "console", Console(width=400))
    exports = tmp_path / "exports"
    acts = BatchActivities({}, store, exports, RetentionPolicy())  # 90 d audit, 30 d inbox, 7 d waiting
    notifier = MemoryStore()  # the plant's notifier (in memory): what the notify.alert activity reached
    notify = NotifyActivities(MemoryRegistry(notifier), Ledger(store)).all()
    runner = CliRunner()
    args = ["batch", "run", "audit-archive", "--temporal", temporal_server.address]
    async with Worker(client, task_queue=queue, workflows=[AuditArchiveWorkflow], activities=[*acts.all(), *notify]):
        report = await sync_schedules(client, {}, queue, audit_archive=True)
        assert "audit-archive" in report.created + report.updated + report.unchanged
        desc = await client.get_schedule_handle("audit-archive").describe()
        (cal,) = desc.schedule.spec.calendars
        assert (cal.hour[0].start, cal.minute[0].start, desc.schedule.action.task_queue) == (2, 30, queue)
        result = await asyncio.to_thread(runner.invoke, app, args)
        assert result.exit_code == 0, (result.output, result.exception)
        again = await asyncio.to_thread(runner.invoke, app, args)
        assert again.exit_code == 0, (again.output, again.exception)
    out = result.output
    assert "archived 3 audit rows" in out and "archived 2 inbox rows" in out and "dead letters" in out
    assert "archived" not in again.output and "dead letters" not in again.output

    # The archives: one per table, each with a manifest whose checksum matches; rows as they were.
    archives = sorted((exports / "archive").rglob("*.jsonl.gz"))
    assert [p.parent.name for p in archives] == ["audit", "inbox"]
    for path in archives:
        manifest = json.loads(path.with_name(path.name.replace(".jsonl.gz", ".manifest.json")).read_text())
        assert manifest["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
        raw = gzip.decompress(path.read_bytes())
        assert manifest["sha256_uncompressed"] == hashlib.sha256(raw).hexdigest()
        rows = [json.loads(line) for line in raw.splitlines()]
        assert len(rows) == manifest["rows"] and [r["id"] for r in rows] == sorted(r["id"] for r in rows)
        if manifest["table"] == "inbox":
            assert sorted(r["event_id"] for r in rows) == ["d-old", "p-old"]
            assert json.loads(__import__("base64").b64decode(rows[0]["body"]["base64"])) == {"event_id": "p-old"}
        else:
            assert sorted(r["order_number"] for r in rows) == ["o0", "o1", "o2"]

    # What stays: recent and unfinished rows; the old waiting row is a dead letter with its reason.
    async with store.sessions() as s:
        inbox = {m.event_id: m for m in (await s.scalars(select(InboxMessage))).all()}
        audits = list((await s.scalars(select(AuditRecord))).all())
    assert sorted(inbox) == ["p-new", "r-old", "w-new", "w-old"]
    assert inbox["w-old"].status == "dead" and "waited longer than 7 days" in (inbox["w-old"].reason or "")
    assert inbox["w-new"].status == "waiting" and inbox["r-old"].status == "received"
    assert sorted(a.order_number for a in audits) == ["4711", "recent"]
    (alert,) = await AuditTrail(store).records(action="inbox_dead_letter")
    assert alert.detail["event_id"] == "w-old" and alert.plant == "1000"
    # ... and alerted once through the plant's notifier (the second run found no new dead letter).
    (sent,) = await notifier.calls("notify", "alert")
    assert sent.order == "4711" and "w-old" in json.dumps(sent.payload) and "dead letter" in json.dumps(sent.payload)
