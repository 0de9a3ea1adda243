"""Counts and CPU of the order saga per plant event, from real histories of a real Temporal server.

`python -m plantbridge_devtools.saga_profile counts --orders 20` starts an embedded Temporal server and
a worker *process* (in-memory reference systems, SQLite store), runs the benchmark's event mix (the
aggregating plant policy) through `submit_event` into each order until posted, then reads every
order's history (`fetch_history`) and reports per plant event: workflow tasks, activities (by type),
history events and payload bytes, and the worker's CPU ms (from /proc, so only the worker process).
`memory --low 500 --high 2000` starts orders and waits until each is cached (release steps done),
then reports the worker's RSS slope per cached saga. `big --components 3000` runs one order of that
many components through release, one final confirmation per operation and completion, and reports
its history size and largest payload. Counts do not depend on the machine's load; CPU ms a little.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType

from plantbridge.canonical import PlantEvent, PlantPolicy, ProductionOrder
from plantbridge.client import SagaBusy, connect, start_order, submit_event
from plantbridge_devtools.bench import demo_mix
from plantbridge_devtools.temporal_server import DevServer, free_port

TASK_QUEUE = "plantbridge-profile"
PLANT = "1000"


def policy(**overrides: Any) -> PlantPolicy:
    values: dict[str, Any] = {
        "task_queue": TASK_QUEUE, "partial_confirmations": "aggregate", "consumption": "aggregate",
        "aggregate_every": timedelta(minutes=10), "ack_wait": timedelta(seconds=2),
    }
    values.update(overrides)
    return PlantPolicy(**values)


def order(number: str, operations: int = 2, components: int = 1) -> ProductionOrder:
    ops = [{"number": f"{10 * (i + 1):04d}", "work_center": ("ASSY-01", "TEST-01")[i % 2],
            "planned_qty": {"quantity": "1000", "uom": "H87"}} for i in range(operations)]
    comps = [{"item": f"{(i + 1) % 10000:04d}", "material": f"RM-{i:05d}",
              "quantity": {"quantity": "1000", "uom": "H87"}, "operation": ops[i % operations]["number"],
              "backflush": True, "storage_location": "0001"} for i in range(components)]
    return ProductionOrder.model_validate({
        "number": number, "plant": PLANT, "material": "FG-BENCH", "quantity": {"quantity": "1000", "uom": "H87"},
        "overdelivery_tolerance_pct": "10", "operations": ops, "components": comps,
    })


def mix(number: str, m: int = 20) -> list[PlantEvent]:
    """The benchmark's mix (`bench.demo_mix`): per operation a start, partial confirmations, a final one; a
    downtime and a consumption on the first."""
    return [PlantEvent.model_validate(body) for body in demo_mix(number, m)]


def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def history_counts(client: Any, workflow_id: str) -> dict[str, Any]:
    """Summed over every run of the workflow (continue-as-new)."""
    events: list[Any] = []
    runs = 0
    async for wf in client.list_workflows(f"WorkflowId = '{workflow_id}'"):
        history = await client.get_workflow_handle(workflow_id, run_id=wf.run_id).fetch_history()
        events.extend(history.events)
        runs += 1
    tasks = activities = 0
    types: Counter[str] = Counter()
    largest = 0
    largest_what = ""
    inputs: list[int] = []
    payload_bytes = 0
    for ev in events:
        if ev.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            tasks += 1
        if ev.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            activities += 1
            types[ev.activity_task_scheduled_event_attributes.activity_type.name] += 1
            inputs.append(_payload_size(ev.activity_task_scheduled_event_attributes))
        for desc, field in ev.ListFields():
            if not desc.name.endswith("_attributes"):
                continue
            size = _payload_size(field)
            payload_bytes += size
            if size > largest:
                largest, largest_what = size, f"{EventType.Name(ev.event_type)} {_name(field)}"
    return {"largest_activity_input": max(inputs, default=0),
            "mean_activity_input": round(sum(inputs) / len(inputs)) if inputs else 0,
            "runs": runs, "events": len(events), "tasks": tasks, "activities": activities, "types": types,
            "payload_bytes": payload_bytes, "largest_payload": largest, "largest_what": largest_what,
            "history_bytes": sum(ev.ByteSize() for ev in events)}


def _name(attrs: Any) -> str:
    for attr in ("activity_type", "workflow_type"):
        if attr in attrs.DESCRIPTOR.fields_by_name and getattr(attrs, attr).name:
            return str(getattr(attrs, attr).name)
    return ""


def _payload_size(msg: Any) -> int:
    """Bytes of every Payload inside a history event's attributes (inputs, results, update args...)."""
    if msg.DESCRIPTOR.full_name == "temporal.api.common.v1.Payload":
        return len(msg.data)
    total = 0
    for desc, value in msg.ListFields():
        if desc.message_type is None:
            continue
        if hasattr(value, "ListFields"):
            total += _payload_size(value)
        elif hasattr(value, "values") and callable(value.values):  # a map
            total += sum(_payload_size(v) for v in value.values() if hasattr(v, "ListFields"))
        else:  # a repeated field
            total += sum(_payload_size(v) for v in value)
    return total


def spawn_worker(address: str, folder: Path, sandbox: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    log = open(folder / "worker.log", "ab")  # lives as long as the worker
    cmd = [sys.executable, "-m", "plantbridge_devtools.saga_profile", "worker", "--address", address,
           "--store", str(folder / "store.db"), "--sandbox", sandbox]
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)


async def run_worker(address: str, store: str, cached: int, sandbox: str) -> None:
    from temporalio.worker import UnsandboxedWorkflowRunner
    from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

    from plantbridge.connectors.memory import MemoryRegistry, MemoryStore
    from plantbridge.store import Database, sqlite_url
    from plantbridge.workers.settings import Settings
    from plantbridge.workers.worker import build_worker

    client = await connect(address)
    db = await Database(sqlite_url(Path(store))).init()
    runner: dict[str, Any] = ({"workflow_runner": SandboxedWorkflowRunner()} if sandbox == "default" else
                              {"workflow_runner": UnsandboxedWorkflowRunner()} if sandbox == "off" else {})
    sizing = Settings.from_env()  # PLANTBRIDGE_MAX_CONCURRENT_* and *_POLLERS, to measure the worker's sizing
    worker = build_worker(client, TASK_QUEUE, MemoryRegistry(MemoryStore()), db, max_cached_workflows=cached,
                          max_concurrent_activities=sizing.max_concurrent_activities,
                          max_concurrent_workflow_tasks=sizing.max_concurrent_workflow_tasks,
                          workflow_task_pollers=sizing.workflow_task_pollers,
                          activity_task_pollers=sizing.activity_task_pollers, **runner)
    async with worker:
        print("worker ready", flush=True)
        await asyncio.Event().wait()


async def _done(client: Any, wid: str) -> None:
    await client.get_workflow_handle(wid).result()


async def counts(args: argparse.Namespace, client: Any, wpid: int) -> dict[str, Any]:
    numbers = [f"{args.prefix}{i:05d}" for i in range(args.orders)]
    handles = await asyncio.gather(*(start_order(client, order(n), policy()) for n in numbers))
    # Release steps first: the per-event numbers are of the events alone.
    await asyncio.sleep(2)
    sem = asyncio.Semaphore(args.concurrency)
    acks: Counter[str] = Counter()
    spy = None
    if args.profile:  # py-spy (optional), sampling the worker while the events flow
        spy = subprocess.Popen(["py-spy", "record", "--pid", str(wpid), "--format", "raw", "--threads",
                                "--nonblocking", "-o", args.profile], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    cpu0, t0 = proc_cpu_s(wpid), time.perf_counter()

    async def one(n: str) -> None:
        for ev in mix(n, args.events):
            async with sem:
                ack = await submit_event(client, ev, ack_wait=timedelta(seconds=30))
                acks[f"{ack.status}/{ack.erp.status if ack.erp else None}"] += 1

    await asyncio.gather(*(one(n) for n in numbers))
    await asyncio.gather(*(h.result() for h in handles))
    cpu = proc_cpu_s(wpid) - cpu0
    wall = time.perf_counter() - t0
    if spy is not None:
        spy.send_signal(2)
        spy.wait()
    per = [await history_counts(client, h.id) for h in handles]
    events = sum(len(mix(n, args.events)) for n in numbers)
    types: Counter[str] = Counter()
    for p in per:
        types.update(p["types"])
    return {
        "orders": len(numbers), "plant_events": events, "acks": dict(acks),
        "per_event": {
            "workflow_tasks": round(sum(p["tasks"] for p in per) / events, 3),
            "activities": round(sum(p["activities"] for p in per) / events, 3),
            "history_events": round(sum(p["events"] for p in per) / events, 2),
            "payload_bytes": round(sum(p["payload_bytes"] for p in per) / events),
            "worker_cpu_ms": round(1000 * cpu / events, 2),
        },
        "per_order": {"workflow_tasks": sum(p["tasks"] for p in per) / len(per),
                      "activities": sum(p["activities"] for p in per) / len(per),
                      "history_events": sum(p["events"] for p in per) / len(per),
                      "history_bytes": sum(p["history_bytes"] for p in per) / len(per)},
        "activities_by_type_per_order": {k: v / len(per) for k, v in sorted(types.items())},
        "largest_payload": max(p["largest_payload"] for p in per),
        "wall_s": round(wall, 1),
    }


async def memory(args: argparse.Namespace, client: Any, wpid: int) -> dict[str, Any]:
    points: list[tuple[int, int]] = [(0, proc_rss_kib(wpid))]
    started = 0
    sem = asyncio.Semaphore(32)
    for target in (args.low, args.high):
        async def one(i: int) -> None:
            async with sem:
                n = f"{args.prefix}{i:05d}"
                await start_order(client, order(n, args.operations, args.components), policy())

        await asyncio.gather(*(one(i) for i in range(started, target)))
        started = target
        await settle(wpid)  # released, dispatched, staged: every saga cached and waiting
        points.append((target, proc_rss_kib(wpid)))
    (n0, r0), (n1, r1) = points[1], points[2]
    return {"rss_mib": {str(n): round(r / 1024, 1) for n, r in points},
            "kib_per_cached_saga": round((r1 - r0) / (n1 - n0), 1)}


async def settle(pid: int, quiet: float = 0.05) -> None:
    """Until the worker uses less than `quiet` of a core over 2 s (its work is done)."""
    while True:
        before = proc_cpu_s(pid)
        await asyncio.sleep(2)
        if proc_cpu_s(pid) - before < 2 * quiet:
            return


async def big(args: argparse.Namespace, client: Any, wpid: int) -> dict[str, Any]:
    number = f"{args.prefix}00001"
    o = order(number, args.operations, args.components)
    handle = await start_order(client, o, policy(partial_confirmations="immediate", consumption="immediate",
                                                 activity_timeout=timedelta(seconds=60)))
    now = datetime.now(UTC).isoformat()
    for i, op in enumerate(o.operations):
        ev = PlantEvent.model_validate({"event_id": f"big-{i}", "event_type": "operation_confirmed", "source": "mes-1",
                                        "plant": PLANT, "order": number, "occurred_at": now,
                                        "operation": op.number, "final": True,
                                        "yield_qty": {"quantity": "1000", "uom": "H87"}})
        while True:
            try:
                await submit_event(client, ev, ack_wait=timedelta(seconds=60))
                break
            except SagaBusy:  # rolling over its history (continue-as-new): again
                await asyncio.sleep(0.5)
    await handle.result()
    c = await history_counts(client, handle.id)
    return {"components": args.components, "operations": args.operations, "runs": c["runs"],
            "history_events": c["events"],
            "history_bytes": c["history_bytes"], "largest_payload": c["largest_payload"],
            "largest_activity_input": c["largest_activity_input"], "mean_activity_input": c["mean_activity_input"],
            "largest_what": c["largest_what"], "activities": dict(c["types"])}


async def main(args: argparse.Namespace) -> None:
    if args.mode == "worker":
        await run_worker(args.address, args.store, args.cached, args.sandbox)
        return
    folder = Path(tempfile.mkdtemp(prefix="saga-profile-"))
    server = DevServer(db_file=folder / "temporal.db", port=free_port(), headless=True,
                       log_file=folder / "temporal.log")
    await server.start()
    worker = spawn_worker(server.address, folder, args.sandbox)
    try:
        client = await connect(server.address)
        for _ in range(300):
            if "worker ready" in (folder / "worker.log").read_text():
                break
            if worker.poll() is not None:
                raise SystemExit(f"the worker exited: see {folder / 'worker.log'}")
            await asyncio.sleep(0.2)
        mode = {"counts": counts, "memory": memory, "big": big}[args.mode]
        result = await mode(args, client, worker.pid)
        print(json.dumps(result, indent=1, default=str))
    finally:
        worker.terminate()
        worker.wait()
        server.stop()


def cli() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("mode", choices=["counts", "memory", "big", "worker"])
    p.add_argument("--orders", type=int, default=20)
    p.add_argument("--events", type=int, default=20)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--low", type=int, default=500)
    p.add_argument("--high", type=int, default=2000)
    p.add_argument("--operations", type=int, default=2)
    p.add_argument("--components", type=int, default=1)
    p.add_argument("--prefix", default="77")
    p.add_argument("--address", default="")
    p.add_argument("--store", default="")
    p.add_argument("--cached", type=int, default=2500)
    p.add_argument("--sandbox", choices=["plantbridge", "default", "off"], default="plantbridge",
                   help="the worker's sandbox: plantbridge's runner, the SDK's default sandbox, or none")
    p.add_argument("--profile", default="", help="py-spy raw output file (counts)")
    asyncio.run(main(p.parse_args()))


if __name__ == "__main__":
    cli()
