"""Audit archive and retention: old store rows move to compressed JSON Lines archives.

`archive_rows` takes the rows of one table older than a cutoff, oldest first in chunks, writes each
chunk as `{table}_{first id}-{last id}_{sha}.jsonl.gz` with a manifest beside it (rows, id range,
time range, cutoff, sha256 of the compressed file and of its content), reads the file back to check
the checksum, and only then deletes exactly those rows. gzip without a timestamp: the same rows
give the same bytes, so a retry after a crash between writing and deleting rewrites nothing and
then deletes what the archive holds.

`dead_letter_waiting` turns inbox rows that waited longer than the TTL for their order's saga into
`dead` rows with the reason (today they would wait forever); `plantbridge replay` can still
re-drive them.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import InstrumentedAttribute

from plantbridge.store.db import Database
from plantbridge.store.inbox import InboxMessage
from plantbridge.store.models import AuditRecord, Base, utcnow

CHUNK_ROWS = 5000
# Inbox rows that are finished (a `waiting` or `received` row is still work to do).
ARCHIVED_INBOX_STATUSES = ("processed", "dead")


@dataclass(frozen=True)
class ArchiveFile:
    table: str
    path: str
    manifest: str
    rows: int
    sha256: str
    new: bool


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return {"base64": base64.b64encode(value).decode()}
    return value


def _row(obj: Base) -> dict[str, Any]:
    return {c.key: _jsonable(getattr(obj, c.key)) for c in obj.__table__.columns}


def _write_once(path: Path, content: bytes) -> bool:
    """Write atomically unless the same bytes are there; True when written now."""
    if path.exists() and path.read_bytes() == content:
        return False
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(content)
    os.replace(tmp, path)
    return True


def write_archive(root: Path, table: str, rows: list[dict[str, Any]], cutoff: datetime,
                  time_field: str) -> ArchiveFile:
    """One chunk of rows as JSON Lines + gzip with its manifest; checked by reading it back."""
    root.mkdir(parents=True, exist_ok=True)
    raw = b"".join(json.dumps(r, sort_keys=True, separators=(",", ":")).encode() + b"\n" for r in rows)
    packed = gzip.compress(raw, compresslevel=9, mtime=0)
    digest = hashlib.sha256(packed).hexdigest()
    first, last = rows[0]["id"], rows[-1]["id"]
    stem = f"{table}_{first:012d}-{last:012d}_{digest[:16]}"
    path = root / f"{stem}.jsonl.gz"
    new = _write_once(path, packed)
    if hashlib.sha256(path.read_bytes()).hexdigest() != digest:
        raise OSError(f"archive {path} does not read back with sha256 {digest}")
    times = sorted(str(r[time_field]) for r in rows)
    manifest = {
        "format": "jsonl+gzip", "table": table, "file": path.name, "sha256": digest,
        "sha256_uncompressed": hashlib.sha256(raw).hexdigest(), "rows": len(rows),
        "first_id": first, "last_id": last, "oldest": times[0], "newest": times[-1],
        "cutoff": cutoff.isoformat(), "time_field": time_field, "columns": sorted(rows[0]),
    }
    manifest_path = root / f"{stem}.manifest.json"
    _write_once(manifest_path, json.dumps(manifest, sort_keys=True, indent=2).encode() + b"\n")
    return ArchiveFile(table, str(path), str(manifest_path), len(rows), digest, new)


async def archive_rows(db: Database, model: type[Base], time_col: InstrumentedAttribute[Any], cutoff: datetime,
                       root: Path, *, where: tuple[Any, ...] = (), chunk: int = CHUNK_ROWS) -> list[ArchiveFile]:
    """Move the rows of `model` with `time_col < cutoff` (and `where`) to archives under `root`."""
    table = str(model.__tablename__)
    id_col = model.id  # type: ignore[attr-defined]
    out: list[ArchiveFile] = []
    while True:
        async with db.sessions() as session:
            stmt = select(model).where(time_col < cutoff, *where).order_by(id_col).limit(chunk)
            objs = list((await session.scalars(stmt)).all())
        if not objs:
            return out
        rows = [_row(o) for o in objs]
        archived = write_archive(root / table, table, rows, cutoff, time_col.key)
        ids = [r["id"] for r in rows]
        async with db.engine.begin() as conn:
            await conn.execute(delete(model).where(id_col.in_(ids)))
        out.append(archived)


def last_cutoff(root: Path, table: str) -> datetime | None:
    """The latest cutoff up to which `table`'s rows were moved to archives under `root` (from the
    manifests; None when nothing was ever archived, so nothing is missing from the store)."""
    latest: datetime | None = None
    for manifest in (root / table).glob("*.manifest.json"):
        try:
            cutoff = datetime.fromisoformat(json.loads(manifest.read_text())["cutoff"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if latest is None or cutoff > latest:
            latest = cutoff
    return latest


@dataclass(frozen=True)
class DeadLetter:
    id: int
    plant: str | None
    order: str | None
    event_id: str | None
    received_at: str


async def dead_letter_waiting(db: Database, older_than: datetime, ttl_text: str) -> list[DeadLetter]:
    """`waiting` inbox rows received before `older_than` become `dead` with the reason."""
    async with db.sessions() as session:
        stmt = (select(InboxMessage).where(InboxMessage.status == "waiting", InboxMessage.received_at < older_than)
                .order_by(InboxMessage.id))
        rows = list((await session.scalars(stmt)).all())
    if not rows:
        return []
    reason = f"waited longer than {ttl_text} for its order's saga (dead letter; `plantbridge replay` re-drives it)"
    async with db.engine.begin() as conn:
        await conn.execute(update(InboxMessage)
                           .where(InboxMessage.id.in_([r.id for r in rows]), InboxMessage.status == "waiting")
                           .values(status="dead", reason=reason, updated_at=utcnow()))
    return [DeadLetter(r.id, r.plant, r.order_number, r.event_id, _jsonable(r.received_at)) for r in rows]


async def archive_store(db: Database, root: Path, *, audit_cutoff: datetime,
                        inbox_cutoff: datetime) -> list[ArchiveFile]:
    files = await archive_rows(db, AuditRecord, AuditRecord.at, audit_cutoff, root)
    files += await archive_rows(db, InboxMessage, InboxMessage.received_at, inbox_cutoff, root,
                                where=(InboxMessage.status.in_(ARCHIVED_INBOX_STATUSES),))
    return files
