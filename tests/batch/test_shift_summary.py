"""OEE of a scripted shift equals the hand-computed value, factor by factor."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from fractions import Fraction

from plantbridge.batch.summary import Confirmation, Downtime, summarize
from plantbridge.canonical.plant_time import ShiftCalendar, shift_windows

CAL = ShiftCalendar.model_validate({
    "timezone": "Europe/Berlin",
    "shifts": [{"name": "early", "start": "06:00", "end": "14:00", "breaks": [{"start": "10:00", "end": "10:30"}]},
               {"name": "late", "start": "14:00", "end": "22:00"}],
})
EARLY = shift_windows(CAL, date(2026, 1, 14))[0]  # 05:00-13:00 UTC, break 09:00-09:30 UTC


def at(h: int, m: int = 0) -> datetime:
    """Local Berlin time on 14 January 2026 (CET, UTC+1) as UTC."""
    return datetime(2026, 1, 14, h - 1, m, tzinfo=UTC)


def conf(eid: str, order: str, when: datetime, y: int, s: int = 0, r: int = 0, labor: int = 0,
         wc: str = "ASSY-01") -> Confirmation:
    return Confirmation(event_id=eid, order=order, operation="0010", work_center=wc, at=when,
                        yield_qty=Decimal(y), scrap_qty=Decimal(s), rework_qty=Decimal(r), uom="H87",
                        labor_min=Decimal(labor))


CONFIRMATIONS = [
    conf("e1", "1001", at(9), 500, 10, 5, labor=120),
    conf("e2", "1002", at(13), 100, 5, labor=60),
    conf("e3", "1002", at(14), 999),  # 14:00: the late shift's
    conf("e4", "1001", at(5, 59), 999),  # before the shift
]
DOWNTIMES = [
    Downtime(work_center="ASSY-01", start=at(7), end=at(7, 40), reason="BRK1", equipment="M01"),
    # Another machine of the same line, overlapping: the line is down 07:00-07:50 once.
    Downtime(work_center="ASSY-01", start=at(7, 30), end=at(7, 50), reason="BRK1", equipment="M02"),
    # 10:15-10:45 overlaps the 10:00-10:30 break: only 15 minutes count.
    Downtime(work_center="ASSY-01", start=at(10, 15), end=at(10, 45), reason="BRK2"),
    Downtime(work_center="ASSY-01", start=at(15), end=at(16), reason="BRK1"),  # late shift
]


def q(f: Fraction) -> Decimal:
    return (Decimal(f.numerator) / Decimal(f.denominator)).quantize(Decimal("0.000001"))


def test_oee_of_a_scripted_shift_factor_by_factor() -> None:
    s = summarize(plant="1000", timezone="Europe/Berlin", window=EARLY,
                  ideal_cycle_times={"ASSY-01": Decimal(30), "TEST-01": None},
                  confirmations=CONFIRMATIONS, downtimes=DOWNTIMES)
    assert (s.plant_day, s.shift, s.orders) == ("2026-01-14", "early", ["1001", "1002"])
    assy, test = s.work_centers
    o = assy.oee
    # By hand: 8 h shift = 28800 s, 30 min break = 1800 s -> planned production 27000 s.
    assert (o.shift_seconds, o.planned_stop_seconds, o.planned_production_seconds) == (28800, 1800, 27000)
    # Downtime: 07:00-07:50 (union of two machines) = 3000 s + 10:30-10:45 = 900 s -> 3900 s; run 23100 s.
    assert (o.downtime_seconds, o.run_seconds) == (3900, 23100)
    # Counts: good 500 + 100 = 600; total 600 + scrap 15 + rework 5 = 620; ideal run 30 s x 620 = 18600 s.
    assert (o.good_count, o.total_count, o.ideal_run_seconds) == (600, 620, 18600)
    assert o.availability == q(Fraction(23100, 27000)) == Decimal("0.855556")
    assert o.performance == q(Fraction(18600, 23100)) == Decimal("0.805195")
    assert o.quality == q(Fraction(600, 620)) == Decimal("0.967742")
    assert o.oee == q(Fraction(23100, 27000) * Fraction(18600, 23100) * Fraction(600, 620)) == Decimal("0.666667")
    # Downtime by reason (each interval's own productive duration) and labour.
    assert [(d.reason, d.seconds, d.occurrences) for d in assy.downtime] == [
        ("BRK1", Decimal(2400 + 1200), 2), ("BRK2", Decimal(900), 1)]
    assert assy.labour_hours == 3
    assert [(f.order, f.operation, f.yield_qty, f.scrap_qty, f.rework_qty) for f in assy.operations] == [
        ("1001", "0010", 500, 10, 5), ("1002", "0010", 100, 5, 0)]
    # An idle work center without an ideal cycle time: available, nothing else defined.
    t = test.oee
    assert (t.availability, t.performance, t.quality, t.oee) == (Decimal(1), None, None, None)
    # The plant: availability over both work centers, performance over those with an ideal cycle time.
    p = s.oee
    assert (p.planned_production_seconds, p.downtime_seconds, p.run_seconds) == (54000, 3900, 50100)
    assert p.availability == q(Fraction(50100, 54000))
    assert p.performance == q(Fraction(18600, 23100))
    assert p.quality == q(Fraction(600, 620))
    assert p.oee == q(Fraction(50100, 54000) * Fraction(18600, 23100) * Fraction(600, 620))


def test_same_facts_same_bytes_in_any_order() -> None:
    a = summarize(plant="1000", timezone="Europe/Berlin", window=EARLY, ideal_cycle_times={"ASSY-01": Decimal(30)},
                  confirmations=CONFIRMATIONS, downtimes=DOWNTIMES)
    b = summarize(plant="1000", timezone="Europe/Berlin", window=EARLY, ideal_cycle_times={"ASSY-01": Decimal(30)},
                  confirmations=list(reversed(CONFIRMATIONS)), downtimes=list(reversed(DOWNTIMES)))
    assert a.canonical_json() == b.canonical_json() and a.content_hash == b.content_hash
    c = summarize(plant="1000", timezone="Europe/Berlin", window=EARLY, ideal_cycle_times={"ASSY-01": Decimal(30)},
                  confirmations=CONFIRMATIONS[:1], downtimes=DOWNTIMES)
    assert c.content_hash != a.content_hash


def test_open_downtime_runs_to_the_shift_end_and_performance_is_capped() -> None:
    s = summarize(plant="1000", timezone="Europe/Berlin", window=EARLY, ideal_cycle_times={"ASSY-01": Decimal(60)},
                  confirmations=[conf("x", "1", at(7), 1000)],
                  downtimes=[Downtime(work_center="ASSY-01", start=at(12), end=None, reason="MAT1")])
    o = s.work_centers[0].oee
    assert o.downtime_seconds == 7200 and o.run_seconds == 27000 - 7200
    assert o.performance == 1 and o.performance_uncapped == q(Fraction(60000, 19800))
