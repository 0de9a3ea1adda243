"""Downtime and count events, and telemetry rollups, against the real OPC UA machine simulator."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from datetime import datetime

from plantbridge.edge import EdgeAgent
from plantbridge.edge.rollups import read_rollups
from plantbridge_devtools.simulators.machines import MachineSimulator

from .conftest import Receiver, connected, settle, wait_for

MakeAgent = Callable[..., EdgeAgent]


async def test_downtime_reasons_and_duration(sim: MachineSimulator, receiver: Receiver, make_agent: MakeAgent) -> None:
    await sim.set_order("M01", "1004157", "0010")
    await sim.set_order("P01", "1004160", "0020")
    await sim.run("M01")
    await sim.run("P01")
    agent = make_agent(sim.endpoint, receiver.url, ["M01", "P01"], min_downtime_s=0.3)
    await agent.start()
    try:
        await connected(agent)
        await sim.stop_machine("M01", "MAINT")
        await asyncio.sleep(1.0)
        await sim.run("M01")
        # a stop shorter than min_downtime_s is not reported
        await sim.stop_machine("M01", "NO_MATERIAL")
        await asyncio.sleep(0.05)
        await sim.run("M01")
        # a PackML machine: BREAKDOWN -> Aborted
        await sim.stop_machine("P01", "BREAKDOWN")
        await asyncio.sleep(0.6)
        await sim.run("P01")
        await wait_for(lambda: len(receiver.events()) >= 4, what="4 downtime events")
        await settle(agent, 0.5)
    finally:
        await agent.stop()

    started, ended = receiver.events("M01", "downtime_started"), receiver.events("M01", "downtime_ended")
    assert len(started) == 1 and len(ended) == 1, receiver.events()
    assert started[0]["reason"] == ended[0]["reason"] == "MAINT-01"
    for event in (started[0], ended[0]):
        assert event["work_center"] == "ASSY-01" and event["equipment"] == "M01"
        assert event["order"] == "1004157" and event["plant"] == "1000" and event["source"] == "edge-1000"
    duration = float(ended[0]["description"].removeprefix("duration_s="))
    assert 1 <= duration <= 2
    occurred = datetime.fromisoformat(ended[0]["occurred_at"]) - datetime.fromisoformat(started[0]["occurred_at"])
    assert 0.9 < occurred.total_seconds() < 1.6  # source timestamps of the two changes
    assert agent.stats()["short_stops_ignored"] >= 1

    packml = receiver.events("P01")
    assert [e["event_type"] for e in packml] == ["downtime_started", "downtime_ended"]
    assert packml[0]["reason"] == "BRK-01" and packml[0]["work_center"] == "PACK-01"


async def test_counts_across_reset_and_wraparound_one_confirmation(
    sim: MachineSimulator, receiver: Receiver, make_agent: MakeAgent
) -> None:
    await sim.set_counter("M02", good=2**32 - 3, scrap=0)
    await sim.set_order("M02", "1004157", "0010")
    await sim.run("M02")
    await sim.set_order("P01", "1004161", "0010")
    await sim.reset_counters("P01")
    await sim.run("P01")
    agent = make_agent(sim.endpoint, receiver.url, ["M02", "P01"])
    await agent.start()
    try:
        await connected(agent)
        for step in (
            lambda: sim.count("M02", good=5),  # wraps: 2**32-3 -> 2
            lambda: sim.count("M02", scrap=2),
            lambda: sim.reset_counters("M02"),  # reset: 0/0, nothing counted
            lambda: sim.count("M02", good=3),
            lambda: sim.count("M02", good=1, scrap=1),
            lambda: sim.count("P01", good=2),
        ):
            await step()
            await asyncio.sleep(0.12)
        assert receiver.events("M02") == []  # counts are aggregated, never one event per piece
        await sim.set_order("M02", "1004158", "0010")  # order change -> one confirmation
        await sim.set_state("P01", 17)  # PackML Complete: the operation ended -> final
        await wait_for(lambda: receiver.events("M02") and receiver.events("P01"), what="confirmations")
        await settle(agent, 0.5)
    finally:
        await agent.stop()

    confirmations = receiver.events("M02")
    assert len(confirmations) == 1, confirmations
    event = confirmations[0]
    assert event["event_type"] == "operation_confirmed"
    assert (event["order"], event["operation"], event["work_center"]) == ("1004157", "0010", "ASSY-02")
    assert event["yield_qty"] == {"quantity": "9", "uom": "H87"}
    assert event["scrap_qty"] == {"quantity": "3", "uom": "H87"}
    assert event["final"] is False
    final = receiver.events("P01")
    assert len(final) == 1 and final[0]["final"] is True and final[0]["yield_qty"]["quantity"] == "2"


async def test_rollups_written_per_interval_and_never_sent(
    sim: MachineSimulator, receiver: Receiver, make_agent: MakeAgent
) -> None:
    await sim.run("M05")
    agent = make_agent(sim.endpoint, receiver.url, ["M05"], rollup_interval_s=1.0)
    await agent.start()
    try:
        await connected(agent)
        for i in range(8):
            await sim.count("M05", good=2, scrap=1 if i % 4 == 0 else 0, cycle_time_ms=900.0 + 20 * i)
            await sim.set_temperature("M05", 40.0 + i)
            await asyncio.sleep(0.25)
        await wait_for(lambda: agent.rollups_written >= 3, what="three rollup buckets")
        outbox = agent.config.outbox_path
    finally:
        await agent.stop()

    db = sqlite3.connect(outbox)
    rows = read_rollups(db, "M05")
    db.close()
    assert len(rows) >= 2
    assert sum(r["good"] for r in rows) == 16 and sum(r["scrap"] for r in rows) == 2
    assert all(r["down_s"] == 0 and r["stopped_s"] == 0 for r in rows)
    for row in rows[1:-1]:  # a whole bucket (not the first or the last, partial one) is one interval of running
        assert 0.8 <= row["running_s"] <= 1.2, row
    cycles = [r for r in rows if r["cycle_n"]]
    assert min(r["cycle_min"] for r in cycles) >= 900 and max(r["cycle_max"] for r in cycles) <= 1040
    temps = [r["telemetry"]["temperature"] for r in rows if "temperature" in r["telemetry"]]
    assert temps and max(t["max"] for t in temps) == 47.0
    # telemetry never becomes a plant event: nothing was sent for this machine, nothing queued
    assert receiver.events("M05") == [] and receiver.posts == 0
    assert agent.stats()["events_emitted"] == 0
