"""Store-and-forward: the gateway (a real HTTP receiver, see conftest) down, answering 503, or losing
its answer; the agent restarted with a non-empty outbox."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from plantbridge.edge import EdgeAgent
from plantbridge_devtools.simulators.machines import MachineSimulator

from .conftest import Receiver, connected, wait_for

MakeAgent = Callable[..., EdgeAgent]


async def stop_run_cycles(sim: MachineSimulator, machine: str, cycles: int) -> None:
    for i in range(cycles):
        await sim.stop_machine(machine, "MAINT" if i % 2 else "BREAKDOWN")
        await asyncio.sleep(0.12)
        await sim.run(machine)
        await asyncio.sleep(0.12)


def assert_in_order(receiver: Receiver, machine: str) -> None:
    events = receiver.events(machine)
    ids = [e["event_id"] for e in events]
    assert len(ids) == len(set(ids))
    kinds = [e["event_type"] for e in events]
    assert kinds == ["downtime_started", "downtime_ended"] * (len(kinds) // 2), kinds
    seqs = [int(i.rsplit("-", 1)[1]) for i in ids]
    assert seqs == sorted(seqs)


async def test_gateway_down_then_503_buffered_and_delivered_in_order(
    sim: MachineSimulator, receiver: Receiver, make_agent: MakeAgent
) -> None:
    await sim.set_order("M03", "1004170", "0010")
    await sim.run("M03")
    agent = make_agent(sim.endpoint, receiver.url, ["M03"])
    await agent.start()
    try:
        await connected(agent)
        await receiver.stop()  # gateway down: connection refused
        await stop_run_cycles(sim, "M03", 3)
        await wait_for(lambda: agent.stats()["queued"] == 6, what="6 events in the outbox")
        receiver.mode = "503"  # gateway up again, but the saga unavailable
        await receiver.start()
        await stop_run_cycles(sim, "M03", 2)
        await wait_for(lambda: agent.stats()["queued"] == 10, what="10 events in the outbox")
        await wait_for(lambda: receiver.posts >= 2, what="retries against the 503")
        assert receiver.events("M03") == []
        receiver.mode = "ok"
        await wait_for(lambda: agent.stats()["queued"] == 0, what="outbox drained")
        stats = agent.stats()
    finally:
        await agent.stop()
    assert len(receiver.events("M03")) == 10
    assert_in_order(receiver, "M03")
    assert receiver.duplicates == 0 and stats["sent"] == 10 and stats["gateway_failures"] >= 2


async def test_lost_answer_resent_with_same_id_gets_duplicate(
    sim: MachineSimulator, receiver: Receiver, make_agent: MakeAgent
) -> None:
    await sim.set_order("M03", "1004171", "0010")
    await sim.run("M03")
    agent = make_agent(sim.endpoint, receiver.url, ["M03"])
    await agent.start()
    try:
        await connected(agent)
        receiver.mode = "accept_then_503"  # the gateway took the events, the answer got lost
        await stop_run_cycles(sim, "M03", 1)
        await wait_for(lambda: len(receiver.events("M03")) == 2, what="events taken")
        await asyncio.sleep(0.3)
        receiver.mode = "ok"
        await wait_for(lambda: agent.stats()["queued"] == 0, what="outbox drained")
        assert agent.outbox is not None
        statuses = {row["event_id"]: row["status"] for row in agent.outbox.all_events()}
    finally:
        await agent.stop()
    taken = [e["event_id"] for e in receiver.events("M03")]
    assert len(taken) == 2 and receiver.duplicates >= 2
    assert {statuses[i] for i in taken} == {"duplicate"}  # the stored, final answer


async def test_restart_with_non_empty_outbox_same_ids_delivered_once(
    sim: MachineSimulator, receiver: Receiver, make_agent: MakeAgent
) -> None:
    await sim.set_order("M03", "1004172", "0010")
    await sim.run("M03")
    await receiver.stop()
    first = make_agent(sim.endpoint, receiver.url, ["M03"])
    await first.start()
    try:
        await connected(first)
        await stop_run_cycles(sim, "M03", 2)
        await sim.stop_machine("M03", "MAINT")  # a downtime still open when the agent goes down
        await wait_for(lambda: first.stats()["queued"] == 5, what="5 events queued")
        assert first.outbox is not None
        queued_ids = [row["event_id"] for row in first.outbox.all_events() if row["status"] == "pending"]
    finally:
        await first.stop()

    await receiver.start()
    second = make_agent(sim.endpoint, receiver.url, ["M03"])  # same outbox file
    await second.start()
    try:
        await connected(second)
        await wait_for(lambda: len(receiver.events("M03")) == 5, what="the queued events delivered")
        await sim.run("M03")  # the open downtime ends after the restart: its end event, next sequence
        await wait_for(lambda: len(receiver.events("M03")) == 6, what="downtime end after restart")
        await asyncio.sleep(0.3)
    finally:
        await second.stop()
    delivered = [e["event_id"] for e in receiver.events("M03")]
    assert delivered[:5] == queued_ids  # the very same ids, in order, once
    assert receiver.duplicates == 0
    assert_in_order(receiver, "M03")
    events = receiver.events("M03")
    assert events[-1]["event_type"] == "downtime_ended" and events[-1]["reason"] == "MAINT-01"
