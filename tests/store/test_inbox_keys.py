"""The gateway's inbox and API keys, on SQLite and PostgreSQL (the `db` fixture)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from plantbridge.store import ApiKeys, Database, Inbox
from plantbridge.store.api_keys import ApiKeyError


async def test_inbox_receive_finish_and_query(db: Database) -> None:
    inbox = Inbox(db)
    body = b'{"event_id": "e-1", "bytes": "\\u00e9"}\x00\xff'  # raw bytes kept as they came
    msg_id = await inbox.receive("plant_event", body, content_type="application/json", key_id="abc")
    row = await inbox.get(msg_id)
    assert row is not None and row.status == "received" and row.body == body and row.attempts == 0
    plant = f"P{uuid.uuid4().hex[:6]}"
    await inbox.finish(msg_id, "waiting", reason="no saga", answer={"http_status": 202, "body": {"a": [1]}},
                       plant=plant, order="42", event_id="e-1")
    waiting = await inbox.waiting_for(plant, "42")
    assert [m.id for m in waiting] == [msg_id] and waiting[0].answer == {"http_status": 202, "body": {"a": [1]}}
    await inbox.finish(msg_id, "processed", answer={"http_status": 200, "body": {}})
    row = await inbox.get(msg_id)
    assert row is not None and row.status == "processed" and row.attempts == 2 and row.plant == plant
    assert [m.id for m in await inbox.messages(plants=[plant])] == [msg_id]
    assert await inbox.messages(plants=[plant], status="dead") == []


async def test_inbox_batch_children_and_received_before(db: Database) -> None:
    inbox = Inbox(db)
    parent = await inbox.receive("plant_event", b'{"events": []}')
    kids = await inbox.receive_many("plant_event", [b"{}", b"[]"], parent_id=parent, key_id=None)
    assert [c.id for c in await inbox.children(parent)] == kids
    later = datetime.now(UTC) + timedelta(seconds=5)
    ids = {m.id for m in await inbox.messages(ids=[parent, *kids], received_before=later)}
    assert ids == {parent, *kids}
    assert await inbox.messages(ids=[parent], received_before=datetime.now(UTC) - timedelta(hours=1)) == []


async def test_inbox_deferred_rows_are_due_after_their_backoff(db: Database) -> None:
    inbox = Inbox(db)
    msg_id = await inbox.receive("plant_event", b"{}")
    await inbox.finish(msg_id, "deferred", reason="temporal away")
    now = datetime.now(UTC)
    assert msg_id not in {r.id for r in await inbox.due_deferred(now - timedelta(seconds=10))}
    assert msg_id in {r.id for r in await inbox.due_deferred(now + timedelta(seconds=2))}
    assert await inbox.count("deferred") >= 1


async def test_inbox_stale_received_are_the_messages_left_received_not_batch_events(db: Database) -> None:
    inbox = Inbox(db)
    parent = await inbox.receive("plant_event", b'{"events": [{}]}')
    [child] = await inbox.receive_many("plant_event", [b"{}"], parent_id=parent, key_id=None)
    done = await inbox.receive("plant_event", b"{}")
    await inbox.finish(done, "processed")
    later = datetime.now(UTC) + timedelta(seconds=5)
    stale = {r.id for r in await inbox.stale_received(later, limit=100_000)}
    assert parent in stale and child not in stale and done not in stale
    assert parent not in {r.id for r in await inbox.stale_received(datetime.now(UTC) - timedelta(hours=1))}


async def test_api_keys_create_authenticate_revoke(db: Database) -> None:
    keys = ApiKeys(db, cache_seconds=0)
    name = f"k-{uuid.uuid4().hex[:8]}"
    info, key = await keys.create(name, "plant-system", ["1000", " 2000 "])
    assert info.plants == ("1000", "2000") and key.startswith("pbk_")
    who = await keys.authenticate(key)
    assert who is not None and who.name == name and who.may("1000") and not who.may("3000")
    assert await keys.authenticate(key[:-1] + ("A" if key[-1] != "A" else "B")) is None
    with pytest.raises(ApiKeyError):
        await keys.create(name, "edge", ["1000"])
    with pytest.raises(ApiKeyError):
        await keys.create("other", "janitor", ["1000"])
    assert name in {k.name for k in await keys.all_keys()}
    assert await keys.revoke(name) is True and await keys.revoke(name) is False
    assert await keys.authenticate(key) is None
    got = await keys.get(info.key_id)
    assert got is not None and got.revoked_at is not None
