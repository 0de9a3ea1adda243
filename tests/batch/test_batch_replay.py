"""Recorded histories of the batch workflows replay under the current code (determinism guard).

`tests/histories/batch/*.json` were recorded from real runs (real Temporal dev server, the batch
activities on an in-process worker). Record again after a deliberate change with
`PLANTBRIDGE_RECORD_HISTORY=1 pytest tests/batch/test_batch_replay.py` and keep the old files. AuditArchive
and the patch `dead-letter-notify`:
- `audit_archive_dead_letter_log_only.json`: the workflow and activity before the alert existed;
- `audit_archive_alerts_before_patch.json`: the old workflow code (bc3ca7f) with the new activity, whose
  result names the dead letters to alert: a run that was in flight across the upgrade. Without the
  `workflow.patched` guard it fails to replay (checked by hand: replacing the guard with `True` fails it);
- `audit_archive_dead_letter_notify.json`: the current code, the alert sent through `notify.alert`.
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from temporalio.client import Client, WorkflowHistory
from temporalio.worker import Replayer, Worker

from plantbridge.activities.batch import BatchActivities
from plantbridge.activities.notify import NotifyActivities
from plantbridge.canonical.batch_config import RetentionPolicy
from plantbridge.canonical.batch_jobs import AUDIT_ARCHIVE_WORKFLOW, AuditArchiveRequest, AuditArchiveResult
from plantbridge.connectors.memory import MemoryRegistry, MemoryStore
from plantbridge.converter import pydantic_data_converter
from plantbridge.store import Database, Ledger, sqlite_url
from plantbridge.store.inbox import InboxMessage
from plantbridge.workflows.batch.audit_archive import AuditArchiveWorkflow
from plantbridge.workflows.batch.masterdata_check import MasterDataCheckWorkflow
from plantbridge.workflows.batch.shift_summary import ShiftSummaryWorkflow

HISTORIES = Path(__file__).parent.parent / "histories" / "batch"
BATCH_WORKFLOWS = [AuditArchiveWorkflow, ShiftSummaryWorkflow, MasterDataCheckWorkflow]


async def waiting_rows(db: Database, now: datetime) -> None:
    async with db.sessions() as s:
        for days, event in ((8, "w-old"), (1, "w-new")):
            s.add(InboxMessage(received_at=now - timedelta(days=days), updated_at=now - timedelta(days=days),
                               channel="plant_event", body=json.dumps({"event_id": event}).encode(),
                               status="waiting", plant="1000", order_number="4711", event_id=event))
        await s.commit()


@pytest.mark.skipif(not os.environ.get("PLANTBRIDGE_RECORD_HISTORY"), reason="records only on request")
async def test_record_audit_archive_with_a_dead_letter(client: Client, tmp_path: Path) -> None:
    """Records `audit_archive_dead_letter_notify.json` (the alert through notify.alert); the older
    `audit_archive_dead_letter_log_only.json` was recorded before `dead-letter-notify` with no notify activity."""
    db = await Database(sqlite_url(tmp_path / "pb.db")).init()
    try:
        now = datetime.now(UTC)
        await waiting_rows(db, now)
        queue = f"record-{uuid.uuid4().hex[:8]}"
        acts = BatchActivities({}, db, tmp_path / "exports", RetentionPolicy())
        notifier = MemoryStore()
        notify = NotifyActivities(MemoryRegistry(notifier), Ledger(db)).all()
        async with Worker(client, task_queue=queue, workflows=BATCH_WORKFLOWS, activities=[*acts.all(), *notify]):
            handle = await client.start_workflow(AUDIT_ARCHIVE_WORKFLOW, AuditArchiveRequest(as_of=now),
                                                 id=f"audit-archive:record:{uuid.uuid4().hex[:6]}", task_queue=queue,
                                                 result_type=AuditArchiveResult)
            result = await handle.result()
        assert len(result.dead_letters) == 1 and len(await notifier.calls("notify", "alert")) == 1
        HISTORIES.mkdir(parents=True, exist_ok=True)
        (HISTORIES / "audit_archive_dead_letter_notify.json").write_text((await handle.fetch_history()).to_json())
    finally:
        await db.close()


@pytest.mark.parametrize("path", sorted(HISTORIES.glob("*.json")), ids=lambda p: p.name)
async def test_recorded_batch_history_replays(path: Path) -> None:
    replayer = Replayer(workflows=BATCH_WORKFLOWS, data_converter=pydantic_data_converter)
    history = WorkflowHistory.from_json("batch:replay", path.read_text())
    result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure
