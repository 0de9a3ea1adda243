"""The inbox's group commit (store/group_commit.py), on SQLite and PostgreSQL: concurrent writes share a
transaction, each caller gets its own result once committed, and a write that fails fails alone."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy.exc import IntegrityError

from plantbridge.store import Database, Inbox
from plantbridge.store.inbox import Hints


async def test_concurrent_writes_share_one_commit_and_each_gets_its_own_result(db: Database) -> None:
    inbox = Inbox(db, owner="gw-test")
    order = uuid.uuid4().hex[:10]
    received = await asyncio.gather(*(inbox.receive_event("plant_event", f'{{"n": {i}}}'.encode(),
                                                          Hints("1000", order, f"e-{i % 10}"))
                                      for i in range(20)))
    assert inbox.writes.commits == 1 and inbox.writes.writes == 20
    ids = [msg_id for msg_id, _earlier in received]
    assert len(set(ids)) == 20 and all(earlier is None for _id, earlier in received)  # none taken yet
    # Taken in one commit, outcomes in order: the second half's receipts see the first half's events taken.
    await asyncio.gather(*(inbox.finish(msg_id, "processed", answer={"n": i}, plant="1000", order=order,
                                        event_id=f"e-{i % 10}") for i, msg_id in enumerate(ids[:10])))
    assert inbox.writes.commits == 2
    again = await inbox.receive_event("plant_event", b"{}", Hints("1000", order, "e-3"))
    assert again[1] == ids[3]
    rows = {r.id: r for r in await inbox.messages(ids=ids)}
    assert [rows[i].status for i in ids] == ["processed"] * 10 + ["received"] * 10
    assert [rows[i].answer for i in ids[:10]] == [{"n": i} for i in range(10)]
    assert all(rows[i].lease_owner is None for i in ids[:10]) and all(rows[i].lease_owner == "gw-test"
                                                                        for i in ids[10:])


async def test_a_failing_write_fails_alone(db: Database) -> None:
    inbox = Inbox(db)
    good = [inbox.receive("plant_event", f"{i}".encode()) for i in range(5)]
    bad = inbox.receive(None, b"no channel")  # type: ignore[arg-type]  # NOT NULL: the statement raises
    results = await asyncio.gather(*good[:2], bad, *good[2:], return_exceptions=True)
    assert isinstance(results[2], IntegrityError)  # as the engine raises it, on either backend
    ids = [r for i, r in enumerate(results) if i != 2]
    assert all(isinstance(i, int) for i in ids)
    rows = await inbox.messages(ids=ids)  # type: ignore[arg-type]
    assert sorted(r.body for r in rows) == [f"{i}".encode() for i in range(5)]
    with pytest.raises(IntegrityError, match=r"(?i)not null|null value"):
        await inbox.receive(None, b"alone")  # type: ignore[arg-type]
