"""The machines' own figures in a shift summary (edge rollups from the telemetry archive): the ideal
cycle time where the plant file gives none, counts for a work center without confirmations; precedence
plant file > machine and confirmations > machine; OEE of the scripted shift by hand, factor by factor.
The archive is real Parquet written by the gateway's `TelemetryArchive`; the activity runs in temporalio's
ActivityEnvironment on a real SQLite store."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

from temporalio.testing import ActivityEnvironment

from plantbridge.activities.batch import BatchActivities
from plantbridge.batch.machine_facts import machine_facts, read_rollups
from plantbridge.batch.summary import summarize
from plantbridge.batch.telemetry_archive import TelemetryArchive
from plantbridge.canonical.batch_jobs import ShiftSummaryJob
from plantbridge.canonical.plant_config import PlantConfig
from plantbridge.canonical.rollup import TelemetryRollup
from plantbridge.store import Database, Inbox, sqlite_url
from tests.batch.test_shift_schedule import store_event
from tests.batch.test_shift_summary import CAL, EARLY, at, conf, q

PLANT = "3400"


def rollup(machine: str, wc: str, start: datetime, good: int, scrap: int, cycle_min: float | None,
           cycle_n: int = 10) -> TelemetryRollup:
    return TelemetryRollup(machine_id=machine, work_center=wc, bucket_start=start,
                           bucket_end=start + timedelta(minutes=1), running_s=60, idle_s=0, stopped_s=0, down_s=0,
                           unavailable_s=0, good=good, scrap=scrap, cycle_min=cycle_min,
                           cycle_avg=cycle_min, cycle_max=cycle_min, cycle_n=cycle_n if cycle_min else 0)


ROLLUPS = [
    # ASSY-01 (no ideal cycle time in the plant file): its machine's fastest cycle, 30 s, stands in;
    # its counters do not (the work center has confirmations).
    rollup("M01", "ASSY-01", at(7), 400, 5, 31000.0),
    rollup("M01", "ASSY-01", at(8), 100, 0, 30000.0),
    rollup("M01", "ASSY-01", at(8, 1), 0, 0, None),  # no cycle sampled in that minute
    # TEST-01: the plant file's 20 s wins over the machine's 15 s.
    rollup("M02", "TEST-01", at(9), 900, 0, 15000.0),
    # PACK-01: no confirmations in the shift: its machine's counters count (90 good of 100), ideal 100 s.
    rollup("M03", "PACK-01", at(6, 30), 50, 4, 100000.0),
    rollup("M03", "PACK-01", at(11), 40, 6, 120000.0),
    rollup("M03", "PACK-01", at(14), 999, 0, 1000.0),  # 14:00, the late shift's: not this one
]
CONFS = [conf("a1", "2001", at(9), 600), conf("t1", "2001", at(11), 900, wc="TEST-01")]
IDEAL = {"ASSY-01": None, "TEST-01": Decimal(20), "PACK-01": None}


def test_machine_figures_stand_in_by_precedence_and_oee_by_hand() -> None:
    facts = machine_facts([r.model_dump() for r in ROLLUPS], EARLY)
    assert facts.rollups == 6
    assert facts.ideal_cycle_s == {"ASSY-01": Decimal(30), "TEST-01": Decimal(15), "PACK-01": Decimal(100)}
    s = summarize(plant=PLANT, timezone="Europe/Berlin", window=EARLY, ideal_cycle_times=IDEAL, confirmations=CONFS,
                  downtimes=[], machines=facts)
    assy, pack, test = s.work_centers
    planned = Fraction(27000)  # 8 h minus the 30 min break, no downtime: run = planned
    # ASSY-01: 600 confirmed, ideal 30 s from the machine -> 18000 s of 27000.
    assert (assy.ideal_cycle_time_from, assy.counts_from) == ("machine", None)
    assert (assy.oee.ideal_cycle_time_s, assy.oee.good_count, assy.oee.total_count) == (30, 600, 600)
    assert (assy.oee.availability, assy.oee.performance, assy.oee.quality) == (1, q(Fraction(18000) / planned), 1)
    # TEST-01: the plant file's 20 s, 900 confirmed -> 18000 s of 27000.
    assert (test.ideal_cycle_time_from, test.counts_from, test.oee.ideal_cycle_time_s) == (None, None, 20)
    assert test.oee.performance == q(Fraction(18000) / planned)
    # PACK-01: the machine's counters and cycle: 100 x 100 s = 10000 s of 27000, quality 90/100.
    assert (pack.ideal_cycle_time_from, pack.counts_from) == ("machine", "machine")
    assert (pack.oee.good_count, pack.oee.total_count, pack.orders, pack.operations) == (90, 100, [], [])
    assert pack.oee.performance == q(Fraction(10000) / planned) and pack.oee.quality == q(Fraction(9, 10))
    assert pack.oee.oee == q(Fraction(10000) / planned * Fraction(9, 10)) == Decimal("0.333333")
    # The plant: every work center timed, so performance over all three; quality over all counts.
    assert s.oee.performance == q(Fraction(18000 + 18000 + 10000) / (3 * planned))
    assert s.oee.quality == q(Fraction(600 + 900 + 90, 600 + 900 + 100))
    assert s.sources == {"confirmations": 2, "downtimes": 0, "rollups": 6}
    # Without machine figures the document keeps its old bytes (no new keys): same content hash as before.
    plain = summarize(plant=PLANT, timezone="Europe/Berlin", window=EARLY, ideal_cycle_times=IDEAL,
                      confirmations=CONFS, downtimes=[])
    body = json.loads(plain.canonical_json())
    assert all("counts_from" not in wc and "ideal_cycle_time_from" not in wc for wc in body["work_centers"])
    assert "in_progress" not in body and "rollups" not in body["sources"]


async def test_shift_summary_reads_the_telemetry_archive(tmp_path: Path) -> None:
    exports = tmp_path / "exports"
    archive = TelemetryArchive(lambda plant: exports / plant / "telemetry")  # where the gateway puts them
    stored = archive.store_sync(PLANT, "edge-3400", ROLLUPS)
    assert stored.stored == len(ROLLUPS)
    assert len(read_rollups(exports / PLANT / "telemetry", EARLY.start, EARLY.end)) == len(ROLLUPS)
    db = await Database(sqlite_url(tmp_path / "store.db")).init()
    for c in CONFS:
        await store_event(Inbox(db), PLANT, {
            "event_id": c.event_id, "event_type": "operation_confirmed", "source": "mes-t", "plant": PLANT,
            "order": c.order, "operation": c.operation, "work_center": c.work_center,
            "occurred_at": c.at.isoformat(), "yield_qty": {"quantity": str(c.yield_qty), "uom": "H87"}})
    cfg = PlantConfig.model_validate({
        "plant": PLANT, "erp": {"kind": "reference"}, **CAL.model_dump(mode="json"),
        "working_days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
        "work_centers": [{"code": code, "ideal_cycle_time_s": str(v) if v else None} for code, v in IDEAL.items()]})
    result = await ActivityEnvironment().run(BatchActivities({PLANT: cfg}, db, exports).shift_summary,
                                             ShiftSummaryJob(plant=PLANT, shift="early", day=EARLY.plant_day))
    await db.close()
    companion = json.loads(Path(next(p for p in result.written if p.endswith(".json"))).read_text())
    centers = {wc["work_center"]: wc for wc in companion["summary"]["work_centers"]}
    assert centers["PACK-01"]["counts_from"] == "machine" and centers["ASSY-01"]["ideal_cycle_time_from"] == "machine"
    assert companion["oee"]["work_centers"]["PACK-01"]["oee"] == "0.333333"
    assert companion["summary"]["sources"]["rollups"] == 6
