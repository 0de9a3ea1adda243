"""The edge agent as its own process (`python -m plantbridge.edge`), SIGKILLed (no clean stop) with a
full outbox and a batch in flight at the gateway; a restarted agent delivers everything exactly once."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import yaml

from plantbridge_devtools.simulators.machines import MachineSimulator

from .conftest import API_KEY, Receiver, edge_config_dict, wait_for
from .test_edge_forwarding import stop_run_cycles


def outbox_rows(path: Path) -> dict[str, str]:
    """event_id -> status, read beside the running agent (WAL: readers do not block it)."""
    if not path.exists():
        return {}
    db = sqlite3.connect(str(path), timeout=5)
    try:
        return dict(db.execute("SELECT event_id, status FROM outbox ORDER BY seq").fetchall())
    except sqlite3.OperationalError:  # the agent has not created the table yet
        return {}
    finally:
        db.close()


def spawn(config: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PLANTBRIDGE_EDGE_TEST_KEY": API_KEY}
    return subprocess.Popen([sys.executable, "-m", "plantbridge.edge", "--config", str(config)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def test_sigkilled_agent_with_full_outbox_restarts_and_delivers_exactly_once(
    sim: MachineSimulator, receiver: Receiver, tmp_path: Path
) -> None:
    await sim.set_order("M02", "1004190", "0010")
    await sim.run("M02")
    data = edge_config_dict(sim.endpoint, receiver.url, ["M02"], tmp_path)
    data["gateway"]["batch_size"] = 4  # one batch in flight at the kill, the rest still queued behind it
    config = tmp_path / "edge.yaml"
    config.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    outbox = Path(data["outbox_path"])
    await receiver.stop()  # the gateway away: the outbox fills up
    first = spawn(config)
    try:
        deadline = asyncio.get_running_loop().time() + 60
        while len(outbox_rows(outbox)) < 8:  # until the agent (subscribing meanwhile) has queued 8 events
            assert asyncio.get_running_loop().time() < deadline, "timed out waiting for 8 events in the outbox"
            await stop_run_cycles(sim, "M02", 1)
        await asyncio.sleep(0.5)
        queued = list(outbox_rows(outbox))
        receiver.mode = "hang"  # the gateway takes the first batch and never answers
        await receiver.start()
        await wait_for(lambda: receiver.events("M02"), timeout=60, what="a batch in flight at the gateway")
        first.send_signal(signal.SIGKILL)
        assert first.wait(timeout=10) == -signal.SIGKILL
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    in_flight = [e["event_id"] for e in receiver.events("M02")]
    assert set(outbox_rows(outbox).values()) == {"pending"}  # nothing answered before the kill
    receiver.mode = "ok"
    receiver.release.set()

    second = spawn(config)  # the same outbox file
    try:
        await wait_for(lambda: set(outbox_rows(outbox).values()) <= {"accepted", "duplicate"}, timeout=60,
                       what="the outbox drained after the restart")
    finally:
        second.send_signal(signal.SIGTERM)
        try:
            second.wait(timeout=15)
        except subprocess.TimeoutExpired:
            second.kill()
            second.wait()
    final = outbox_rows(outbox)
    delivered = [e["event_id"] for e in receiver.events("M02")]
    assert delivered[: len(queued)] == queued  # every queued event, in order, none lost
    assert len(delivered) == len(set(delivered))  # taken once each by the gateway
    assert {final[eid] for eid in in_flight} == {"duplicate"}  # the in-flight batch was re-sent: duplicate
    assert len(in_flight) == 4 and {final[eid] for eid in queued if eid not in in_flight} == {"accepted"}
