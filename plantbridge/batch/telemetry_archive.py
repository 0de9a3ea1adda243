"""The telemetry archive: edge rollups as Parquet, partitioned by plant and date.

Layout, under the plant's export directory (`exports: {kind: directory, path}`, else
`<state dir>/exports/<plant>/`)::

    telemetry/date=YYYY-MM-DD/part-<hash>.parquet

`date` is the UTC date of the rollup's `bucket_start` (Hive-style partitioning, so
`pyarrow.dataset.dataset(root, partitioning="hive")` reads it as a column). Each upload writes at
most one new file per date: the rollups whose key (`machine_id@bucket_start`) no file of that
partition holds yet. The partition's files are the key index: the `key` column of every file is
read before writing, so a re-sent rollup is never stored twice, and the index cannot disagree
with the data. Files are written to a temporary name and renamed, so a reader never sees half a
file; a file is named by the hash of its keys, so a crash between two uploads and a re-send of the
same batch land on the same name. Writers of one partition are serialized within the process (one
gateway process per plant archive; several would need a shared lock).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from plantbridge.canonical.rollup import TelemetryRollup

_FIELDS: list[pa.Field[Any]] = [
    pa.field("key", pa.string()),
    pa.field("plant", pa.string()),
    pa.field("source", pa.string()),
    pa.field("machine_id", pa.string()),
    pa.field("work_center", pa.string()),
    pa.field("bucket_start", pa.timestamp("us", tz="UTC")),
    pa.field("bucket_end", pa.timestamp("us", tz="UTC")),
    pa.field("running_s", pa.float64()),
    pa.field("idle_s", pa.float64()),
    pa.field("stopped_s", pa.float64()),
    pa.field("down_s", pa.float64()),
    pa.field("unavailable_s", pa.float64()),
    pa.field("good", pa.int64()),
    pa.field("scrap", pa.int64()),
    pa.field("cycle_min", pa.float64()),
    pa.field("cycle_avg", pa.float64()),
    pa.field("cycle_max", pa.float64()),
    pa.field("cycle_n", pa.int64()),
    pa.field("telemetry", pa.string()),  # JSON: name -> {min, avg, max, n}
]
SCHEMA = pa.schema(_FIELDS)
_COLUMNS = [f.name for f in SCHEMA if f.name not in ("key", "plant", "source", "telemetry")]


@dataclass
class Stored:
    """What one upload did: rollups newly stored, rollups already held, files written."""

    stored: int = 0
    duplicate: int = 0
    files: list[str] = field(default_factory=list)


class TelemetryArchive:
    """Parquet files of one or more plants; `root_for(plant)` is the plant's `telemetry/` directory."""

    def __init__(self, root_for: Callable[[str], Path]) -> None:
        self._root_for = root_for
        self._locks: dict[Path, threading.Lock] = defaultdict(threading.Lock)
        self._guard = threading.Lock()

    def root(self, plant: str) -> Path:
        return Path(self._root_for(plant))

    async def store(self, plant: str, source: str, rollups: list[TelemetryRollup]) -> Stored:
        return await asyncio.to_thread(self.store_sync, plant, source, rollups)

    def store_sync(self, plant: str, source: str, rollups: list[TelemetryRollup]) -> Stored:
        out = Stored()
        by_date: dict[str, dict[str, TelemetryRollup]] = defaultdict(dict)
        for r in rollups:
            part = by_date[r.bucket_start.date().isoformat()]
            if r.key in part:
                out.duplicate += 1  # the same key twice in one batch: the first counts
            else:
                part[r.key] = r
        root = self.root(plant)
        for day, items in sorted(by_date.items()):
            directory = root / f"date={day}"
            with self._lock(directory):
                held = partition_keys(directory)
                new = [r for k, r in items.items() if k not in held]
                out.duplicate += len(items) - len(new)
                if not new:
                    continue
                out.files.append(str(_write(directory, plant, source, new)))
                out.stored += len(new)
        return out

    def _lock(self, directory: Path) -> threading.Lock:
        with self._guard:
            return self._locks[directory]


def partition_keys(directory: Path) -> set[str]:
    """The rollup keys the partition's files hold (its key index)."""
    if not directory.is_dir():
        return set()
    keys: set[str] = set()
    for path in sorted(directory.glob("*.parquet")):
        keys.update(str(k) for k in pq.read_table(path, columns=["key"]).column("key").to_pylist())
    return keys


def _write(directory: Path, plant: str, source: str, rollups: list[TelemetryRollup]) -> Path:
    rollups = sorted(rollups, key=lambda r: (r.bucket_start, r.machine_id))
    columns: dict[str, list[object]] = {
        "key": [r.key for r in rollups],
        "plant": [plant] * len(rollups),
        "source": [source] * len(rollups),
        "telemetry": [json.dumps({k: v.model_dump() for k, v in sorted(r.telemetry.items())}) for r in rollups],
    }
    for name in _COLUMNS:
        columns[name] = [getattr(r, name) for r in rollups]
    table = pa.Table.from_pydict(columns, schema=SCHEMA)
    digest = hashlib.sha256("\n".join(r.key for r in rollups).encode()).hexdigest()[:20]
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"part-{digest}.parquet"
    tmp = directory / f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp"
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)
    return path


def read_archive(root: Path) -> pa.Table:
    """Every rollup of a plant's archive (`telemetry/`), with `date` as a column (for jobs and tests)."""
    import pyarrow.dataset as ds

    return ds.dataset(root, format="parquet", partitioning="hive", exclude_invalid_files=True).to_table()
