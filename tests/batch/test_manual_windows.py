"""Which shifts `plantbridge batch run shift-summary --plant P` summarises when no shift is named: the
last shift that ended and the running one cut at now (pure: the calendar and a given instant)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from plantbridge.activities.batch import pick_windows
from plantbridge.canonical.batch_jobs import ShiftSummaryJob
from plantbridge.canonical.plant_config import PlantConfig

CFG = PlantConfig.model_validate({
    "plant": "1000", "timezone": "Europe/Berlin",
    "shifts": [{"name": "early", "start": "06:00", "end": "14:00", "breaks": [{"start": "10:00", "end": "10:30"}]},
               {"name": "late", "start": "14:00", "end": "22:00", "breaks": [{"start": "18:00", "end": "18:30"}]}],
    "working_days": ["mon", "tue", "wed", "thu", "fri"]})
JOB = ShiftSummaryJob(plant="1000")


def berlin(day: int, hour: int, minute: int = 0) -> datetime:
    """December 2026 in Berlin (CET, UTC+1) as UTC; 2 December is a Wednesday."""
    return datetime(2026, 12, day, hour, minute, tzinfo=UTC) - timedelta(hours=1)


def test_just_after_a_shift_change_both_shifts() -> None:
    (early, done), (late, running) = pick_windows(CFG, JOB, berlin(2, 14, 1))
    assert (early.key, done, late.key, running) == ("2026-12-02:early", False, "2026-12-02:late", True)
    assert early.end == berlin(2, 14) and late.start == berlin(2, 14) and late.end == berlin(2, 14, 1)


def test_mid_shift_the_running_one_is_cut_at_now_with_its_breaks() -> None:
    (_, _), (early, running) = pick_windows(CFG, JOB, berlin(2, 10, 15))
    assert running and early.end == berlin(2, 10, 15)
    assert early.planned_stops == ((berlin(2, 10), berlin(2, 10, 15)),)  # the break so far
    assert early.planned_production_time == timedelta(hours=4)  # 06:00-10:15 minus 15 min of break


def test_between_shifts_and_on_a_day_off_only_the_last_that_ended() -> None:
    ((late, done),) = pick_windows(CFG, JOB, berlin(2, 23))
    assert (late.key, done) == ("2026-12-02:late", False)
    ((friday, _),) = pick_windows(CFG, JOB, berlin(5, 12))  # Saturday noon
    assert friday.plant_day == date(2026, 12, 4) and friday.shift == "late"


def test_a_named_shift_or_a_schedule_gives_one_shift() -> None:
    named = ShiftSummaryJob(plant="1000", shift="early", day=date(2026, 12, 2))
    assert [(w.key, w.end, p) for w, p in pick_windows(CFG, named, berlin(3, 9))] == [
        ("2026-12-02:early", berlin(2, 14), False)]
    # ... while it runs: cut at now, in progress
    assert [(w.key, w.end, p) for w, p in pick_windows(CFG, named, berlin(2, 9))] == [
        ("2026-12-02:early", berlin(2, 9), True)]
    fired = pick_windows(CFG, ShiftSummaryJob(plant="1000", scheduled_at=berlin(2, 14, 15)), berlin(2, 14, 16))
    assert [(w.key, p) for w, p in fired] == [("2026-12-02:early", False)]
