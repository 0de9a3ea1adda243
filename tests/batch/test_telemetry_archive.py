"""Telemetry archive: the edge's rollups (its SQLite, as the agent writes them) uploaded by the edge's own
uploader (gzip, batched) over real HTTP to the gateway (uvicorn on a free port, its own SQLite store),
stored as Parquet partitioned by date and read back with pyarrow. Idempotent by rollup key; edge keys only.

No Temporal: the telemetry route does not touch it; the gateway's Temporal client is a lazy one to a
port where nothing listens (the inbox re-driver finds nothing to re-drive)."""

from __future__ import annotations

import gzip
import json
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest
from temporalio.client import Client

from plantbridge.batch.telemetry_archive import read_archive
from plantbridge.edge.config import parse_config
from plantbridge.edge.outbox import open_db
from plantbridge.edge.rollups import MachineRollup, write_rollups
from plantbridge.edge.telemetry_upload import TelemetryUploadConfig, TelemetryUploader
from plantbridge.gateway.app import create_app
from plantbridge.gateway.deps import GatewayDeps
from plantbridge.store import ApiKeys, Database, sqlite_url
from tests.support import free_port, serve_app

BODY_LIMIT = 64 * 1024
MIDNIGHT = datetime(2025, 3, 4, tzinfo=UTC)


@dataclass
class Archive:
    url: str
    root: Path  # exports/<plant>/telemetry of plant 1000
    keys: dict[str, str] = field(default_factory=dict)

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}


@pytest.fixture
async def archive(tmp_path: Path) -> AsyncIterator[Archive]:
    db = await Database(sqlite_url(tmp_path / "gateway.db")).init()
    nowhere = await Client.connect(f"127.0.0.1:{free_port()}", lazy=True)
    exports = tmp_path / "exports"
    deps = GatewayDeps(client=nowhere, db=db, redrive_on_startup=False, body_limit=BODY_LIMIT,
                       telemetry_root=lambda plant: exports / plant / "telemetry")
    served = await serve_app(create_app(deps))
    arc = Archive(url=served.url, root=exports / "1000" / "telemetry")
    for who, role, plants in (("edge", "edge", ["1000"]), ("edge2000", "edge", ["2000"]),
                              ("erp", "erp", ["1000"]), ("mes", "plant-system", ["1000"])):
        _, arc.keys[who] = await ApiKeys(db).create(f"tel-{who}", role, plants)
    yield arc
    await served.stop()
    await db.close()


def rollup(good: int, scrap: int = 0, running: float = 50.0, cycle: float | None = 1200.0) -> MachineRollup:
    roll = MachineRollup()
    roll.add_state_time("running", running)
    roll.add_state_time("down", 60.0 - running)
    roll.good, roll.scrap = good, scrap
    if cycle is not None:
        roll.cycle.add(cycle)
        roll.cycle.add(cycle + 200)
    roll.add_extra("Temperature", 71.5)
    return roll


def edge_db(tmp_path: Path) -> sqlite3.Connection:
    """Two machines, two minutes on each side of midnight UTC: 8 rollups over two dates."""
    db = open_db(tmp_path / "edge" / "outbox.db")
    for minute in (-2, -1, 0, 1):
        start = MIDNIGHT + timedelta(minutes=minute)
        write_rollups(db, start, start + timedelta(minutes=1),
                      [("M01", "WC-ASM1", rollup(10 + minute)), ("M02", "WC-PACK", rollup(20 + minute, 1))])
    return db


def uploader(db: sqlite3.Connection, arc: Archive, *, batch_size: int = 3, key: str = "edge") -> TelemetryUploader:
    return TelemetryUploader(db, plant="1000", source="edge-1000", gateway_url=arc.url, api_key=arc.keys[key],
                             config=TelemetryUploadConfig(batch_size=batch_size))


async def test_rollups_reach_parquet_by_date_and_a_resend_stores_nothing_twice(archive: Archive,
                                                                                  tmp_path: Path) -> None:
    db = edge_db(tmp_path)
    up = uploader(db, archive)
    assert up.pending_count() == 8
    assert await up.upload_once() == 8
    assert up.stats.uploads == 3 and up.stats.stored == 8 and up.stats.duplicate == 0  # batches of 3, gzip
    assert up.pending_count() == 0

    days = sorted(p.name for p in archive.root.iterdir())
    assert days == ["date=2025-03-03", "date=2025-03-04"]
    files = sorted(archive.root.rglob("*.parquet"))
    table = read_archive(archive.root)
    assert table.num_rows == 8
    rows = sorted(table.to_pylist(), key=lambda r: (r["bucket_start"], r["machine_id"]))
    first = rows[0]
    assert first["key"] == "M01@2025-03-03T23:58:00+00:00" and first["plant"] == "1000"
    assert first["work_center"] == "WC-ASM1" and first["source"] == "edge-1000"
    assert first["good"] == 8 and first["running_s"] == 50.0 and first["down_s"] == 10.0
    assert (first["cycle_min"], first["cycle_avg"], first["cycle_max"], first["cycle_n"]) == (1200, 1300, 1400, 2)
    assert json.loads(first["telemetry"])["Temperature"] == {"min": 71.5, "avg": 71.5, "max": 71.5, "n": 1}
    assert str(first["date"]) == "2025-03-03"
    assert [r["good"] for r in rows if r["machine_id"] == "M02"] == [18, 19, 20, 21]
    assert {r["scrap"] for r in rows if r["machine_id"] == "M02"} == {1}

    # The answers were lost: the edge sends everything again. Nothing is stored twice, no file is written.
    db.execute("DELETE FROM telemetry_uploaded")
    db.commit()
    again = uploader(db, archive, batch_size=100)
    assert await again.upload_once() == 8
    assert again.stats.stored == 0 and again.stats.duplicate == 8
    assert sorted(archive.root.rglob("*.parquet")) == files
    assert read_archive(archive.root).num_rows == 8

    # A new minute, sent with two old ones: only the new one is stored (one more file, in its date).
    start = MIDNIGHT + timedelta(minutes=2)
    write_rollups(db, start, start + timedelta(minutes=1), [("M01", "WC-ASM1", rollup(99))])
    old = (MIDNIGHT + timedelta(minutes=1)).isoformat()
    db.execute("DELETE FROM telemetry_uploaded WHERE bucket_start = ?", (old,))
    db.commit()
    third = uploader(db, archive, batch_size=100)
    assert await third.upload_once() == 3
    assert third.stats.stored == 1 and third.stats.duplicate == 2
    assert len(list(archive.root.rglob("*.parquet"))) == len(files) + 1
    table = read_archive(archive.root)
    assert table.num_rows == 9 and len(set(table.column("key").to_pylist())) == 9
    new_file = (set(archive.root.rglob("*.parquet")) - set(files)).pop()
    assert new_file.parent.name == "date=2025-03-04"
    assert pq.read_table(new_file).column("good").to_pylist() == [99]


async def test_gzip_and_plain_json_accepted_other_encodings_refused(archive: Archive) -> None:
    start = MIDNIGHT.isoformat()
    end = (MIDNIGHT + timedelta(minutes=1)).isoformat()
    one = {"machine_id": "M09", "work_center": "WC-ASM1", "bucket_start": start, "bucket_end": end,
           "running_s": 60, "idle_s": 0, "stopped_s": 0, "down_s": 0, "unavailable_s": 0, "good": 5, "scrap": 0}
    body = json.dumps({"plant": "1000", "source": "edge-x", "rollups": [one]}).encode()
    headers = {**archive.auth("edge"), "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=archive.url, timeout=30) as http:
        r = await http.post("/v1/plant/telemetry", content=gzip.compress(body),
                            headers={**headers, "Content-Encoding": "gzip"})
        assert r.status_code == 200, r.text
        assert r.json() == {"plant": "1000", "received": 1, "stored": 1, "duplicate": 0,
                            "files": [r.json()["files"][0]]}
        assert r.json()["files"][0].startswith("date=2025-03-04/part-")
        r = await http.post("/v1/plant/telemetry", content=body, headers=headers)  # plain: same rollup
        assert r.status_code == 200 and r.json()["stored"] == 0 and r.json()["duplicate"] == 1, r.text

        r = await http.post("/v1/plant/telemetry", content=body, headers={**headers, "Content-Encoding": "br"})
        assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_media_type"
        r = await http.post("/v1/plant/telemetry", content=b"\x1f\x8bnot gzip",
                            headers={**headers, "Content-Encoding": "gzip"})
        assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_gzip"
        bomb = gzip.compress(b" " * (BODY_LIMIT * 25))  # small on the wire, 25x the limit inflated
        assert len(bomb) < BODY_LIMIT
        r = await http.post("/v1/plant/telemetry", content=bomb, headers={**headers, "Content-Encoding": "gzip"})
        assert r.status_code == 413, r.text
        bad = {"plant": "1000", "source": "edge-x", "rollups": [{**one, "bucket_end": start}]}
        r = await http.post("/v1/plant/telemetry", json=bad, headers=archive.auth("edge"))
        assert r.status_code == 422 and "bucket_end" in r.json()["error"]["message"], r.text
    assert read_archive(archive.root).num_rows == 1


async def test_only_edge_keys_of_the_plant(archive: Archive, tmp_path: Path) -> None:
    db = edge_db(tmp_path)
    for who, code in (("erp", "forbidden_role"), ("mes", "forbidden_role"), ("edge2000", "forbidden_plant")):
        up = uploader(db, archive, key=who)
        assert await up.upload_once() == 0
        assert up.stats.failures == 1 and "403" in (up.stats.last_error or "") and code in (up.stats.last_error or "")
        assert up.pending_count() == 8  # kept locally for the next round
    async with httpx.AsyncClient(base_url=archive.url, timeout=30) as http:
        r = await http.post("/v1/plant/telemetry", json={"plant": "1000", "source": "x", "rollups": []})
        assert r.status_code == 401
    assert not archive.root.exists()


async def test_local_history_is_bounded(archive: Archive, tmp_path: Path) -> None:
    db = edge_db(tmp_path)
    up = TelemetryUploader(db, plant="1000", source="edge-1000", gateway_url=archive.url,
                           api_key=archive.keys["edge"], config=TelemetryUploadConfig(history_days=2))
    assert await up.upload_once() == 8
    start = MIDNIGHT + timedelta(days=3)
    write_rollups(db, start, start + timedelta(minutes=1), [("M01", "WC-ASM1", rollup(1))])  # not uploaded
    now = (MIDNIGHT + timedelta(days=2, hours=1)).timestamp()  # the first four minutes are > 2 days old
    assert up.prune(now) == 8
    assert db.execute("SELECT count(*) FROM telemetry_rollups").fetchone()[0] == 1
    assert db.execute("SELECT count(*) FROM telemetry_uploaded").fetchone()[0] == 0
    assert up.pending_count() == 1
    assert read_archive(archive.root).num_rows == 8  # the archive keeps what the edge forgot


def test_edge_file_configures_the_upload() -> None:
    base = {"plant": "1000", "source": "edge-1000", "gateway": {"url": "http://127.0.0.1:1"},
            "endpoints": {"sim": {"url": "opc.tcp://127.0.0.1:4840"}},
            "machines": [{"id": "M01", "endpoint": "sim", "work_center": "WC-ASM1", "nodes": {"state": "ns=2;s=x"}}]}
    cfg = parse_config({**base, "telemetry_upload": {"interval_s": 60, "history_days": 3}})
    assert cfg.telemetry_upload.interval_s == 60 and cfg.telemetry_upload.history_days == 3
    assert parse_config(base).telemetry_upload.enabled
