"""Load measurement (a script, not a test): N machines x 10 subscribed nodes at R Hz.

    python -m plantbridge_devtools.simulators.machines.loadtest --machines 100 --rate 10 --seconds 20

Starts the simulator as its own process (``--auto R --profile stress``: every machine changes 10+ nodes
per tick), subscribes with one asyncua client to 10 nodes per machine (the 7 process variables,
CurrentState, CurrentState/Id, LastTransition/Id) and prints one JSON line: the server's value writes/s,
its tick overruns and mean tick time, and the data-change notifications/s the client received.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import sys
import time
from typing import Any

import httpx
from asyncua.client.client import Client
from asyncua.common.node import Node

SUBSCRIBED = (
    "GoodCount",
    "ScrapCount",
    "StopReason",
    "CurrentOrder",
    "CurrentOperation",
    "CycleTimeMs",
    "Temperature",
    "MachineryItemState.CurrentState",
    "MachineryItemState.CurrentState.Id",
    "MachineryItemState.LastTransition.Id",
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Counter:
    def __init__(self) -> None:
        self.count = 0

    def datachange_notification(self, node: Node, val: Any, data: Any) -> None:
        self.count += 1


async def measure(machines: int, rate: float, seconds: float, publishing_ms: float) -> dict[str, Any]:
    endpoint = f"opc.tcp://127.0.0.1:{_free_port()}/plantbridge/"
    command = [
        sys.executable,
        "-m",
        "plantbridge_devtools.simulators.machines",
        "--endpoint",
        endpoint,
        "--generate",
        str(machines),
        "--auto",
        str(rate),
        "--profile",
        "stress",
        "--seed",
        "1",
        "--control-port",
        "0",
    ]
    proc = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"}
    )
    try:
        assert proc.stdout is not None
        started = time.perf_counter()
        line = await asyncio.wait_for(proc.stdout.readline(), timeout=120)
        ready = json.loads(line)
        build_s = time.perf_counter() - started
        ns = ready["namespace_index"]
        counter = _Counter()
        async with Client(endpoint, timeout=30) as client, httpx.AsyncClient(base_url=ready["control"]) as http:
            subscription = await client.create_subscription(publishing_ms, counter)
            nodes = [
                client.get_node(f"ns={ns};s={machine_id}.{name}")
                for machine_id in ready["machines"]
                for name in SUBSCRIBED
            ]
            for i in range(0, len(nodes), 500):
                await subscription.subscribe_data_change(nodes[i : i + 500], queuesize=1)
            await asyncio.sleep(2.0)  # warm-up: initial values
            before = (await http.get("/auto")).json()
            counter.count = 0
            t0 = time.perf_counter()
            await asyncio.sleep(seconds)
            elapsed = time.perf_counter() - t0
            received = counter.count
            after = (await http.get("/auto")).json()
        writes = after["writes"] - before["writes"]
        ticks = after["ticks"] - before["ticks"]
        return {
            "machines": machines,
            "subscribed_nodes": len(nodes),
            "rate_hz": rate,
            "seconds": round(elapsed, 1),
            "server_build_s": round(build_s, 1),
            "ticks_per_s": round(ticks / elapsed, 2),
            "server_writes_per_s": round(writes / elapsed),
            "tick_overruns": after["overruns"] - before["overruns"],
            "mean_tick_ms": after["mean_tick_ms"],
            "client_notifications_per_s": round(received / elapsed),
            "expected_notifications_per_s": round(len(nodes) * rate),
        }
    finally:
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        await proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--machines", type=int, default=100)
    parser.add_argument("--rate", type=float, action="append", help="tick rate(s) in Hz (default 10)")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--publishing-ms", type=float, default=100.0)
    args = parser.parse_args(argv)
    for rate in args.rate or [10.0]:
        result = asyncio.run(measure(args.machines, rate, args.seconds, args.publishing_ms))
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
