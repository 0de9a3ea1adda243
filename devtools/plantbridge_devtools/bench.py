"""`plantbridge bench`: plantbridge measured against the bare engine on the same Temporal server.

It starts its own embedded stack (Temporal dev server, a worker process with the reference systems,
the gateway process) on free ports in a temporary folder, then measures, in one run:

1. the bare engine: trivial workflows started, signalled and updated, sequential trivial activities;
2. plantbridge: N orders, M plant events each through the gateway (HTTP, `concurrency` at once) on
   the demo mix (partial and final confirmations, consumption, downtime), with the plant's posting
   policy aggregating partial confirmations and consumption: events/s, orders/s, acknowledgement
   latency, ERP calls per event, postings per order, and the latency of critical events (final
   confirmations) to their ERP posting;
3. acknowledgement latency at a steady offered rate: 100 events/s, and 40 % of the bare engine's
   update rate measured in the same run;
4. the worker's memory with many open orders;
5. the edge agent against the OPC UA machine simulator (CPU share, event lag).

Per plant event it also reports the CPU milliseconds each process (worker, gateway, server) spent
while the events flowed, and, from the histories of a sample of orders (bench_history.py), workflow
tasks, activities and history events, with the largest payload and the history size per order.
`--quick` runs the same mix (orders of 20 events, 32 at once, same posting policy) with fewer orders
and shorter phases, so its ratio tracks the full run's.

Everything is measured, nothing estimated; the JSON (`--out`) holds every figure with the machine it
ran on. A benchmark, never a test: the suite checks only that it runs (`--quick`).
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import yaml
from rich.console import Console

from plantbridge.canonical import PlantPolicy, ProductionOrder
from plantbridge.canonical.plant_config import PlantConfig
from plantbridge.client import connect, start_order
from plantbridge.connectors.reference import ReferenceStore
from plantbridge.store import Database, sqlite_url
from plantbridge.store.api_keys import ApiKeys
from plantbridge_devtools.bench_engine import bench_bare_engine, percentile
from plantbridge_devtools.bench_history import history_costs
from plantbridge_devtools.bench_report import print_summary
from plantbridge_devtools.temporal_server import DevServer, free_port

BENCH_PLANT = "1000"
BENCH_PLANT_FILE = """\
plant: "1000"
name: benchmark plant
erp: {kind: reference}
work_centers: [{code: ASSY-01}, {code: TEST-01}]
policy:
  partial_confirmations: aggregate
  consumption: aggregate
  aggregate_every: PT10M
  ack_wait: PT2S
"""


@dataclass
class Sizes:
    orders: int
    events_per_order: int
    concurrency: int
    steady_seconds: float
    open_orders: int
    bare_workflows: int
    bare_signals: int
    bare_updates: int
    bare_activities: int
    edge_machines: int
    edge_seconds: float
    history_sample: int

    @classmethod
    def quick(cls) -> Sizes:
        """The full run's mix (orders of 20 events, 32 at once; bare updates at the same concurrency), smaller."""
        return cls(orders=40, events_per_order=20, concurrency=32, steady_seconds=3, open_orders=100,
                   bare_workflows=200, bare_signals=400, bare_updates=600, bare_activities=50, edge_machines=20,
                   edge_seconds=3, history_sample=5)

    @classmethod
    def full(cls) -> Sizes:
        return cls(orders=200, events_per_order=20, concurrency=32, steady_seconds=20, open_orders=2000,
                   bare_workflows=500, bare_signals=5000, bare_updates=2000, bare_activities=200, edge_machines=100,
                   edge_seconds=20, history_sample=20)


@dataclass
class Stack:
    folder: Path
    server: DevServer
    worker: subprocess.Popen[bytes]
    gateway: subprocess.Popen[bytes]
    gateway_url: str
    key: str
    store_url: str
    reference_url: str
    peaks: dict[str, int] = field(default_factory=dict)

    def cpu_seconds(self) -> dict[str, float]:
        pids = {"worker": self.worker.pid, "gateway": self.gateway.pid,
                "server": self.server.process.pid if self.server.process else 0}
        return {name: cpu_s(pid) for name, pid in pids.items()}

    def sample_rss(self) -> None:
        pids = {"worker": self.worker.pid, "gateway": self.gateway.pid,
                "server": self.server.process.pid if self.server.process else 0}
        for name, pid in pids.items():
            self.peaks[name] = max(self.peaks.get(name, 0), rss_kib(pid, "VmHWM"))

    def stop(self) -> None:
        for proc in (self.gateway, self.worker):
            if proc.poll() is None:
                proc.terminate()
        for proc in (self.gateway, self.worker):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        self.server.stop()


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def rss_kib(pid: int, field_name: str = "VmRSS") -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


async def start_stack(folder: Path, console: Console) -> Stack:
    server = await DevServer(db_file=folder / "temporal.db", port=free_port(), headless=True,
                             log_file=folder / "temporal.log").start()
    plants = folder / "plants"
    plants.mkdir()
    (plants / f"{BENCH_PLANT}.yaml").write_text(BENCH_PLANT_FILE)
    store_url, reference_url = sqlite_url(folder / "store.db"), sqlite_url(folder / "reference.db")
    db = await Database(store_url).init()
    _info, key = await ApiKeys(db).create("bench-mes", "plant-system", [BENCH_PLANT], kind="mes")
    await db.close()
    await (await ReferenceStore(reference_url).init()).close()
    port = free_port()
    env = {**os.environ, "PLANTBRIDGE_TEMPORAL_ADDRESS": server.address, "PLANTBRIDGE_STORE_URL": store_url,
           "PLANTBRIDGE_REFERENCE_URL": reference_url, "PLANTBRIDGE_PLANTS_DIR": str(plants),
           "PLANTBRIDGE_GATEWAY_PORT": str(port),
           # Throughput is measured here, rate limits are tested apart: above the default 50 events/s per
           # plant-system key the load generator's events would be answered 429 (and, not sent again, leave
           # their orders unfinished).
           "PLANTBRIDGE_RATE_LIMITS": "plant-system=100000/100000"}
    cli = [sys.executable, "-m", "plantbridge.workers.cli"]
    worker = subprocess.Popen([*cli, "worker"], env=env, stdout=(folder / "worker.log").open("ab"),
                              stderr=subprocess.STDOUT)
    gateway = subprocess.Popen([*cli, "gateway"], env=env, stdout=(folder / "gateway.log").open("ab"),
                               stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient() as http:
        deadline = time.monotonic() + 120  # a loaded machine starts the gateway slowly
        while True:
            try:
                if (await http.get(f"{url}/openapi.json")).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if gateway.poll() is not None:
                raise RuntimeError(f"gateway exited: {(folder / 'gateway.log').read_text()[-2000:]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"gateway silent for 120 s: {(folder / 'gateway.log').read_text()[-999:]}")
            await asyncio.sleep(0.1)
    console.print(f"stack up: Temporal {server.address}, gateway {url} (state in {folder})")
    return Stack(folder, server, worker, gateway, url, key, store_url, reference_url)


def bench_policy() -> PlantPolicy:
    policy = PlantConfig.model_validate(yaml.safe_load(BENCH_PLANT_FILE)).policy
    return policy


def bench_order(number: str) -> ProductionOrder:
    return ProductionOrder.model_validate({
        "number": number, "plant": BENCH_PLANT, "material": "FG-BENCH", "quantity": {"quantity": "1000", "uom": "H87"},
        "overdelivery_tolerance_pct": "10",
        "operations": [{"number": "0010", "work_center": "ASSY-01", "planned_qty": {"quantity": "1000", "uom": "H87"}},
                       {"number": "0020", "work_center": "TEST-01", "planned_qty": {"quantity": "1000", "uom": "H87"}}],
        "components": [{"material": "RM-BENCH", "quantity": {"quantity": "1000", "uom": "H87"}, "operation": "0010",
                        "backflush": True}],
    })


def demo_mix(order: str, m: int) -> list[dict[str, Any]]:
    """M events for one order, in the order a plant sends them: the demo's mix."""
    now = datetime.now(UTC).isoformat()
    base = {"source": "mes-1000", "plant": BENCH_PLANT, "order": order, "occurred_at": now}
    events: list[dict[str, Any]] = []
    partials = max(1, (m - 8) // 2)
    for op, wc in (("0010", "ASSY-01"), ("0020", "TEST-01")):
        events.append({"event_type": "operation_started", "operation": op, "work_center": wc})
        for _ in range(partials):
            events.append({"event_type": "operation_confirmed", "operation": op,
                           "yield_qty": {"quantity": "10", "uom": "H87"}, "scrap_qty": {"quantity": "1", "uom": "H87"}})
        if op == "0010":
            events.append({"event_type": "downtime_started", "work_center": wc, "reason": "JAM"})
            events.append({"event_type": "downtime_ended", "work_center": wc})
            events.append({"event_type": "material_consumed", "material": "RM-OIL",
                           "quantity": {"quantity": "2", "uom": "LTR"}})
        events.append({"event_type": "operation_confirmed", "operation": op, "final": True,
                       "yield_qty": {"quantity": "10", "uom": "H87"}})
    return [{**base, **e, "event_id": f"b-{order}-{i:03d}"} for i, e in enumerate(events)]


@dataclass
class Sent:
    latency_s: float
    status: int
    critical: bool
    erp_status: str | None


async def post_event(http: httpx.AsyncClient, stack: Stack, body: dict[str, Any]) -> Sent:
    t = time.perf_counter()
    response = await http.post(f"{stack.gateway_url}/v1/plant/events", json=body,
                               headers={"Authorization": f"Bearer {stack.key}"})
    latency = time.perf_counter() - t
    erp = response.json().get("erp") if response.status_code < 300 else None
    return Sent(latency, response.status_code, bool(body.get("final")), (erp or {}).get("status"))


async def run_orders(client: Any, stack: Stack, sizes: Sizes, prefix: str) -> dict[str, Any]:
    numbers = [f"{prefix}{i:05d}" for i in range(sizes.orders)]
    handles = await asyncio.gather(*(start_order(client, bench_order(n), bench_policy()) for n in numbers))
    sent: list[Sent] = []
    sem = asyncio.Semaphore(sizes.concurrency)
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=sizes.concurrency * 2)) as http:
        async def one_order(number: str) -> None:
            for body in demo_mix(number, sizes.events_per_order):
                async with sem:
                    sent.append(await post_event(http, stack, body))

        t0 = time.perf_counter()
        await asyncio.gather(*(one_order(n) for n in numbers))
        events_s = time.perf_counter() - t0
        await asyncio.gather(*(h.result() for h in handles))
        orders_s = time.perf_counter() - t0
    stack.sample_rss()
    lat = [s.latency_s for s in sent]
    critical = [s.latency_s for s in sent if s.critical and s.erp_status == "posted"]
    return {"events": len(sent), "orders": len(numbers), "events_s": events_s, "orders_s": orders_s,
            "latency": lat, "critical": critical, "errors": sum(s.status >= 300 for s in sent),
            "error_statuses": dict(Counter(str(s.status) for s in sent if s.status >= 300)),
            "critical_pending": sum(s.critical and s.erp_status != "posted" for s in sent)}


async def steady_rate(client: Any, stack: Stack, rate: float, seconds: float, prefix: str,
                      per_order: int = 12) -> dict[str, Any]:
    """Open loop: one event every 1/rate s (spread over orders of `per_order` events), whatever the answers' latency."""
    total = int(rate * seconds)
    numbers = [f"{prefix}{i:05d}" for i in range(max(1, total // per_order + 1))]
    await asyncio.gather(*(start_order(client, bench_order(n), bench_policy()) for n in numbers))
    queues = [demo_mix(n, per_order) for n in numbers]
    longest = max(len(q) for q in queues)
    schedule = [q[i] for i in range(longest) for q in queues if i < len(q)][:total]
    locks = {n: asyncio.Lock() for n in numbers}
    results: list[Sent] = []
    async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=200)) as http:
        async def fire(body: dict[str, Any]) -> None:
            async with locks[body["order"]]:  # one order's events stay in order
                results.append(await post_event(http, stack, body))

        tasks = []
        t0 = time.perf_counter()
        for i, body in enumerate(schedule):
            delay = t0 + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(fire(body)))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - t0
    lat = [r.latency_s for r in results]
    return {"rate_target": rate, "rate_achieved": round(len(results) / elapsed, 1), "events": len(results),
            "p50_ms": round(percentile(lat, 50) * 1000, 1), "p95_ms": round(percentile(lat, 95) * 1000, 1),
            "p99_ms": round(percentile(lat, 99) * 1000, 1), "errors": sum(r.status >= 300 for r in results)}


async def open_orders_memory(client: Any, stack: Stack, count: int, prefix: str) -> dict[str, Any]:
    before = rss_kib(stack.worker.pid)
    sem = asyncio.Semaphore(64)

    async def one(i: int) -> Any:
        async with sem:
            return await start_order(client, bench_order(f"{prefix}{i:05d}"), bench_policy())

    t0 = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(count)))
    started_s = time.perf_counter() - t0
    # Let the release steps (MES dispatch, WMS staging) run, so every saga is cached and waiting.
    reference = await ReferenceStore(stack.reference_url).init()
    try:
        for _ in range(600):
            stages = await reference.calls(system="wms", operation="stage")
            if sum(c.order.startswith(prefix) for c in stages) >= count:
                break
            await asyncio.sleep(0.5)
    finally:
        await reference.close()
    stack.sample_rss()
    return {"open_orders": count, "start_rate_per_s": round(count / started_s, 1),
            "worker_rss_mb_before": round(before / 1024, 1),
            "worker_rss_mb": round(rss_kib(stack.worker.pid) / 1024, 1)}


async def erp_calls(stack: Stack, prefix: str) -> tuple[int, int]:
    reference = await ReferenceStore(stack.reference_url).init()
    try:
        erp = [c for c in await reference.calls(system="erp") if c.order.startswith(prefix)]
    finally:
        await reference.close()
    return len(erp), len({c.order for c in erp})


async def timed(console: Console, what: str, step: Callable[[], Awaitable[Any]]) -> Any:
    console.print(f"[bold]{what}[/] …")
    t = time.perf_counter()
    result = await step()
    console.print(f"  done in {time.perf_counter() - t:.1f} s")
    return result


async def run_bench(*, quick: bool, out: Path | None, console: Console, skip_edge: bool = False) -> dict[str, Any]:
    sizes = Sizes.quick() if quick else Sizes.full()
    run = uuid.uuid4().hex[:4].upper()
    with tempfile.TemporaryDirectory(prefix="plantbridge-bench-") as tmp:
        stack = await start_stack(Path(tmp), console)
        try:
            client = await connect(stack.server.address)
            bare = await timed(console, "bare engine", lambda: bench_bare_engine(
                client, workflows=sizes.bare_workflows, signals=sizes.bare_signals, updates=sizes.bare_updates,
                activities=sizes.bare_activities, concurrency=sizes.concurrency,
                server_cpu_s=lambda: stack.cpu_seconds()["server"]))
            cpu_before, wall_before = stack.cpu_seconds(), time.perf_counter()
            main = await timed(console, f"plantbridge: {sizes.orders} orders x {sizes.events_per_order} events",
                               lambda: run_orders(client, stack, sizes, f"9{run}A"))
            wall = time.perf_counter() - wall_before
            cpu_used = {k: v - cpu_before[k] for k, v in stack.cpu_seconds().items()}
            cpu_share = {k: round(v / wall, 2) for k, v in cpu_used.items()}
            cpu_ms_per_event = {k: round(v * 1000 / max(main["events"], 1), 2) for k, v in cpu_used.items()}
            calls, orders_with_calls = await erp_calls(stack, f"9{run}A")
            sample = [f"9{run}A{i:05d}" for i in range(0, sizes.orders, max(1, sizes.orders // sizes.history_sample))]
            histories = await history_costs(client, BENCH_PLANT, sample[:sizes.history_sample],
                                            main["events"] // main["orders"])
            steady = await timed(console, "steady 100 events/s", lambda: steady_rate(
                client, stack, 100.0, sizes.steady_seconds, f"9{run}S"))
            rate_40 = round(0.4 * bare["updates_per_s"], 1)
            steady_40 = await timed(console, f"steady {rate_40} events/s (40 % of bare updates)", lambda: steady_rate(
                client, stack, rate_40, sizes.steady_seconds, f"9{run}F", sizes.events_per_order))
            memory = await timed(console, f"{sizes.open_orders} open orders", lambda: open_orders_memory(
                client, stack, sizes.open_orders, f"9{run}M"))
            stack.sample_rss()
        finally:
            stack.stop()
    edge: dict[str, Any] | None = None
    if not skip_edge:
        from plantbridge_devtools.edge_bench import bench_edge

        edge = await timed(console, f"edge agent: {sizes.edge_machines} machines x 10 nodes at 10 Hz",
                           lambda: bench_edge(machines=sizes.edge_machines, nodes=10, rate_hz=10,
                                              seconds=sizes.edge_seconds))
    events_per_s = main["events"] / main["events_s"]
    result = {
        "plantbridge_version": "0.1.0",
        "mode": "quick" if quick else "full",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)},
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "workload": {"orders": main["orders"], "events_per_order": sizes.events_per_order, "events": main["events"],
                     "concurrency": sizes.concurrency, "mix": "demo (partials, consumption, downtime, finals)",
                     "posting_policy": "partial confirmations and consumption aggregated"},
        "orders_per_s": round(main["orders"] / main["orders_s"], 2),
        "events_per_s": round(events_per_s, 1),
        "ack_latency_ms": {"p50": round(percentile(main["latency"], 50) * 1000, 1),
                           "p95": round(percentile(main["latency"], 95) * 1000, 1),
                           "p99": round(percentile(main["latency"], 99) * 1000, 1)},
        "ack_latency_at_100_per_s": steady,
        "ack_latency_at_40pct_of_bare": steady_40,
        "critical_event_to_erp_posting_ms": {"p50": round(percentile(main["critical"], 50) * 1000, 1),
                                             "p99": round(percentile(main["critical"], 99) * 1000, 1),
                                             "count": len(main["critical"]),
                                             "not_posted_within_ack_wait": main["critical_pending"]},
        "erp_calls_per_event": round(calls / main["events"], 3),
        "postings_per_order": round(calls / max(orders_with_calls, 1), 2),
        "event_errors": main["errors"],
        "event_error_statuses": main["error_statuses"],
        "peak_rss_mb": {k: round(v / 1024, 1) for k, v in stack.peaks.items()},
        "cpu_cores_used_during_events": cpu_share,
        "per_plant_event": {"cpu_ms": cpu_ms_per_event, **histories["per_plant_event"],
                            "history_sample_orders": histories["sample_orders"],
                            "by_kind": histories["per_plant_event_by_kind"]},
        "per_order": histories["per_order"],
        "open_orders": memory,
        "bare_engine": bare,
        "ratio_events_to_bare_updates": round(events_per_s / bare["updates_per_s"], 3),
        "edge": edge,
    }
    text = json.dumps(result, indent=2)
    if out is not None:
        out.write_text(text + "\n")
    print_summary(result, console)
    return result
