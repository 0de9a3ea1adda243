"""The simulator's persistent state: one SQLite file given at creation.

Business objects (orders, operations, confirmations, material documents, inspection lots,
notifications, ...) are stored as JSON documents of their OData properties in canonical form
(see ``odata.py``), keyed by kind and business key; internal bookkeeping fields start with ``_``.
Number ranges and settings (business rules) live in their own tables. Every write runs inside a
transaction, so a posting is either stored completely or not at all, and everything survives a
restart of the process.
"""

from __future__ import annotations

import json
from typing import Any

from plantbridge_devtools.simulators.common.state import SqliteFile
from plantbridge_devtools.simulators.sap.odata import Entity, numeric_key

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entity (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    parent TEXT,
    data TEXT NOT NULL,
    UNIQUE (kind, key)
);
CREATE INDEX IF NOT EXISTS entity_parent ON entity (kind, parent);
CREATE TABLE IF NOT EXISTS counter (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS setting (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

# Kinds of stored objects.
ORDER = "order"
OPERATION = "operation"
COMPONENT = "component"
ORDER_ITEM = "order_item"
CONFIRMATION = "confirmation"
CONF_MOVEMENT = "conf_movement"
MATDOC = "matdoc"
MATDOC_ITEM = "matdoc_item"
INSPECTION_LOT = "inspection_lot"
USAGE_DECISION = "usage_decision"
NOTIFICATION = "notification"
KINDS = (
    ORDER,
    OPERATION,
    COMPONENT,
    ORDER_ITEM,
    CONFIRMATION,
    CONF_MOVEMENT,
    MATDOC,
    MATDOC_ITEM,
    INSPECTION_LOT,
    USAGE_DECISION,
    NOTIFICATION,
)


def make_key(*parts: str) -> str:
    """The storage key of a business key: ALPHA-normalised parts joined by ``|``."""
    return "|".join(numeric_key(str(p)) for p in parts)


class Store(SqliteFile):
    """Thread-safe access to the SQLite file; nested ``transaction()`` blocks join the outer one."""

    def __init__(self, path: str) -> None:
        super().__init__(path, _SCHEMA)

    # --- entities ---------------------------------------------------------------------------

    def get(self, kind: str, key: str) -> Entity | None:
        with self._lock:
            row = self.db.execute("SELECT data FROM entity WHERE kind=? AND key=?", (kind, key)).fetchone()
        return json.loads(row[0]) if row else None

    def all(self, kind: str) -> list[Entity]:
        with self._lock:
            rows = self.db.execute("SELECT data FROM entity WHERE kind=? ORDER BY seq", (kind,)).fetchall()
        return [json.loads(r[0]) for r in rows]

    def children(self, kind: str, parent: str) -> list[Entity]:
        with self._lock:
            rows = self.db.execute(
                "SELECT data FROM entity WHERE kind=? AND parent=? ORDER BY seq", (kind, parent)
            ).fetchall()
        return [json.loads(r[0]) for r in rows]

    def put(self, kind: str, key: str, data: Entity, parent: str | None = None) -> None:
        """Insert or update; an update keeps the original insertion order."""
        text = json.dumps(data, sort_keys=True)
        with self._lock:
            self.db.execute(
                "INSERT INTO entity (kind, key, parent, data) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (kind, key) DO UPDATE SET data=excluded.data, parent=excluded.parent",
                (kind, key, parent, text),
            )

    def count(self, kind: str) -> int:
        with self._lock:
            return int(self.db.execute("SELECT COUNT(*) FROM entity WHERE kind=?", (kind,)).fetchone()[0])

    # --- number ranges and settings ---------------------------------------------------------

    def next_number(self, name: str, first: int) -> int:
        """Draw the next number of a number range (``first`` is the first number handed out)."""
        with self.transaction():
            row = self.db.execute("SELECT value FROM counter WHERE name=?", (name,)).fetchone()
            value = first if row is None else int(row[0]) + 1
            self.db.execute(
                "INSERT INTO counter (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value=excluded.value",
                (name, value),
            )
        return value

    def bump_number(self, name: str, at_least: int) -> None:
        """Make sure the range continues after an externally chosen number."""
        with self.transaction():
            row = self.db.execute("SELECT value FROM counter WHERE name=?", (name,)).fetchone()
            if row is None or int(row[0]) < at_least:
                self.db.execute(
                    "INSERT INTO counter (name, value) VALUES (?, ?) "
                    "ON CONFLICT (name) DO UPDATE SET value=excluded.value",
                    (name, at_least),
                )

    def get_setting(self, name: str) -> Any:
        with self._lock:
            row = self.db.execute("SELECT value FROM setting WHERE name=?", (name,)).fetchone()
        return json.loads(row[0]) if row else None

    def set_setting(self, name: str, value: Any) -> None:
        with self._lock:
            self.db.execute(
                "INSERT INTO setting (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value=excluded.value",
                (name, json.dumps(value)),
            )

    def reset(self) -> None:
        with self.transaction():
            for table in ("entity", "counter", "setting"):
                self.db.execute(f"DELETE FROM {table}")
