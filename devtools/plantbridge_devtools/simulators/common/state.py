"""A small document store on one SQLite file, shared by the plant-system simulators.

Objects are JSON documents keyed by ``(kind, key)``, with an optional ``ref`` column (the
caller's reference or a parent id) for look-ups, kept in insertion order. Number ranges live in
``counter``, settings in ``setting``, and replayable answers of idempotent requests in
``idempotency``. A simulator may add tables of its own with ``extra_schema``. Access is
thread-safe; ``transaction()`` blocks nest (inner blocks join the outer one), so a change is stored
completely or not at all and survives a restart.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Self

Doc = dict[str, Any]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS doc (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    ref TEXT,
    data TEXT NOT NULL,
    UNIQUE (kind, key)
);
CREATE INDEX IF NOT EXISTS doc_ref ON doc (kind, ref);
CREATE TABLE IF NOT EXISTS counter (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS setting (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS idempotency (
    key TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    status INTEGER NOT NULL,
    body TEXT NOT NULL
);
"""


class SqliteFile:
    """One SQLite file (WAL) behind a re-entrant lock, with nestable ``transaction()`` blocks.

    The shared mechanism of every simulator's state; subclasses add their tables and access.
    """

    def __init__(self, path: str, schema: str) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._depth = 0
        self.db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(schema)

    @property
    def lock(self) -> threading.RLock:
        return self._lock

    def close(self) -> None:
        with self._lock:
            self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[Self]:
        with self._lock:
            outer = self._depth == 0
            if outer:
                self.db.execute("BEGIN IMMEDIATE")
            self._depth += 1
            try:
                yield self
            except BaseException:
                self._depth -= 1
                if outer:
                    self.db.execute("ROLLBACK")
                raise
            self._depth -= 1
            if outer:
                self.db.execute("COMMIT")


class SqliteState(SqliteFile):
    """Thread-safe document store over one SQLite file."""

    def __init__(self, path: str, *, extra_schema: str = "", extra_tables: Sequence[str] = ()) -> None:
        super().__init__(path, _SCHEMA + extra_schema)
        self._tables = ("doc", "counter", "setting", "idempotency", *extra_tables)

    # --- documents ------------------------------------------------------------------------

    def get(self, kind: str, key: str) -> Doc | None:
        with self._lock:
            row = self.db.execute("SELECT data FROM doc WHERE kind=? AND key=?", (kind, key)).fetchone()
        return json.loads(row[0]) if row else None

    def all(self, kind: str) -> list[Doc]:
        with self._lock:
            rows = self.db.execute("SELECT data FROM doc WHERE kind=? ORDER BY seq", (kind,)).fetchall()
        return [json.loads(r[0]) for r in rows]

    def by_ref(self, kind: str, ref: str) -> list[Doc]:
        with self._lock:
            rows = self.db.execute("SELECT data FROM doc WHERE kind=? AND ref=? ORDER BY seq", (kind, ref)).fetchall()
        return [json.loads(r[0]) for r in rows]

    def put(self, kind: str, key: str, data: Doc, ref: str | None = None) -> Doc:
        """Insert or update (an update keeps the insertion order and, if ``ref`` is None, the ref)."""
        text = json.dumps(data, sort_keys=True, default=str)
        with self._lock:
            self.db.execute(
                "INSERT INTO doc (kind, key, ref, data) VALUES (?, ?, ?, ?) ON CONFLICT (kind, key) "
                "DO UPDATE SET data=excluded.data, ref=COALESCE(excluded.ref, doc.ref)",
                (kind, key, ref, text),
            )
        return data

    def count(self, kind: str) -> int:
        with self._lock:
            return int(self.db.execute("SELECT COUNT(*) FROM doc WHERE kind=?", (kind,)).fetchone()[0])

    def kinds(self) -> list[str]:
        with self._lock:
            return [r[0] for r in self.db.execute("SELECT DISTINCT kind FROM doc ORDER BY kind").fetchall()]

    # --- number ranges and settings -------------------------------------------------------

    def next_number(self, name: str, first: int = 1) -> int:
        with self.transaction():
            row = self.db.execute("SELECT value FROM counter WHERE name=?", (name,)).fetchone()
            value = first if row is None else int(row[0]) + 1
            self.db.execute(
                "INSERT INTO counter (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value=excluded.value",
                (name, value),
            )
        return value

    def get_setting(self, name: str, default: Any = None) -> Any:
        with self._lock:
            row = self.db.execute("SELECT value FROM setting WHERE name=?", (name,)).fetchone()
        return json.loads(row[0]) if row else default

    def set_setting(self, name: str, value: Any) -> None:
        with self._lock:
            self.db.execute(
                "INSERT INTO setting (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value=excluded.value",
                (name, json.dumps(value, default=str)),
            )

    # --- idempotent requests --------------------------------------------------------------

    def recall_answer(self, key: str) -> tuple[str, int, Any] | None:
        """The stored ``(fingerprint, status, body)`` of an earlier request with this key."""
        with self._lock:
            row = self.db.execute(
                "SELECT fingerprint, status, body FROM idempotency WHERE key=?", (key,)
            ).fetchone()
        return (row[0], int(row[1]), json.loads(row[2])) if row else None

    def remember_answer(self, key: str, fingerprint: str, status: int, body: Any) -> None:
        with self._lock:
            self.db.execute(
                "INSERT OR REPLACE INTO idempotency (key, fingerprint, status, body) VALUES (?, ?, ?, ?)",
                (key, fingerprint, status, json.dumps(body, default=str)),
            )

    # --- whole state ----------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Every document by kind, with counts (for ``GET /admin/state``)."""
        kinds = self.kinds()
        return {"counts": {k: self.count(k) for k in kinds}, "objects": {k: self.all(k) for k in kinds}}

    def reset(self) -> None:
        with self.transaction():
            for table in self._tables:
                self.db.execute(f"DELETE FROM {table}")
