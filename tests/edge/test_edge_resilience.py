"""The OPC UA server restarting under the agent, and a Basic256Sha256 + username endpoint."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from plantbridge.edge import EdgeAgent
from plantbridge_devtools.simulators.machines import MachineSimulator, MachineSpec

from .conftest import Receiver, connected, free_port, wait_for

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


async def test_basic256sha256_with_username(
    tmp_path: Path, receiver: Receiver, make_agent: MakeAgent, monkeypatch: pytest.MonkeyPatch
) -> None:
    secure = MachineSimulator(
        f"opc.tcp://127.0.0.1:{free_port()}/plantbridge/",
        [MachineSpec("M01", work_center="ASSY-01")],
        security="basic256sha256",
        cert_dir=tmp_path / "server",
        users={"edge": "s3cret"},
    )
    await secure.start()
    monkeypatch.setenv("EDGE_OPC_USER", "edge")
    monkeypatch.setenv("EDGE_OPC_PASSWORD", "s3cret")
    endpoint = {
        "sim": {
            "url": secure.endpoint,
            "security": "basic256sha256",
            "mode": "sign_and_encrypt",
            "client_cert": str(tmp_path / "edge" / "client_cert.der"),
            "client_key": str(tmp_path / "edge" / "client_key.pem"),
            "username_env": "EDGE_OPC_USER",
            "password_env": "EDGE_OPC_PASSWORD",
            "publishing_interval_ms": 50,
        }
    }
    try:
        await secure.set_order("M01", "1004190", "0010")
        await secure.run("M01")
        agent = make_agent(secure.endpoint, receiver.url, ["M01"], endpoints=endpoint)
        await agent.start()
        try:
            await connected(agent)
            assert (tmp_path / "edge" / "client_cert.der").is_file()  # generated, self-signed
            await secure.stop_machine("M01", "BREAKDOWN")
            await wait_for(lambda: receiver.events("M01"), what="an event over the secure channel")
        finally:
            await agent.stop()
        assert receiver.events("M01")[0]["reason"] == "BRK-01"

        monkeypatch.setenv("EDGE_OPC_PASSWORD", "wrong")  # refused: the agent keeps retrying, never connects
        agent = make_agent(secure.endpoint, receiver.url, ["M01"], endpoints=endpoint)
        await agent.start()
        try:
            await asyncio.sleep(1.5)
            assert not agent.sessions[0].stats.connected and agent.sessions[0].stats.last_error
        finally:
            await agent.stop()
    finally:
        await secure.stop()
