"""Plant time: a plant's time zone and shift calendar, and the pure functions over them.

Everything a plant reports happens on the plant's clock: a confirmation at 00:30 on the night shift
belongs to the shift (and the production day) that started at 22:00 the evening before, and its ERP
posting date is the plant's local date of the event, not the UTC date of the server.

Rules:
- A shift is `start`-`end` in local wall-clock time; `end <= start` means it crosses midnight and it
  belongs to the day it started (working days and holidays are judged on that day).
- Windows are computed in the plant's zone and held in UTC, so their length is real elapsed time: a
  night shift 22:00-06:00 lasts 7 h on the night clocks spring forward and 9 h when they fall back.
- Planned stops (breaks) are local times inside their shift; planned production time is the
  window's length minus them.

No I/O and no clock: every function takes the timestamps it works on.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def zone(name: str) -> ZoneInfo:
    """The IANA zone `name`; ValueError when the name is unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown IANA time zone {name!r} (e.g. Europe/Berlin, America/Chicago, UTC)") from None


def validate_zone_name(name: str) -> str:
    zone(name)
    return name


class PlannedStop(BaseModel):
    """A planned stop inside a shift (break, planned maintenance window), local wall-clock times."""

    model_config = ConfigDict(extra="forbid")

    start: time
    end: time
    name: str = ""


class Shift(BaseModel):
    """One shift of the plant's calendar; `end <= start` crosses midnight."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=20, pattern=r"^[A-Za-z0-9_-]+$")
    start: time
    end: time
    breaks: list[PlannedStop] = Field(default_factory=list)

    @model_validator(mode="after")
    def _naive_times(self) -> Shift:
        for t in (self.start, self.end, *(x for b in self.breaks for x in (b.start, b.end))):
            if t.tzinfo is not None:
                raise ValueError("shift times are local wall-clock times: no UTC offset")
        return self

    @property
    def crosses_midnight(self) -> bool:
        return self.end <= self.start


class ShiftCalendar(BaseModel):
    """A plant's time zone, shifts, working days and holidays."""

    model_config = ConfigDict(extra="forbid")

    timezone: str = "UTC"
    shifts: list[Shift] = Field(default_factory=list)
    working_days: list[Weekday] = Field(default_factory=lambda: list(WEEKDAYS[:5]))
    holidays: list[date] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, name: str) -> str:
        return validate_zone_name(name)

    @field_validator("shifts")
    @classmethod
    def _unique_names(cls, shifts: list[Shift]) -> list[Shift]:
        names = [s.name for s in shifts]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"shift names must be unique (repeated: {', '.join(dupes)})")
        return shifts

    @property
    def tz(self) -> ZoneInfo:
        return zone(self.timezone)

    def shift(self, name: str) -> Shift:
        for s in self.shifts:
            if s.name == name:
                return s
        raise KeyError(f"no shift {name!r} (known: {', '.join(s.name for s in self.shifts) or 'none'})")

    def is_working_day(self, day: date) -> bool:
        return WEEKDAYS[day.weekday()] in self.working_days and day not in self.holidays


class ShiftWindow(BaseModel):
    """One occurrence of a shift: its production day, and start/end in UTC."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    plant_day: date
    shift: str
    start: datetime
    end: datetime
    planned_stops: tuple[tuple[datetime, datetime], ...] = ()

    @property
    def key(self) -> str:
        """`{day}:{shift}`, e.g. `2026-03-28:night`: names the window in ids and files."""
        return f"{self.plant_day.isoformat()}:{self.shift}"

    @property
    def duration(self) -> timedelta:
        return self.end - self.start

    @property
    def planned_stop_time(self) -> timedelta:
        return sum((overlap(s, e, self.start, self.end) for s, e in self.planned_stops), timedelta())

    @property
    def planned_production_time(self) -> timedelta:
        return self.duration - self.planned_stop_time

    def contains(self, at: datetime) -> bool:
        return self.start <= at < self.end


def _local(day: date, t: time, tz: ZoneInfo) -> datetime:
    """Wall-clock `day t` in `tz`, as UTC. A time in the spring-forward gap maps past the gap."""
    return datetime.combine(day, t, tzinfo=tz).astimezone(UTC)


def window(cal: ShiftCalendar, shift: Shift, day: date) -> ShiftWindow:
    """The occurrence of `shift` that starts on local `day` (working day or not)."""
    tz = cal.tz
    end_day = day + timedelta(days=1) if shift.crosses_midnight else day
    stops = []
    for b in shift.breaks:
        b_day = day + timedelta(days=1) if shift.crosses_midnight and b.start < shift.start else day
        b_end_day = b_day + timedelta(days=1) if b.end <= b.start else b_day
        stops.append((_local(b_day, b.start, tz), _local(b_end_day, b.end, tz)))
    return ShiftWindow(plant_day=day, shift=shift.name, start=_local(day, shift.start, tz),
                       end=_local(end_day, shift.end, tz), planned_stops=tuple(stops))


def shift_windows(cal: ShiftCalendar, day: date) -> list[ShiftWindow]:
    """The shifts worked on production day `day` (none on a non-working day or a holiday), by start."""
    if not cal.is_working_day(day):
        return []
    return sorted((window(cal, s, day) for s in cal.shifts), key=lambda w: w.start)


def shift_at(cal: ShiftCalendar, at: datetime) -> ShiftWindow | None:
    """The worked shift `at` (aware) falls in, or None between shifts / on days off."""
    _aware(at)
    day = local_date(at, cal.timezone)
    for d in (day - timedelta(days=1), day):
        for w in shift_windows(cal, d):
            if w.contains(at):
                return w
    return None


def windows_between(cal: ShiftCalendar, start: datetime, end: datetime) -> list[ShiftWindow]:
    """Worked shift windows that end in [start, end), in order of their end (backfills, catch-up)."""
    _aware(start)
    _aware(end)
    first = local_date(start, cal.timezone) - timedelta(days=1)
    last = local_date(end, cal.timezone)
    found: list[ShiftWindow] = []
    d = first
    while d <= last:
        found.extend(w for w in shift_windows(cal, d) if start <= w.end < end)
        d += timedelta(days=1)
    return sorted(found, key=lambda w: (w.end, w.shift))


def last_ended(cal: ShiftCalendar, at: datetime, *, within: timedelta = timedelta(days=2)) -> ShiftWindow | None:
    """The worked shift that ended last at or before `at` (the one a shift-end schedule fired for)."""
    ended = windows_between(cal, at - within, at + timedelta(microseconds=1))
    return ended[-1] if ended else None


def so_far(w: ShiftWindow, at: datetime) -> ShiftWindow:
    """The running shift `w` cut at `at` (its planned stops too): what of it has happened by then."""
    _aware(at)
    end = min(max(at, w.start), w.end)
    stops = tuple((s, min(e, end)) for s, e in w.planned_stops if s < end)
    return w.model_copy(update={"end": end, "planned_stops": stops})


def local_date(at: datetime, timezone: str) -> date:
    """The plant's local calendar date of instant `at` (the ERP posting date of an event)."""
    _aware(at)
    return at.astimezone(zone(timezone)).date()


def overlap(a_start: datetime, a_end: datetime, b_start: datetime, b_end: datetime) -> timedelta:
    """Length of the intersection of [a_start, a_end) and [b_start, b_end)."""
    return max(min(a_end, b_end) - max(a_start, b_start), timedelta())


def _aware(at: datetime) -> None:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"timestamp {at.isoformat()} has no UTC offset")
