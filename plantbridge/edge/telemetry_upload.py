"""The edge's telemetry uploader: rollups leave the plant in bulk, on their own schedule.

Every `interval_s` the uploader sends the rollups the gateway has not taken yet (oldest first, in
batches of `batch_size`, gzip) to `POST {gateway}/v1/plant/telemetry`, never to the ERP and apart from
the event outbox (an event must not wait behind a day of telemetry). A rollup is marked uploaded
(table `telemetry_uploaded`) when the gateway answered 2xx for its batch with `stored` + `duplicate`
covering the whole batch (any other 2xx body is no acceptance): both mean the archive holds it (the
gateway is idempotent by rollup key, so a batch whose answer was lost is simply sent again). The
local history is bounded: rollups older than `history_days` are deleted, uploaded or not (a warning
counts those that never left).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import logging
import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field

from plantbridge.edge.rollups import read_rollup_rows

_log = logging.getLogger(__name__)

UPLOADED_SCHEMA = """
CREATE TABLE IF NOT EXISTS telemetry_uploaded (
    machine_id TEXT NOT NULL,
    bucket_start TEXT NOT NULL,
    uploaded_at REAL NOT NULL,
    PRIMARY KEY (machine_id, bucket_start)
)
"""
PATH = "/v1/plant/telemetry"


class TelemetryUploadConfig(BaseModel):
    """`telemetry_upload:` in the edge file."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    interval_s: float = Field(default=300.0, gt=0, description="how often the rollups are uploaded")
    batch_size: int = Field(default=1000, ge=1, le=5000)
    history_days: float = Field(default=7.0, gt=0, description="rollups older than this are deleted locally")
    timeout_s: float = Field(default=30.0, gt=0)


@dataclass
class UploadStats:
    uploads: int = 0
    stored: int = 0
    duplicate: int = 0
    pruned: int = 0
    failures: int = 0
    last_error: str | None = None


class TelemetryUploader:
    def __init__(self, db: sqlite3.Connection, *, plant: str, source: str, gateway_url: str, api_key: str,
                 config: TelemetryUploadConfig, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.db = db
        self.plant = plant
        self.source = source
        self.config = config
        self.stats = UploadStats()
        self._url = gateway_url.rstrip("/") + PATH
        self._headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json",
                         "Content-Encoding": "gzip"}
        self._transport = transport
        self._stop = asyncio.Event()
        db.executescript(UPLOADED_SCHEMA)

    def pending(self, limit: int) -> list[dict[str, Any]]:
        """Rollups not uploaded yet, oldest first."""
        return read_rollup_rows(
            self.db,
            "LEFT JOIN telemetry_uploaded u USING (machine_id, bucket_start) WHERE u.uploaded_at IS NULL "
            "ORDER BY r.bucket_start, r.machine_id LIMIT ?", (limit,))

    def pending_count(self) -> int:
        return int(self.db.execute(
            "SELECT count(*) FROM telemetry_rollups r LEFT JOIN telemetry_uploaded u USING (machine_id, bucket_start) "
            "WHERE u.uploaded_at IS NULL").fetchone()[0])

    def _mark(self, rows: list[dict[str, Any]]) -> None:
        now = time.time()
        with self.db:
            self.db.executemany("INSERT OR REPLACE INTO telemetry_uploaded VALUES (?,?,?)",
                                [(r["machine_id"], r["bucket_start"], now) for r in rows])

    def prune(self, now: float | None = None) -> int:
        """Delete rollups (and their upload marks) whose interval ended more than `history_days` ago."""
        cutoff = _iso((now if now is not None else time.time()) - self.config.history_days * 86400)
        with self.db:
            lost = self.db.execute(
                "SELECT count(*) FROM telemetry_rollups r LEFT JOIN telemetry_uploaded u "
                "USING (machine_id, bucket_start) WHERE r.bucket_end < ? AND u.uploaded_at IS NULL",
                (cutoff,)).fetchone()[0]
            cur = self.db.execute("DELETE FROM telemetry_rollups WHERE bucket_end < ?", (cutoff,))
            self.db.execute("DELETE FROM telemetry_uploaded WHERE NOT EXISTS (SELECT 1 FROM telemetry_rollups r "
                            "WHERE r.machine_id = telemetry_uploaded.machine_id "
                            "AND r.bucket_start = telemetry_uploaded.bucket_start)")
        if lost:
            _log.warning("pruned %d telemetry rollups older than %s days that never reached the gateway",
                         lost, self.config.history_days)
        self.stats.pruned += cur.rowcount
        return int(cur.rowcount)

    async def upload_once(self) -> int:
        """Send everything pending, batch by batch; the number of rollups the gateway took. Stops at the
        first failure (left pending for the next round)."""
        taken = 0
        async with httpx.AsyncClient(timeout=self.config.timeout_s, transport=self._transport) as http:
            while rows := self.pending(self.config.batch_size):
                if not await self._send(http, rows):
                    break
                taken += len(rows)
        return taken

    async def _send(self, http: httpx.AsyncClient, rows: list[dict[str, Any]]) -> bool:
        body = json.dumps({"plant": self.plant, "source": self.source,
                           "rollups": [_wire(r) for r in rows]}).encode()
        self.stats.uploads += 1
        try:
            resp = await http.post(self._url, content=gzip.compress(body, mtime=0), headers=self._headers)
        except (httpx.TransportError, OSError) as err:
            return self._failed(f"gateway unreachable: {type(err).__name__}: {err}", logging.WARNING)
        if not 200 <= resp.status_code < 300:
            level = logging.ERROR if 400 <= resp.status_code < 500 and resp.status_code != 429 else logging.WARNING
            return self._failed(f"gateway answered {resp.status_code} to {len(rows)} rollups: {resp.text[:300]}",
                                level)
        try:
            answer = resp.json()
            stored, duplicate = int(answer.get("stored", 0)), int(answer.get("duplicate", 0))
        except (ValueError, TypeError, AttributeError):
            stored = duplicate = -1
        if stored < 0 or duplicate < 0 or stored + duplicate < len(rows):
            # A 2xx that does not say the archive holds every rollup is no acceptance: sent again.
            return self._failed(f"gateway answered {resp.status_code} without accounting for the {len(rows)} "
                                f"rollups sent: {resp.text[:300]}", logging.WARNING)
        self.stats.stored += stored
        self.stats.duplicate += duplicate
        self.stats.last_error = None
        self._mark(rows)
        return True

    def _failed(self, message: str, level: int) -> bool:
        self.stats.failures += 1
        self.stats.last_error = message
        _log.log(level, "telemetry upload: %s (kept locally, next try in %.0f s)", message, self.config.interval_s)
        return False

    async def run(self) -> None:
        """Every `interval_s` (the first round one interval after the start), upload and prune, until `stop()`."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=self.config.interval_s)
            if self._stop.is_set():
                return
            try:
                await self.upload_once()
                self.prune()
            except Exception:
                _log.exception("telemetry upload round failed; continuing")

    def stop(self) -> None:
        self._stop.set()


_WIRE = ("machine_id", "work_center", "bucket_start", "bucket_end", "running_s", "idle_s", "stopped_s", "down_s",
         "unavailable_s", "good", "scrap", "cycle_min", "cycle_avg", "cycle_max", "cycle_n", "telemetry")


def _wire(row: dict[str, Any]) -> dict[str, Any]:
    """A local rollup row as the gateway takes it (canonical/rollup.py TelemetryRollup)."""
    return {k: row[k] for k in _WIRE}


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()
