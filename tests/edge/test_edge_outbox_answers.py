"""The outbox against a gateway (a real HTTP receiver, see conftest) whose 2xx says nothing usable about
an event, or that refuses one event per event: not an acceptance; refused N times -> dead, listed and
re-queued with `plantbridge edge-outbox`."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from plantbridge.edge import EdgeAgent
from plantbridge.workers.cli import app
from plantbridge_devtools.simulators.machines import MachineSimulator

from .conftest import Receiver, connected, wait_for
from .test_edge_forwarding import stop_run_cycles

MakeAgent = Callable[..., EdgeAgent]


def statuses(agent: EdgeAgent) -> dict[str, str]:
    assert agent.outbox is not None
    return {row["event_id"]: row["status"] for row in agent.outbox.all_events()}


@pytest.mark.parametrize("mode", ["malformed", "partial"])
async def test_2xx_without_an_answer_for_an_event_is_not_an_acceptance(
    sim: MachineSimulator, receiver: Receiver, make_agent: MakeAgent, mode: str
) -> None:
    await sim.set_order("M04", "1004180", "0010")
    await sim.run("M04")
    agent = make_agent(sim.endpoint, receiver.url, ["M04"])
    await agent.start()
    try:
        await connected(agent)
        await receiver.stop()
        await stop_run_cycles(sim, "M04", 2)
        await wait_for(lambda: agent.stats()["queued"] == 4, what="4 events queued")
        receiver.mode = mode  # the gateway takes the events, its 2xx body does not answer (all of) them
        await receiver.start()
        await wait_for(lambda: len(receiver.events("M04")) == 4, what="4 events taken by the gateway")
        if mode == "malformed":
            await wait_for(lambda: receiver.posts >= 2, what="the unanswered events sent again")
            assert set(statuses(agent).values()) == {"pending"}  # nothing counted as accepted
            receiver.mode = "ok"
        # partial: one event answered per POST, the others sent again each time
        await wait_for(lambda: agent.stats()["queued"] == 0, what="outbox drained once answers are usable")
        final, stats = statuses(agent), agent.stats()
    finally:
        await agent.stop()
    taken = [e["event_id"] for e in receiver.events("M04")]
    assert len(taken) == len(set(taken)) == 4  # each taken once by the gateway (resends: duplicate)
    assert stats["unanswered"] >= (4 if mode == "malformed" else 6)
    assert final[taken[0]] == ("duplicate" if mode == "malformed" else "accepted")
    assert {final[eid] for eid in taken[1:]} == {"duplicate"}


async def test_event_refused_n_times_goes_dead_then_requeued_by_the_cli(
    sim: MachineSimulator, receiver: Receiver, make_agent: MakeAgent, tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await sim.set_order("M05", "1004181", "0010")
    await sim.run("M05")
    agent = make_agent(sim.endpoint, receiver.url, ["M05"])
    agent.config.gateway.max_refusals = 3
    config = tmp_path / "edge.yaml"
    await agent.start()
    try:
        await connected(agent)
        await receiver.stop()  # collect two events, then refuse the first one per event
        await stop_run_cycles(sim, "M05", 1)
        await wait_for(lambda: agent.stats()["queued"] == 2, what="2 events queued")
        first, second = (row["event_id"] for row in agent.outbox.all_events())  # type: ignore[union-attr]
        receiver.refuse = {first}
        with caplog.at_level(logging.ERROR, logger="plantbridge.edge.outbox"):
            await receiver.start()
            await wait_for(lambda: agent.stats()["dead"] == 1, what="the refused event dead")
        stats = agent.stats()
        assert stats["queued"] == 0 and stats["moved_to_dead"] == 1 and stats["refused"] == 3
        assert receiver.refusals[first] == 3 and [e["event_id"] for e in receiver.events("M05")] == [second]
        assert any(first in r.getMessage() and "DEAD" in r.getMessage() for r in caplog.records)
        posts = receiver.posts
        await asyncio.sleep(1.0)  # several backoff periods (max 0.5 s): a dead event is not sent again
        assert receiver.posts == posts and receiver.refusals[first] == 3

        runner = CliRunner()
        listed = runner.invoke(app, ["edge-outbox", "list", "--config", str(config), "--json"])
        assert listed.exit_code == 0, listed.output
        lines = [json.loads(line) for line in listed.output.splitlines()]
        assert lines[0]["counts"] == {"accepted": 1, "dead": 1}
        assert lines[1]["event_id"] == first and lines[1]["refusals"] == 3 and "conflict" in lines[1]["answer"]

        receiver.refuse = set()  # the cause fixed at the gateway
        requeued = runner.invoke(app, ["edge-outbox", "requeue", "--config", str(config), first])
        assert requeued.exit_code == 0 and "re-queued 1" in requeued.output, requeued.output
        await wait_for(lambda: statuses(agent)[first] == "accepted", what="the re-queued event delivered")
        assert agent.stats()["dead"] == 0
    finally:
        await agent.stop()
    assert [e["event_id"] for e in receiver.events("M05")] == [second, first]
