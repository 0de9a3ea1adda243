"""What the machines themselves say about a shift: the edge rollups in the telemetry archive.

The edge agent rolls each machine's telemetry up per interval (plantbridge/edge/rollups.py) and the
gateway archives the rollups as Parquet (plantbridge/batch/telemetry_archive.py). For a shift summary
they give two things the plant events may not:

- an ideal cycle time per work center: the fastest cycle the machines of the work center showed in the
  shift (the minimum of their `CycleTimeMs` samples, `cycle_min`, in milliseconds -> seconds), the best
  demonstrated rate. Used only when the plant file gives the work center no `ideal_cycle_time_s`.
- good and scrap counts per work center (the machines' counters): used only for a work center with no
  confirmation in the shift (the ERP-facing figures always win where there are any).

A rollup belongs to the shift its interval starts in. `machine_facts` is pure; `read_rollups` reads the
archive's partitions (`date=YYYY-MM-DD`, UTC) that the window touches.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from plantbridge.canonical.plant_time import ShiftWindow

MS = Decimal("0.001")


@dataclass(frozen=True)
class MachineFacts:
    """Per work center: the fastest cycle seen (seconds), and good/scrap counted by the machines."""

    ideal_cycle_s: dict[str, Decimal] = field(default_factory=dict)
    counts: dict[str, tuple[Decimal, Decimal]] = field(default_factory=dict)
    rollups: int = 0


def machine_facts(rows: Iterable[dict[str, Any]], window: ShiftWindow) -> MachineFacts:
    """The facts of the rollups whose interval starts in the shift window."""
    fastest: dict[str, Decimal] = {}
    counts: dict[str, tuple[Decimal, Decimal]] = {}
    n = 0
    for row in rows:
        start = row["bucket_start"]
        if not window.contains(start):
            continue
        n += 1
        wc = str(row["work_center"])
        good, scrap = counts.get(wc, (Decimal(0), Decimal(0)))
        counts[wc] = (good + Decimal(int(row["good"])), scrap + Decimal(int(row["scrap"])))
        cycle = row.get("cycle_min")
        if cycle is not None and cycle > 0 and int(row.get("cycle_n") or 0) > 0:
            seconds = (Decimal(str(cycle)) * MS).normalize()
            fastest[wc] = min(fastest.get(wc, seconds), seconds)
    return MachineFacts(ideal_cycle_s=fastest, counts=counts, rollups=n)


def read_rollups(root: Path, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """The archived rollups of the UTC dates [start, end) touches, as rows (an absent archive: none)."""
    import pyarrow.parquet as pq

    rows: list[dict[str, Any]] = []
    day = start.date()
    while day <= end.date():
        directory = root / f"date={day.isoformat()}"
        for path in sorted(directory.glob("*.parquet")) if directory.is_dir() else []:
            rows.extend(pq.read_table(path).to_pylist())
        day += timedelta(days=1)
    return rows
