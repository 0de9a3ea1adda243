"""The shift summary: what a plant's work centers produced in one shift, and their OEE.

Pure: it takes the shift window (from the plant's calendar), the plant's work centers with their
ideal cycle times, and the facts the plant reported (confirmations, downtimes), and returns one
`ShiftSummary`. Same inputs, same summary, same bytes (`canonical_json`), same content hash: a
re-run or backfill of a shift never produces a second document.

OEE per work center (ISA-95/ISO 22400 style):
- planned production time = shift length - planned stops (breaks) of the calendar;
- downtime = the union of the work center's downtime intervals, clipped to the shift and outside
  planned stops (overlapping downtimes of two machines of one work center count once);
- run time = planned production time - downtime;
- availability = run time / planned production time;
- performance = ideal cycle time x total count / run time (capped at 1; `performance_uncapped`
  keeps the raw figure, > 1 means the ideal cycle time is set too slow);
- quality = good count / total count, good = yield, total = yield + scrap + rework;
- OEE = availability x performance x quality; a factor that is undefined (no ideal cycle time, no
  count, no planned time) is null and so is OEE.
The plant's OEE uses the sums over its work centers (performance over those with an ideal cycle
time). Counts add quantities regardless of unit: OEE assumes a work center counts one kind of unit.

Precedence of the inputs (the machines' own figures from the edge rollups, `batch/machine_facts.py`):
- ideal cycle time: the plant file's `work_centers[].ideal_cycle_time_s`; else the fastest cycle the
  work center's machines showed in the shift (`ideal_cycle_time_from: machine`); else none;
- good and total counts: the confirmations of the shift; a work center with none takes its machines'
  good and scrap counters (`counts_from: machine`); else zero.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from plantbridge.batch.machine_facts import MachineFacts
from plantbridge.canonical.plant_time import ShiftWindow, overlap

PLACES = Decimal("0.000001")
ZERO = Decimal(0)


class Confirmation(BaseModel):
    """One accepted `operation_confirmed` event."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: str
    order: str
    operation: str
    work_center: str
    at: datetime
    yield_qty: Decimal
    scrap_qty: Decimal = ZERO
    rework_qty: Decimal = ZERO
    uom: str
    labor_min: Decimal = ZERO
    final: bool = False
    reason: str | None = None


class Downtime(BaseModel):
    """A downtime interval of a work center (`end` None: still open)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    work_center: str
    start: datetime
    end: datetime | None
    reason: str = "UNSPECIFIED"
    equipment: str | None = None


class OperationFigures(BaseModel):
    model_config = ConfigDict(extra="forbid")

    order: str
    operation: str
    uom: str
    yield_qty: Decimal
    scrap_qty: Decimal
    rework_qty: Decimal
    confirmations: int
    final: bool


class DowntimeByReason(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str
    seconds: Decimal
    occurrences: int


class Oee(BaseModel):
    """OEE with every input, so a reader can recompute each factor."""

    model_config = ConfigDict(extra="forbid")

    shift_seconds: Decimal
    planned_stop_seconds: Decimal
    planned_production_seconds: Decimal
    downtime_seconds: Decimal
    run_seconds: Decimal
    ideal_cycle_time_s: Decimal | None
    ideal_run_seconds: Decimal | None
    total_count: Decimal
    good_count: Decimal
    availability: Decimal | None
    performance: Decimal | None
    performance_uncapped: Decimal | None
    quality: Decimal | None
    oee: Decimal | None


class WorkCenterSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    work_center: str
    orders: list[str]
    operations: list[OperationFigures]
    downtime: list[DowntimeByReason]
    labour_hours: Decimal
    oee: Oee
    # Where the machines' figures stood in (see the precedence above); None: the plant file / confirmations.
    ideal_cycle_time_from: Literal["machine"] | None = None
    counts_from: Literal["machine"] | None = None


class ShiftSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plant: str
    timezone: str
    plant_day: str
    shift: str
    start: datetime
    end: datetime
    orders: list[str]
    work_centers: list[WorkCenterSummary]
    oee: Oee
    sources: dict[str, int] = Field(default_factory=dict)
    # A shift still running, summarised up to `end` (a run by hand mid-shift): figures so far, not final.
    in_progress: bool = False

    def canonical_json(self) -> bytes:
        """Stable bytes: sorted keys, no whitespace, decimals as strings (a finished shift's bytes do not
        carry `in_progress`, so its content hash is what it was before the flag existed)."""
        body = self.model_dump(mode="json", exclude=None if self.in_progress else {"in_progress"})
        for wc in body["work_centers"]:  # likewise the machines' figures where none stood in
            for key in ("ideal_cycle_time_from", "counts_from"):
                if wc[key] is None:
                    del wc[key]
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(self.canonical_json()).hexdigest()


def _q(value: Decimal) -> Decimal:
    return value.quantize(PLACES, rounding=ROUND_HALF_EVEN)


def _secs(d: timedelta) -> Decimal:
    return Decimal(d.days * 86400 + d.seconds) + Decimal(d.microseconds) / Decimal(1_000_000)


def _div(a: Decimal, b: Decimal) -> Decimal | None:
    return a / b if b > 0 else None


def _union(intervals: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    merged: list[tuple[datetime, datetime]] = []
    for s, e in sorted(intervals):
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return merged


def _productive(w: ShiftWindow, s: datetime, e: datetime) -> timedelta:
    """Length of [s, e) inside the shift and outside its planned stops."""
    inside = overlap(s, e, w.start, w.end)
    stops = _union([(max(a, s), min(b, e)) for a, b in w.planned_stops if min(b, e) > max(a, s)])
    return inside - sum((overlap(a, b, w.start, w.end) for a, b in stops), timedelta())


def oee(
    *, shift_s: Decimal, stop_s: Decimal, downtime_s: Decimal, ideal_run_s: Decimal | None, total: Decimal,
    good: Decimal, ideal_cycle_time_s: Decimal | None, perf_basis: tuple[Decimal, Decimal] | None = None,
) -> Oee:
    """Every factor from its inputs; `perf_basis` = (run seconds, count) performance is judged on
    when it differs from the whole (the plant: only work centers with an ideal cycle time)."""
    planned = shift_s - stop_s
    run = max(planned - downtime_s, ZERO)
    perf_run, perf_count = perf_basis if perf_basis is not None else (run, total)
    availability = _div(run, planned)
    raw_perf = _div(ideal_run_s, perf_run) if ideal_run_s is not None and perf_count > 0 else None
    performance = min(raw_perf, Decimal(1)) if raw_perf is not None else None
    quality = _div(good, total)
    product = None
    if availability is not None and performance is not None and quality is not None:
        product = availability * performance * quality
    return Oee(
        shift_seconds=_q(shift_s), planned_stop_seconds=_q(stop_s), planned_production_seconds=_q(planned),
        downtime_seconds=_q(downtime_s), run_seconds=_q(run), ideal_cycle_time_s=ideal_cycle_time_s,
        ideal_run_seconds=_q(ideal_run_s) if ideal_run_s is not None else None, total_count=total, good_count=good,
        availability=_opt(availability), performance=_opt(performance), performance_uncapped=_opt(raw_perf),
        quality=_opt(quality), oee=_opt(product),
    )


def _opt(value: Decimal | None) -> Decimal | None:
    return _q(value) if value is not None else None


def summarize(
    *, plant: str, timezone: str, window: ShiftWindow, ideal_cycle_times: dict[str, Decimal | None],
    confirmations: list[Confirmation], downtimes: list[Downtime], in_progress: bool = False,
    machines: MachineFacts | None = None,
) -> ShiftSummary:
    """The shift's summary. `ideal_cycle_times` names the plant's work centers (value None: unknown).
    `in_progress`: `window` is a running shift cut at the present (see `plant_time.so_far`)."""
    confs = sorted((c for c in confirmations if window.contains(c.at)), key=lambda c: (c.at, c.event_id))
    downs = [d for d in downtimes if overlap(d.start, d.end or window.end, window.start, window.end) > timedelta()]
    machines = machines or MachineFacts()
    centers = sorted(set(ideal_cycle_times) | {c.work_center for c in confs} | {d.work_center for d in downs}
                     | set(machines.counts))
    shift_s = _secs(window.duration)
    stop_s = _secs(window.planned_stop_time)
    summaries: list[WorkCenterSummary] = []
    for wc in centers:
        mine = [c for c in confs if c.work_center == wc]
        ops: dict[tuple[str, str, str], list[Confirmation]] = defaultdict(list)
        for c in mine:
            ops[(c.order, c.operation, c.uom)].append(c)
        figures = [
            OperationFigures(order=o, operation=op, uom=u, yield_qty=sum((c.yield_qty for c in cs), ZERO),
                             scrap_qty=sum((c.scrap_qty for c in cs), ZERO),
                             rework_qty=sum((c.rework_qty for c in cs), ZERO), confirmations=len(cs),
                             final=any(c.final for c in cs))
            for (o, op, u), cs in sorted(ops.items())
        ]
        wc_downs = [d for d in downs if d.work_center == wc]
        by_reason: dict[str, list[Decimal]] = defaultdict(list)
        for d in wc_downs:
            by_reason[d.reason].append(_secs(_productive(window, d.start, d.end or window.end)))
        union = _union([(max(d.start, window.start), min(d.end or window.end, window.end)) for d in wc_downs])
        downtime_s = sum((_secs(_productive(window, s, e)) for s, e in union), ZERO)
        good = sum((f.yield_qty for f in figures), ZERO)
        total = good + sum((f.scrap_qty + f.rework_qty for f in figures), ZERO)
        counts_from = None
        if not figures and wc in machines.counts:
            good, scrap = machines.counts[wc]
            total, counts_from = good + scrap, "machine"
        ideal, ideal_from = ideal_cycle_times.get(wc), None
        if ideal is None and wc in machines.ideal_cycle_s:
            ideal, ideal_from = machines.ideal_cycle_s[wc], "machine"
        summaries.append(WorkCenterSummary(
            work_center=wc,
            orders=sorted({c.order for c in mine}),
            operations=figures,
            downtime=[DowntimeByReason(reason=r, seconds=_q(sum(v, ZERO)), occurrences=len(v))
                      for r, v in sorted(by_reason.items())],
            labour_hours=_q(sum((c.labor_min for c in mine), ZERO) / 60),
            oee=oee(shift_s=shift_s, stop_s=stop_s, downtime_s=downtime_s,
                    ideal_run_s=ideal * total if ideal is not None else None, total=total, good=good,
                    ideal_cycle_time_s=ideal),
            ideal_cycle_time_from=ideal_from, counts_from=counts_from,
        ))
    timed = [s.oee for s in summaries if s.oee.ideal_run_seconds is not None]
    n = Decimal(len(summaries))
    plant_oee = oee(
        shift_s=shift_s * n, stop_s=stop_s * n, downtime_s=sum((s.oee.downtime_seconds for s in summaries), ZERO),
        ideal_run_s=sum((o.ideal_run_seconds or ZERO for o in timed), ZERO) if timed else None,
        total=sum((s.oee.total_count for s in summaries), ZERO),
        good=sum((s.oee.good_count for s in summaries), ZERO), ideal_cycle_time_s=None,
        perf_basis=(sum((o.run_seconds for o in timed), ZERO), sum((o.total_count for o in timed), ZERO)),
    )
    return ShiftSummary(
        plant=plant, timezone=timezone, plant_day=window.plant_day.isoformat(), shift=window.shift,
        start=window.start, end=window.end, orders=sorted({c.order for c in confs}), work_centers=summaries,
        oee=plant_oee, sources={"confirmations": len(confs), "downtimes": len(downs),
                                **({"rollups": machines.rollups} if machines.rollups else {})},
        in_progress=in_progress,
    )
