"""The OPC UA server restarting under the agent (security: test_edge_opcua_security.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from plantbridge.edge import EdgeAgent
from plantbridge_devtools.simulators.machines import MachineSimulator

from .conftest import Receiver, connected, wait_for

MakeAgent = Callable[..., EdgeAgent]


async def test_server_restart_resubscribes_without_spurious_deltas(
    sim: MachineSimulator, receiver: Receiver, make_agent: MakeAgent
) -> None:
    await sim.set_order("M04", "1004180", "0010")
    await sim.set_counter("M04", good=10, scrap=1)
    await sim.run("M04")
    agent = make_agent(sim.endpoint, receiver.url, ["M04"])
    await agent.start()
    try:
        await connected(agent)
        await sim.count("M04", good=4)
        await asyncio.sleep(0.2)
        restart = asyncio.create_task(sim.restart(down_seconds=0.6))
        await asyncio.sleep(0.2)
        await sim.count("M04", good=2)  # the machine counts on while its server is down
        await restart
        await wait_for(lambda: agent.stats()["reconnects"] >= 1, timeout=15, what="a reconnect")
        await connected(agent)
        await asyncio.sleep(0.3)
        assert receiver.events("M04") == []  # no spurious events from the re-read values
        assert agent.trackers["M04"].acc_good == 6 and agent.trackers["M04"].acc_scrap == 0
        await sim.count("M04", good=3)
        await sim.stop_machine("M04", "MAINT")
        await asyncio.sleep(0.3)
        await sim.run("M04")
        await asyncio.sleep(0.2)
        await sim.set_order("M04", "1004181", "0010")
        await wait_for(lambda: len(receiver.events("M04")) == 3, what="events after the restart")
    finally:
        await agent.stop()
    kinds = [e["event_type"] for e in receiver.events("M04")]
    assert kinds == ["downtime_started", "downtime_ended", "operation_confirmed"]
    confirmation = receiver.events("M04", "operation_confirmed")[0]
    assert confirmation["yield_qty"]["quantity"] == "9" and confirmation["scrap_qty"]["quantity"] == "0"
