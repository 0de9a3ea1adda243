"""The idempotency ledger and the audit trail, on SQLite and PostgreSQL (the `db` fixture)."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from plantbridge.store import AuditTrail, Database, IdempotencyConflict, Ledger, request_hash
from plantbridge.store.audit import AuditEntry


def _key() -> str:
    return f"k-{uuid.uuid4().hex}"


async def test_ledger_begin_finish_and_retry(db: Database) -> None:
    ledger, key, h = Ledger(db), _key(), request_hash({"qty": 1})
    assert await ledger.begin(key, h, workflow_id="wf-1", step_kind="confirm", system="erp") is None
    again = await ledger.begin(key, h, workflow_id="wf-1", step_kind="confirm", system="erp")
    assert again is not None and again.status == "started" and again.attempts == 1
    await ledger.finish(key, "succeeded", ["DOC-1"], None)
    done = await ledger.begin(key, h, workflow_id="wf-1", step_kind="confirm", system="erp")
    assert done is not None and done.status == "succeeded" and done.documents == ["DOC-1"] and done.attempts == 2
    state = await ledger.get(key)
    assert state is not None and state.attempts == 2  # a succeeded key is not counted again
    assert [e.key for e in await ledger.entries("wf-1") if e.key == key] == [key]


async def test_ledger_refuses_a_key_reused_for_another_request(db: Database) -> None:
    ledger, key = Ledger(db), _key()
    await ledger.begin(key, request_hash({"qty": 1}), workflow_id="wf-2", step_kind="c", system="erp")
    with pytest.raises(IdempotencyConflict):
        await ledger.begin(key, request_hash({"qty": 7}), workflow_id="wf-2", step_kind="c", system="erp")


async def test_ledger_concurrent_begins_make_one_row(db: Database) -> None:
    ledger, key, h = Ledger(db), _key(), request_hash("x")
    results = await asyncio.gather(*[ledger.begin(key, h, workflow_id="wf-3", step_kind="c", system="erp")
                                     for _ in range(8)])
    assert sum(r is None for r in results) == 1  # exactly one caller recorded the intent first
    state = await ledger.get(key)
    assert state is not None and state.attempts == 8


async def test_audit_dedups_by_key_and_filters(db: Database) -> None:
    audit, wf, dedup = AuditTrail(db), f"wf-{uuid.uuid4().hex[:8]}", _key()
    kw = {"workflow_id": wf, "plant": "1000", "order": "4711", "actor": "sup", "action": "hold"}
    assert await audit.record(**kw, detail={"why": "test"}, dedup_key=dedup) is True  # type: ignore[arg-type]
    assert await audit.record(**kw, detail={"why": "test"}, dedup_key=dedup) is False  # type: ignore[arg-type]
    assert await audit.record(**{**kw, "action": "release_hold"}) is True  # type: ignore[arg-type]
    rows = await audit.records(workflow_id=wf)
    assert [r.action for r in rows] == ["hold", "release_hold"]
    assert rows[0].detail == {"why": "test"}
    if db.url.startswith("postgresql"):  # SQLite keeps no offset
        assert rows[0].at.tzinfo is not None
    assert [r.action for r in await audit.records(workflow_id=wf, action="hold")] == ["hold"]


async def test_audit_batch_writes_in_order_and_counts_only_new_records(db: Database) -> None:
    """One statement for a saga's waiting notes: in their order, a dedup key known before (or twice in
    the batch) written once, the count the new ones."""
    audit, wf = AuditTrail(db), f"wf-{uuid.uuid4().hex[:8]}"
    keys = [_key() for _ in range(3)]

    def entry(action: str, dedup: str | None) -> AuditEntry:
        return AuditEntry(workflow_id=wf, plant="1000", order="4711", actor="saga", action=action,
                          detail={"n": action}, dedup_key=dedup)

    assert await audit.record(**entry("first", keys[0])) is True
    batch = [entry("second", keys[1]), entry("again", keys[0]), entry("third", keys[2]), entry("twice", keys[1]),
             entry("free", None)]
    assert await audit.record_many(batch) == 3
    assert await audit.record_many(batch) == 1  # a retried batch: only the note without a key is new
    assert await audit.record_many([]) == 0
    rows = await audit.records(workflow_id=wf)
    assert [(r.action, r.detail) for r in rows] == [
        ("first", {"n": "first"}), ("second", {"n": "second"}), ("third", {"n": "third"}), ("free", {"n": "free"}),
        ("free", {"n": "free"})]
