"""Telemetry rollups: per machine per interval, seconds in each state, good/scrap counts, cycle time and
extra telemetry min/avg/max. Aggregated in memory, written once per interval to a local SQLite table
(``telemetry_rollups``) for batch jobs. Rollups are never turned into plant events or ERP postings.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

ROLLUP_SCHEMA = """
CREATE TABLE IF NOT EXISTS telemetry_rollups (
    machine_id TEXT NOT NULL,
    work_center TEXT NOT NULL,
    bucket_start TEXT NOT NULL,
    bucket_end TEXT NOT NULL,
    running_s REAL NOT NULL, idle_s REAL NOT NULL, stopped_s REAL NOT NULL,
    down_s REAL NOT NULL, unavailable_s REAL NOT NULL,
    good INTEGER NOT NULL, scrap INTEGER NOT NULL,
    cycle_min REAL, cycle_avg REAL, cycle_max REAL, cycle_n INTEGER NOT NULL,
    telemetry TEXT NOT NULL,
    PRIMARY KEY (machine_id, bucket_start)
)
"""

STATES = ("running", "idle", "stopped", "down", "unavailable")


@dataclass
class Stat:
    n: int = 0
    total: float = 0.0
    low: float = float("inf")
    high: float = float("-inf")

    def add(self, value: float) -> None:
        self.n += 1
        self.total += value
        if value < self.low:
            self.low = value
        if value > self.high:
            self.high = value

    def summary(self) -> dict[str, float] | None:
        if not self.n:
            return None
        return {"min": self.low, "avg": self.total / self.n, "max": self.high, "n": self.n}


@dataclass
class MachineRollup:
    state_seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STATES, 0.0))
    good: int = 0
    scrap: int = 0
    cycle: Stat = field(default_factory=Stat)
    extras: dict[str, Stat] = field(default_factory=dict)

    def add_state_time(self, state: str | None, seconds: float) -> None:
        if state is not None and seconds > 0:
            self.state_seconds[state] = self.state_seconds.get(state, 0.0) + seconds

    def add_extra(self, name: str, value: float) -> None:
        stat = self.extras.get(name)
        if stat is None:
            stat = self.extras[name] = Stat()
        stat.add(value)


def as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    return None


def write_rollups(
    db: sqlite3.Connection, bucket_start: datetime, bucket_end: datetime, rows: list[tuple[str, str, MachineRollup]]
) -> None:
    """Write one bucket (one row per machine) in one transaction."""
    records = []
    for machine_id, work_center, roll in rows:
        cycle = roll.cycle.summary()
        telemetry = {name: s for name, stat in roll.extras.items() if (s := stat.summary()) is not None}
        records.append(
            (
                machine_id,
                work_center,
                bucket_start.isoformat(),
                bucket_end.isoformat(),
                *(round(roll.state_seconds.get(s, 0.0), 3) for s in STATES),
                roll.good,
                roll.scrap,
                cycle["min"] if cycle else None,
                cycle["avg"] if cycle else None,
                cycle["max"] if cycle else None,
                roll.cycle.n,
                json.dumps(telemetry),
            )
        )
    with db:
        db.executemany("INSERT OR REPLACE INTO telemetry_rollups VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", records)


def read_rollups(db: sqlite3.Connection, machine_id: str | None = None) -> list[dict[str, Any]]:
    """Rollup rows as dicts (for batch jobs and tests), oldest first."""
    if machine_id:
        return read_rollup_rows(db, "WHERE r.machine_id = ? ORDER BY r.bucket_start", (machine_id,))
    return read_rollup_rows(db, "ORDER BY r.bucket_start")


def read_rollup_rows(db: sqlite3.Connection, tail: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    """`SELECT r.* FROM telemetry_rollups r {tail}` as dicts, `telemetry` parsed."""
    cur = db.execute(f"SELECT r.* FROM telemetry_rollups r {tail}", params)
    names = [d[0] for d in cur.description]
    rows = []
    for row in cur.fetchall():
        item = dict(zip(names, row, strict=True))
        item["telemetry"] = json.loads(item["telemetry"])
        rows.append(item)
    return rows
