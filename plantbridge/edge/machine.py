"""One machine's logic: canonical state, downtime, counters per order/operation, rollup accumulation.

Pure in-memory logic, no I/O: the agent feeds it value changes (grouped by source timestamp) and
stores the plant events it returns in the outbox, together with :meth:`MachineTracker.checkpoint`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from pydantic import ValidationError

from plantbridge.canonical import EventType, PlantEvent, Quantity
from plantbridge.edge.config import EdgeConfig, MachineConfig
from plantbridge.edge.counters import as_count, counter_delta
from plantbridge.edge.eventids import event_id
from plantbridge.edge.rollups import MachineRollup, as_number
from plantbridge.edge.states import PACKML_COMPLETE, EquipmentState, canonical_state

_log = logging.getLogger(__name__)

DOWN_STATES = frozenset({EquipmentState.STOPPED, EquipmentState.DOWN, EquipmentState.UNAVAILABLE})
# within one source timestamp: counts first (they belong to the order that was running), then plain
# values, then the order/operation, then the state, then an operation-finished flag
_ROLE_RANK = {"good": 0, "scrap": 0, "stop_reason": 1, "cycle_time": 1, "order": 2, "operation": 2, "state": 3}


@dataclass
class Change:
    """One value change of one node of one machine."""

    machine: str
    role: str
    value: Any
    ts: datetime  # the source timestamp (aware, UTC)


@dataclass
class Downtime:
    since: datetime
    local_start: float  # monotonic time it was seen
    order: str
    operation: str
    reason: str = ""  # local reason
    emitted: bool = False
    down: bool = False  # a stopped/down/unavailable state was seen (a downtime even without a reason)


@dataclass
class TrackerStats:
    events: int = 0
    invalid_events: int = 0
    short_stops_ignored: int = 0
    no_order_skipped: int = 0
    unknown_states: int = 0


class MachineTracker:
    def __init__(self, machine: MachineConfig, config: EdgeConfig, stats: TrackerStats) -> None:
        self.cfg = machine
        self.config = config
        self.stats = stats
        self.machinery_ns: int | None = None  # set per connection (namespace index of the Machinery URI)
        self.raw_state: Any = None
        self.state: EquipmentState | None = None
        self.stop_reason = ""
        self.order = ""
        self.operation = ""
        self.good_last: int | None = None
        self.scrap_last: int | None = None
        self.acc_good = 0
        self.acc_scrap = 0
        self.downtime: Downtime | None = None
        self.seq = 0
        self.done_flag = False
        # The current order/operation was finally confirmed: an empty final must not follow it.
        self.final_sent = False
        self.accounted_until: datetime | None = None
        self.rollup = MachineRollup()
        self.dirty = False
        self._warned: set[str] = set()

    # ------------------------------------------------------------------ persistence

    def checkpoint(self) -> dict[str, Any]:
        dt = self.downtime
        return {
            "seq": self.seq,
            "state": self.state.value if self.state else None,
            "stop_reason": self.stop_reason,
            "order": self.order,
            "operation": self.operation,
            "good_last": self.good_last,
            "scrap_last": self.scrap_last,
            "acc_good": self.acc_good,
            "acc_scrap": self.acc_scrap,
            "final_sent": self.final_sent,
            "downtime": None
            if dt is None
            else {
                "since": dt.since.isoformat(),
                "order": dt.order,
                "operation": dt.operation,
                "reason": dt.reason,
                "emitted": dt.emitted,
                "down": dt.down,
            },
        }

    def restore(self, data: dict[str, Any], now_mono: float) -> None:
        self.seq = int(data.get("seq", 0))
        self.state = EquipmentState(data["state"]) if data.get("state") else None
        self.stop_reason = data.get("stop_reason") or ""
        self.order = data.get("order") or ""
        self.operation = data.get("operation") or ""
        self.good_last = data.get("good_last")
        self.scrap_last = data.get("scrap_last")
        self.acc_good = int(data.get("acc_good", 0))
        self.acc_scrap = int(data.get("acc_scrap", 0))
        self.final_sent = bool(data.get("final_sent", False))
        dt = data.get("downtime")
        if dt:
            self.downtime = Downtime(
                since=datetime.fromisoformat(dt["since"]),
                local_start=now_mono,
                order=dt["order"],
                operation=dt["operation"],
                reason=dt["reason"],
                emitted=bool(dt["emitted"]),
                down=bool(dt.get("down", False)),
            )

    # ------------------------------------------------------------------ changes

    def apply_group(self, changes: list[Change], now_mono: float) -> list[PlantEvent]:
        """Apply the changes that share one source timestamp, in a fixed role order."""
        events: list[PlantEvent] = []
        ts = changes[0].ts
        new_order: str | None = None
        new_operation: str | None = None
        state_value: Any = _MISSING
        for change in sorted(changes, key=lambda c: _ROLE_RANK.get(c.role, 1)):
            role, value = change.role, change.value
            if role == "good" or role == "scrap":
                self._count(role, value)
            elif role == "stop_reason":
                self._set_reason(ts, "" if value is None else str(value).strip(), now_mono)
            elif role == "cycle_time":
                number = as_number(value)
                if number is not None and number > 0:
                    self.rollup.cycle.add(number)
            elif role == "order":
                new_order = "" if value is None else str(value).strip()
            elif role == "operation":
                new_operation = "" if value is None else str(value).strip()
            elif role == "state":
                state_value = value
            elif role == "operation_done":
                done = bool(value)
                if done and not self.done_flag:
                    events += self._confirm(ts, final=True)
                self.done_flag = done
            elif role.startswith("extra:"):
                number = as_number(value)
                if number is not None:
                    self.rollup.add_extra(role[6:], number)
        if new_order is not None or new_operation is not None:
            order = self.order if new_order is None else new_order
            operation = self.operation if new_operation is None else new_operation
            if (order, operation) != (self.order, self.operation):
                events += self.switch_order(order, operation, ts, final_previous=self.config.final_on_order_change)
        if state_value is not _MISSING:
            events += self._set_state(state_value, ts, now_mono)
        return events

    def _count(self, role: str, value: Any) -> None:
        count = as_count(value)
        if count is None:
            return
        last = self.good_last if role == "good" else self.scrap_last
        delta = counter_delta(last, count, self.config.counter_max, self.config.effective_wrap_window)
        if role == "good":
            self.good_last = count
            self.acc_good += delta
            self.rollup.good += delta
        else:
            self.scrap_last = count
            self.acc_scrap += delta
            self.rollup.scrap += delta
        if delta:
            self.dirty = True

    def _set_reason(self, ts: datetime, reason: str, now_mono: float) -> None:
        if reason == self.stop_reason:
            return
        self.stop_reason = reason
        if self.raw_state is not None:
            state = canonical_state(self.cfg.state_source, self.raw_state, reason, self.machinery_ns)
            self._move_to(state, ts, now_mono)
        if reason and self.downtime is not None and not self.downtime.emitted:
            self.downtime.reason = reason
        self.dirty = True

    def _set_state(self, raw: Any, ts: datetime, now_mono: float) -> list[PlantEvent]:
        state = canonical_state(self.cfg.state_source, raw, self.stop_reason, self.machinery_ns)
        if state is None:
            self.stats.unknown_states += 1
            self._warn_once("state", "%s: state value %r not understood (by NodeId/number/code)", self.cfg.id, raw)
            return []
        self.raw_state = raw
        events = self._move_to(state, ts, now_mono)
        if self.cfg.state_source == "packml" and raw == PACKML_COMPLETE and not self.done_flag:
            self.done_flag = True
            events += self._confirm(ts, final=True)
        elif self.cfg.state_source == "packml" and raw != PACKML_COMPLETE and not self.cfg.reads("operation_done"):
            self.done_flag = False
        return events

    def _move_to(self, state: EquipmentState | None, ts: datetime, now_mono: float) -> list[PlantEvent]:
        if state is None or state == self.state:
            return []
        previous = self.state
        self._account(ts)
        self.state = state
        self.dirty = True
        events: list[PlantEvent] = []
        if state is EquipmentState.RUNNING:
            dt, self.downtime = self.downtime, None
            if dt is not None:
                if (
                    not dt.emitted
                    and self._reportable(dt)
                    and (ts - dt.since).total_seconds() >= self.config.min_downtime_s
                ):
                    events += self._downtime_started(dt)  # began and ended between two processing rounds
                if dt.emitted:
                    events += self._downtime_ended(dt, ts)
                else:
                    self.stats.short_stops_ignored += 1  # shorter than min_downtime_s, or idle without reason
        else:
            if previous is EquipmentState.RUNNING and self.downtime is None:
                self.downtime = Downtime(
                    since=ts, local_start=now_mono, order=self.order, operation=self.operation, reason=self.stop_reason
                )
            if self.downtime is not None and state in DOWN_STATES:
                self.downtime.down = True
        return events

    # ------------------------------------------------------------------ time-driven

    def tick(self, now: datetime, now_mono: float) -> list[PlantEvent]:
        """Report a downtime once it lasted ``min_downtime_s`` (and has a reason or a down state)."""
        dt = self.downtime
        if dt is None or dt.emitted or self.state is None:
            return []
        if not self._reportable(dt):
            return []  # idle without a reason is no downtime
        elapsed = max((now - dt.since).total_seconds(), now_mono - dt.local_start)
        if elapsed < self.config.min_downtime_s:
            return []
        return self._downtime_started(dt)

    def _reportable(self, dt: Downtime) -> bool:
        dt.reason = dt.reason or self.stop_reason
        return bool(dt.reason) or dt.down

    def _downtime_started(self, dt: Downtime) -> list[PlantEvent]:
        dt.emitted = True
        self.dirty = True
        event = self._event(
            EventType.DOWNTIME_STARTED,
            dt.since,
            order=dt.order,
            operation=dt.operation or None,
            reason=self.config.map_reason(dt.reason),
        )
        if event is None:  # cannot be reported (no order): forget it, its end is not reported either
            dt.emitted = False
            if self.downtime is dt:
                self.downtime = None
            return []
        return [event]

    def _downtime_ended(self, dt: Downtime, ts: datetime) -> list[PlantEvent]:
        duration = max(0.0, (ts - dt.since).total_seconds())
        event = self._event(
            EventType.DOWNTIME_ENDED,
            ts,
            order=dt.order,
            operation=dt.operation or None,
            reason=self.config.map_reason(dt.reason),
            description=f"duration_s={round(duration)}",
        )
        return [event] if event is not None else []

    def account_until(self, when: datetime) -> None:
        self._account(when)

    def _account(self, ts: datetime) -> None:
        if self.accounted_until is None:
            self.accounted_until = ts
            return
        seconds = (ts - self.accounted_until).total_seconds()
        if seconds > 0:
            self.rollup.add_state_time(self.state.value if self.state else None, seconds)
            self.accounted_until = ts

    # ------------------------------------------------------------------ orders

    def switch_order(self, order: str, operation: str, ts: datetime, *, final_previous: bool) -> list[PlantEvent]:
        """The order/operation changed: confirm what the previous one produced, start counting anew."""
        events = self._confirm(ts, final=final_previous)
        self.order, self.operation = order, operation
        self.done_flag = False
        self.final_sent = False
        self.dirty = True
        return events

    def finish_operation(self, ts: datetime) -> list[PlantEvent]:
        return self._confirm(ts, final=True)

    def _confirm(self, ts: datetime, *, final: bool) -> list[PlantEvent]:
        good, scrap = self.acc_good, self.acc_scrap
        if not good and not scrap and (not final or self.final_sent):
            return []  # nothing counted; or the operation's final confirmation was sent already
        self.acc_good = self.acc_scrap = 0
        self.dirty = True
        if not self.order or not self.operation:
            if good or scrap:
                self.stats.no_order_skipped += 1
                self._warn_once(
                    "confirm",
                    "%s: %d good / %d scrap counted without an order/operation: not reported",
                    self.cfg.id,
                    good,
                    scrap,
                )
            return []
        unit = self.cfg.unit
        event = self._event(
            EventType.OPERATION_CONFIRMED,
            ts,
            order=self.order,
            operation=self.operation,
            yield_qty=Quantity(quantity=Decimal(good), uom=unit),
            scrap_qty=Quantity(quantity=Decimal(scrap), uom=unit),
            final=final,
        )
        if event is not None and final:
            self.final_sent = True
        return [event] if event is not None else []

    # ------------------------------------------------------------------ events

    def _event(self, kind: EventType, ts: datetime, *, order: str, **fields: Any) -> PlantEvent | None:
        if not order:
            self.stats.no_order_skipped += 1
            self._warn_once("order", "%s: %s without a current order: not reported", self.cfg.id, kind.value)
            return None
        seq = self.seq + 1
        try:
            event = PlantEvent(
                event_id=event_id(self.config.plant, self.cfg.id, kind, ts, seq),
                event_type=kind,
                source=self.config.source,
                plant=self.config.plant,
                order=order,
                occurred_at=ts,
                work_center=self.cfg.work_center,
                equipment=self.cfg.id,
                **fields,
            )
        except ValidationError as err:
            self.stats.invalid_events += 1
            self._warn_once("invalid", "%s: %s not valid, not reported: %s", self.cfg.id, kind.value, err)
            return None
        self.seq = seq
        self.dirty = True
        self.stats.events += 1
        return event

    def _warn_once(self, key: str, message: str, *args: Any) -> None:
        if key not in self._warned:
            self._warned.add(key)
            _log.warning(message, *args)


class _Missing:
    pass


_MISSING: Any = _Missing()


def utc(ts: datetime | None) -> datetime:
    if ts is None:
        return datetime.now(UTC)
    return ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)
