"""Plant time: shift membership, midnight-crossing shifts, DST, working days, posting dates."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from plantbridge.canonical.commands import ConfirmOperation, command_hash_payload
from plantbridge.canonical.plant_config import PlantConfig
from plantbridge.canonical.plant_time import (
    ShiftCalendar,
    last_ended,
    local_date,
    shift_at,
    shift_windows,
    windows_between,
)

BERLIN = "Europe/Berlin"
SHIFTS: list[dict[str, Any]] = [
    {"name": "early", "start": "06:00", "end": "14:00", "breaks": [{"start": "10:00", "end": "10:30"}]},
    {"name": "late", "start": "14:00", "end": "22:00"},
    {"name": "night", "start": "22:00", "end": "06:00", "breaks": [{"start": "02:00", "end": "02:30"}]},
]


def cal(**kw: Any) -> ShiftCalendar:
    return ShiftCalendar.model_validate({"timezone": BERLIN, "shifts": SHIFTS, **kw})


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def test_three_shifts_on_a_winter_day() -> None:
    ws = shift_windows(cal(), date(2026, 1, 14))  # Wednesday, CET = UTC+1
    assert [(w.shift, w.start, w.end) for w in ws] == [
        ("early", utc(2026, 1, 14, 5), utc(2026, 1, 14, 13)),
        ("late", utc(2026, 1, 14, 13), utc(2026, 1, 14, 21)),
        ("night", utc(2026, 1, 14, 21), utc(2026, 1, 15, 5)),
    ]
    early, _, night = ws
    assert early.planned_production_time == timedelta(hours=7, minutes=30)
    # The night shift's break is on the next calendar day, inside the window.
    assert night.planned_stops == ((utc(2026, 1, 15, 1), utc(2026, 1, 15, 1, 30)),)
    assert night.planned_production_time == timedelta(hours=7, minutes=30)


def test_midnight_crossing_shift_belongs_to_the_day_it_started() -> None:
    c = cal()
    w = shift_at(c, utc(2026, 1, 14, 23, 30))  # 00:30 local on the 15th
    assert w is not None and (w.shift, w.plant_day) == ("night", date(2026, 1, 14))
    assert w.key == "2026-01-14:night"
    w = shift_at(c, utc(2026, 1, 15, 4, 59))
    assert w is not None and w.key == "2026-01-14:night"
    w = shift_at(c, utc(2026, 1, 15, 5, 0))  # 06:00 local: the next early shift
    assert w is not None and w.key == "2026-01-15:early"


def test_friday_night_shift_runs_into_saturday_and_no_shift_on_the_weekend() -> None:
    c = cal()
    w = shift_at(c, utc(2026, 1, 17, 2))  # Saturday 03:00 local: Friday's night shift
    assert w is not None and w.key == "2026-01-16:night"
    assert shift_at(c, utc(2026, 1, 17, 10)) is None  # Saturday day time: not a working day
    assert shift_windows(c, date(2026, 1, 17)) == []


def test_holiday_has_no_shifts() -> None:
    c = cal(holidays=["2026-05-01"])
    assert shift_windows(c, date(2026, 5, 1)) == []
    assert len(shift_windows(c, date(2026, 4, 30))) == 3


def test_dst_spring_forward_night_is_seven_hours() -> None:
    c = cal(working_days=["mon", "tue", "wed", "thu", "fri", "sat", "sun"])
    night = shift_windows(c, date(2026, 3, 28))[-1]  # clocks go 02:00 -> 03:00 on 29 March
    assert night.start == utc(2026, 3, 28, 21)  # 22:00 CET
    assert night.end == utc(2026, 3, 29, 4)  # 06:00 CEST
    assert night.duration == timedelta(hours=7)
    # The 02:00-02:30 break falls in the gap: it maps past the gap (03:00-03:30 CEST = 01:00-01:30 UTC).
    assert night.planned_stop_time == timedelta(minutes=30)
    assert night.planned_production_time == timedelta(hours=6, minutes=30)


def test_dst_fall_back_night_is_nine_hours() -> None:
    c = cal(working_days=["mon", "tue", "wed", "thu", "fri", "sat", "sun"])
    night = shift_windows(c, date(2026, 10, 24))[-1]  # clocks go 03:00 -> 02:00 on 25 October
    assert night.start == utc(2026, 10, 24, 20)  # 22:00 CEST
    assert night.end == utc(2026, 10, 25, 5)  # 06:00 CET
    assert night.duration == timedelta(hours=9)
    # An instant in the repeated hour belongs to the night shift either way.
    for at in (utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1, 30)):
        w = shift_at(c, at)
        assert w is not None and w.key == "2026-10-24:night"


def test_windows_between_and_last_ended() -> None:
    c = cal()
    ws = windows_between(c, utc(2026, 1, 13, 23), utc(2026, 1, 15, 23))
    assert [w.key for w in ws] == [
        "2026-01-13:night", "2026-01-14:early", "2026-01-14:late", "2026-01-14:night",
        "2026-01-15:early", "2026-01-15:late",
    ]
    # A schedule firing at the early shift's end + 15 minutes summarises the early shift.
    w = last_ended(c, utc(2026, 1, 14, 13, 15))
    assert w is not None and w.key == "2026-01-14:early"
    w = last_ended(c, utc(2026, 1, 14, 13))  # exactly at the end
    assert w is not None and w.key == "2026-01-14:early"


def test_local_date_is_the_posting_date() -> None:
    at = utc(2026, 1, 14, 23, 30)  # 00:30 on the 15th in Berlin, still the 14th in UTC and Chicago
    assert local_date(at, BERLIN) == date(2026, 1, 15)
    assert local_date(at, "UTC") == date(2026, 1, 14)
    assert local_date(at, "America/Chicago") == date(2026, 1, 14)
    with pytest.raises(ValueError, match="no UTC offset"):
        local_date(datetime(2026, 1, 1), BERLIN)


def test_plant_file_validates_timezone_and_shifts() -> None:
    cfg = PlantConfig.model_validate({"plant": "1000", "timezone": BERLIN, "shifts": SHIFTS,
                                      "holidays": ["2026-12-25"], "working_days": ["mon", "tue"]})
    assert cfg.calendar.shift("night").crosses_midnight
    with pytest.raises(ValidationError, match="unknown IANA time zone"):
        PlantConfig.model_validate({"plant": "1000", "timezone": "Europe/Augsburg"})
    with pytest.raises(ValidationError, match="unique"):
        PlantConfig.model_validate({"plant": "1000", "shifts": [SHIFTS[0], SHIFTS[0]]})
    with pytest.raises(ValidationError):
        PlantConfig.model_validate({"plant": "1000", "working_days": ["monday"]})
    with pytest.raises(ValidationError, match="needs `shifts`"):
        PlantConfig.model_validate({"plant": "1000", "batch": {"jobs": ["shift-summary"]}})
    assert PlantConfig.model_validate({"plant": "1000"}).timezone == "UTC"


def test_posting_date_does_not_change_the_ledger_hash_of_an_undated_command() -> None:
    cmd = ConfirmOperation(operation="0010", work_center="ASSY-01",
                           yield_qty={"quantity": Decimal(5), "uom": "H87"})  # type: ignore[arg-type]
    payload = command_hash_payload(cmd)
    assert "posting_date" not in payload
    dated = cmd.model_copy(update={"posting_date": date(2026, 1, 15)})
    assert command_hash_payload(dated)["posting_date"] == "2026-01-15"
