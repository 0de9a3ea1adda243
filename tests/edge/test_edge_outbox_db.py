"""The outbox file: synchronous=FULL (an event stored is durable), and an outbox written before the dead
state existed is opened as it is (its pending events kept, the refusal count added)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sqlalchemy import text

from plantbridge.edge.outbox import Outbox, open_db
from plantbridge.store import sqlite_url
from plantbridge.store.engine import make_engine

FULL = 2  # PRAGMA synchronous: 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA


def test_outbox_is_synchronous_full_and_old_files_gain_the_refusal_count(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    old = sqlite3.connect(str(path))
    old.executescript("""
        CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, event_id TEXT NOT NULL UNIQUE,
            machine_id TEXT NOT NULL, event_type TEXT NOT NULL, payload TEXT NOT NULL, created_at REAL NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending', answer TEXT, attempts INTEGER NOT NULL DEFAULT 0,
            answered_at REAL);
        INSERT INTO outbox (event_id, machine_id, event_type, payload, created_at)
            VALUES ('e1', 'M01', 'downtime_started', '{"event_id": "e1"}', 0);
    """)
    old.close()
    db = open_db(path)
    try:
        assert db.execute("PRAGMA synchronous").fetchone()[0] == FULL
        outbox = Outbox(db)
        assert [row.event_id for row in outbox.pending(10)] == ["e1"]
        assert outbox.refused({"e1": "{}"}, max_refusals=2) == []
        assert outbox.refused({"e1": "{}"}, max_refusals=2) == ["e1"]
        assert outbox.counts() == {"dead": 1} and outbox.dead()[0]["refusals"] == 2
        assert outbox.requeue(["e1"]) == 1 and outbox.counts() == {"pending": 1}
        assert outbox.purge(older_than_s=0) == 0  # pending (and dead) events are never purged
    finally:
        db.close()


async def test_store_engine_sqlite_is_synchronous_full(tmp_path: Path) -> None:
    engine = make_engine(sqlite_url(tmp_path / "store.db"))
    try:
        async with engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA synchronous"))).scalar() == FULL
    finally:
        await engine.dispose()
