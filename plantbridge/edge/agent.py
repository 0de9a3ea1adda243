"""The edge agent: OPC UA and MQTT sessions -> machine logic -> outbox -> gateway, plus telemetry rollups.

One asyncio task per OPC UA endpoint feeds value changes into an in-memory buffer; one processor task
drains it in batches, runs the machines' logic and writes the resulting plant events (and the
machines' checkpoints) to the SQLite outbox in one transaction per batch; the forwarder sends the
outbox to the gateway; the rollup task writes the per-interval telemetry aggregates.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from plantbridge.canonical import PlantEvent
from plantbridge.edge.config import EdgeConfig, EndpointConfig
from plantbridge.edge.machine import Change, MachineTracker, TrackerStats
from plantbridge.edge.mqtt_config import MqttEndpointConfig
from plantbridge.edge.mqtt_session import MqttSession
from plantbridge.edge.outbox import Forwarder, Outbox, open_db
from plantbridge.edge.pki import check_edge_security
from plantbridge.edge.rollups import MachineRollup, write_rollups
from plantbridge.edge.session import EndpointSession
from plantbridge.edge.telemetry_upload import TelemetryUploader
from plantbridge.uns import UnsPublisher

_log = logging.getLogger(__name__)


class EdgeAgent:
    def __init__(self, config: EdgeConfig, *, api_key: str | None = None) -> None:
        self.config = config
        self._api_key = api_key
        self.tracker_stats = TrackerStats()
        self.trackers = {m.id: MachineTracker(m, config, self.tracker_stats) for m in config.machines}
        self._by_work_center: dict[str, list[MachineTracker]] = {}
        for tracker in self.trackers.values():
            self._by_work_center.setdefault(tracker.cfg.work_center, []).append(tracker)
        self.db: sqlite3.Connection | None = None
        self.outbox: Outbox | None = None
        self.forwarder: Forwarder | None = None
        self.uploader: TelemetryUploader | None = None
        self.uns: UnsPublisher | None = None
        self.sessions: list[EndpointSession | MqttSession] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._incoming: list[Change] = []
        self._wake = asyncio.Event()
        self._running = False
        self._changes_processed = 0
        self._last_ts: datetime | None = None
        self._rate = 0.0
        self._rate_mark = (time.monotonic(), 0)
        self.lags: collections.deque[float] = collections.deque(maxlen=200_000)
        self._bucket_start = datetime.now(UTC)
        self.rollups_written = 0

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if self._running:
            return
        api_key = self._api_key if self._api_key is not None else self.config.gateway.api_key()
        check_edge_security(self.config)
        self.db = open_db(self.config.outbox_path)
        self.outbox = Outbox(self.db)
        now_mono = time.monotonic()
        for machine_id, data in self.outbox.checkpoints().items():
            tracker = self.trackers.get(machine_id)
            if tracker is not None:
                tracker.restore(data, now_mono)
        self.forwarder = Forwarder(self.outbox, self.config.gateway, api_key)
        if self.config.uns is not None:
            self.uns = UnsPublisher(self.config.uns, client_id=f"plantbridge-uns-{self.config.source}")
            self.forwarder.on_forwarded = self.uns.publish_events
        self._running = True
        started = datetime.now(UTC)
        self._bucket_start = _bucket_floor(started, self.config.rollup_interval_s)
        for tracker in self.trackers.values():
            tracker.accounted_until = started  # state time is counted from now on
        self.sessions = []
        self._tasks = [
            asyncio.create_task(self.forwarder.run(), name="edge-forwarder"),
            asyncio.create_task(self._process_loop(), name="edge-processor"),
            asyncio.create_task(self._rollup_loop(), name="edge-rollups"),
        ]
        if self.config.telemetry_upload.enabled:
            self.uploader = TelemetryUploader(
                self.db, plant=self.config.plant, source=self.config.source, gateway_url=self.config.gateway.url,
                api_key=api_key, config=self.config.telemetry_upload)
            self._tasks.append(asyncio.create_task(self.uploader.run(), name="edge-telemetry-upload"))
        for name, endpoint in self.config.endpoints.items():
            machines = [m for m in self.config.machines if m.endpoint == name]
            if not machines:
                continue
            session: EndpointSession | MqttSession
            if isinstance(endpoint, MqttEndpointConfig):
                session = MqttSession(name, endpoint, machines, self.config, self._sink)
            else:
                assert isinstance(endpoint, EndpointConfig)
                session = EndpointSession(name, endpoint, machines, self.config, self._sink, self._on_connect)
            self.sessions.append(session)
            self._tasks.append(asyncio.create_task(session.run(), name=f"edge-endpoint-{name}"))
        _log.info(
            "edge agent %s started: plant %s, %d machines on %d endpoints, gateway %s, outbox %s",
            self.config.source,
            self.config.plant,
            len(self.trackers),
            len(self.sessions),
            self.config.gateway.url,
            self.config.outbox_path,
        )

    async def stop(self) -> None:
        if not self._running:
            return
        self._running = False
        for session in self.sessions:
            await session.stop()
        if self.forwarder is not None:
            self.forwarder.stop()
        if self.uploader is not None:
            self.uploader.stop()
        self._wake.set()
        _, pending = await asyncio.wait(self._tasks, timeout=5.0)
        for task in pending:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        if self.uns is not None:
            await self.uns.stop()
        self._process_pending()
        self._flush_rollups(datetime.now(UTC))
        self._store([], force_checkpoints=True)
        if self.db is not None:
            self.db.close()
            self.db = None
        _log.info("edge agent %s stopped", self.config.source)

    async def __aenter__(self) -> EdgeAgent:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ MES-driven orders

    def set_current_order(
        self, work_center: str, order: str, operation: str, *, final_previous: bool | None = None
    ) -> int:
        """The order/operation now running on a work center (for MES-dispatch-driven plants). Confirms what
        the previous one produced. Returns the number of events written."""
        trackers = self._work_center(work_center)
        final = self.config.final_on_order_change if final_previous is None else final_previous
        now = datetime.now(UTC)
        self._process_pending()
        events: list[PlantEvent] = []
        for tracker in trackers:
            events += tracker.switch_order(order.strip(), operation.strip(), now, final_previous=final)
        self._store(events)
        return len(events)

    def finish_operation(self, work_center: str) -> int:
        """The work center's current operation is finished: one final confirmation per machine."""
        now = datetime.now(UTC)
        self._process_pending()
        events: list[PlantEvent] = []
        for tracker in self._work_center(work_center):
            events += tracker.finish_operation(now)
        self._store(events)
        return len(events)

    def _work_center(self, work_center: str) -> list[MachineTracker]:
        trackers = self._by_work_center.get(work_center)
        if not trackers:
            raise KeyError(
                f"no machine on work center {work_center!r} (known: {', '.join(sorted(self._by_work_center))})"
            )
        return trackers

    # ------------------------------------------------------------------ processing

    def _on_connect(self, machine_id: str, machinery_ns: int | None) -> None:
        self.trackers[machine_id].machinery_ns = machinery_ns

    def _sink(self, changes: list[Change]) -> None:
        self._incoming.extend(changes)
        self._wake.set()

    async def _process_loop(self) -> None:
        tick_every = 0.1
        while self._running:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=tick_every)
            self._wake.clear()
            try:
                self._process_pending()
            except Exception:
                _log.exception("edge processing failed; continuing")
            # let the sessions' consumers run between batches
            await asyncio.sleep(0)

    def _process_pending(self) -> None:
        batch, self._incoming = self._incoming, []
        now_mono = time.monotonic()
        now = datetime.now(UTC)
        events: list[PlantEvent] = []
        if batch:
            per_machine: dict[str, list[Change]] = {}
            for change in batch:
                per_machine.setdefault(change.machine, []).append(change)
            lags = self.lags
            now_ts = now.timestamp()
            for machine_id, changes in per_machine.items():
                tracker = self.trackers[machine_id]
                changes.sort(key=lambda c: c.ts)
                group: list[Change] = []
                for change in changes:
                    if group and change.ts != group[0].ts:
                        events += tracker.apply_group(group, now_mono)
                        group = []
                    group.append(change)
                if group:
                    events += tracker.apply_group(group, now_mono)
                last = changes[-1].ts
                lags.append(now_ts - last.timestamp())
                if self._last_ts is None or last > self._last_ts:
                    self._last_ts = last
            self._changes_processed += len(batch)
        for tracker in self.trackers.values():
            if tracker.downtime is not None and not tracker.downtime.emitted:
                events += tracker.tick(now, now_mono)
        if events:
            self._store(events)
        mark_t, mark_n = self._rate_mark
        if now_mono - mark_t >= 1.0:
            self._rate = (self._changes_processed - mark_n) / (now_mono - mark_t)
            self._rate_mark = (now_mono, self._changes_processed)

    def _store(self, events: list[PlantEvent], *, force_checkpoints: bool = False) -> None:
        if self.outbox is None:
            return
        checkpoints = {mid: t.checkpoint() for mid, t in self.trackers.items() if t.dirty or force_checkpoints}
        if not events and not checkpoints:
            return
        self.outbox.store(events, checkpoints)
        for mid in checkpoints:
            self.trackers[mid].dirty = False

    # ------------------------------------------------------------------ rollups

    async def _rollup_loop(self) -> None:
        interval = self.config.rollup_interval_s
        while self._running:
            bucket_end = self._bucket_start + timedelta(seconds=interval)
            delay = (bucket_end - datetime.now(UTC)).total_seconds()
            if delay > 0:
                await asyncio.sleep(min(delay, 0.5))
                continue
            try:
                self._process_pending()
                self._flush_rollups(bucket_end)
                self._store([])  # checkpoints (counter positions) once per interval
            except Exception:
                _log.exception("rollup flush failed; continuing")
                self._bucket_start = bucket_end

    def _flush_rollups(self, bucket_end: datetime) -> None:
        if self.db is None:
            return
        rows: list[tuple[str, str, MachineRollup]] = []
        for tracker in self.trackers.values():
            tracker.account_until(bucket_end)
            rows.append((tracker.cfg.id, tracker.cfg.work_center, tracker.rollup))
            tracker.rollup = MachineRollup()
        write_rollups(self.db, self._bucket_start, bucket_end, rows)
        self.rollups_written += len(rows)
        self._bucket_start = bucket_end

    # ------------------------------------------------------------------ stats

    def stats(self) -> dict[str, Any]:
        fwd = self.forwarder.stats if self.forwarder else None
        counts = self.outbox.counts() if self.outbox is not None and self.db is not None else None
        lag = (datetime.now(UTC) - self._last_ts).total_seconds() if self._last_ts else None
        ts = self.tracker_stats
        return {
            "events_emitted": ts.events,
            "queued": counts.get("pending", 0) if counts is not None else None,
            "dead": counts.get("dead", 0) if counts is not None else None,  # refused max_refusals times: see
            # `plantbridge edge-outbox list`
            "sent": fwd.sent if fwd else 0,
            "accepted": fwd.accepted if fwd else 0,
            "duplicate": fwd.duplicate if fwd else 0,
            "rejected": fwd.rejected if fwd else 0,
            "refused": fwd.refused if fwd else 0,
            "moved_to_dead": fwd.dead if fwd else 0,
            "unanswered": fwd.unanswered if fwd else 0,
            "gateway_failures": fwd.failures if fwd else 0,
            "gateway_last_error": fwd.last_error if fwd else None,
            "reconnects": sum(s.stats.reconnects for s in self.sessions),
            "connected": {s.name: s.stats.connected for s in self.sessions},
            "notifications": sum(s.stats.notifications for s in self.sessions),
            "changes_processed": self._changes_processed,
            "notifications_per_s": round(self._rate, 1),
            "lag_s": round(lag, 3) if lag is not None else None,
            "short_stops_ignored": ts.short_stops_ignored,
            "skipped_without_order": ts.no_order_skipped,
            "invalid_events": ts.invalid_events,
            "unknown_states": ts.unknown_states,
            "rollups_written": self.rollups_written,
            "rollups_pending_upload": self.uploader.pending_count() if self.uploader and self.db else None,
            "telemetry_upload_last_error": self.uploader.stats.last_error if self.uploader else None,
        }


def _bucket_floor(now: datetime, interval_s: float) -> datetime:
    epoch = now.timestamp()
    return datetime.fromtimestamp(epoch - (epoch % interval_s), UTC)
