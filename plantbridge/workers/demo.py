"""`plantbridge demo`: a simulated plant runs orders through the saga, with live progress.

Uses a running `plantbridge dev` (from `.plantbridge/dev.json`) when there is one, else starts its
own embedded Temporal server and worker. Scripted along the way: a duplicate event, a posting the
ERP rejects (a supervisor fixes the cause and retries), a quality hold released by QA, and one
cancelled order. The end is a summary counted in the systems' own records.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import tempfile
import time
from collections import Counter
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table
from temporalio.client import Client

from plantbridge.canonical import ExceptionResolution, PlantEvent, PlantPolicy, ProductionOrder
from plantbridge.canonical.exceptions import SupervisorAction
from plantbridge.client import cancel_order, connect, order_summary, release_hold, resolve_exception, start_order
from plantbridge.client import submit_event as send_event
from plantbridge.connectors.reference import ReferenceRegistry, ReferenceStore
from plantbridge.store import Database
from plantbridge.workers.temporal_server import DevServer, free_port
from plantbridge.workers.worker import build_worker

DEMO_QUEUE = "plantbridge-demo"


def q(n: int) -> dict[str, str]:
    return {"quantity": str(n), "uom": "H87"}


def demo_order(i: int, run: str) -> ProductionOrder:
    return ProductionOrder.model_validate({
        "number": f"{run}{i:03d}", "plant": "1000", "material": f"FG-{100 + i % 3}", "description": "Gear pump",
        "quantity": {"quantity": "100", "uom": "H87"}, "overdelivery_tolerance_pct": "5", "storage_location": "0001",
        "operations": [
            {"number": "0010", "work_center": "ASSY-01", "planned_qty": {"quantity": "100", "uom": "H87"}},
            {"number": "0020", "work_center": "TEST-01", "planned_qty": {"quantity": "100", "uom": "H87"}},
        ],
        "components": [{"material": "RM-HOUSING", "quantity": {"quantity": "100", "uom": "H87"}, "operation": "0010",
                        "backflush": True, "storage_location": "0001"}],
    })


class Demo:
    def __init__(self, client: Client, reference: ReferenceStore, orders: int, console: Console) -> None:
        self.client, self.reference, self.console = client, reference, console
        self.run = datetime.now(UTC).strftime("%H%M%S")
        self.orders = [demo_order(i, self.run) for i in range(orders)]
        self.states: dict[str, str] = {o.number: "starting" for o in self.orders}
        self.counts: Counter[str] = Counter()
        self.rng = random.Random(7)

    def event(self, order: ProductionOrder, event_type: str, **fields: Any) -> PlantEvent:
        self.counts["events"] += 1
        return PlantEvent.model_validate({
            "event_id": f"demo-{order.number}-{self.counts['events']}", "event_type": event_type, "source": "mes-1000",
            "plant": order.plant, "order": order.number, "occurred_at": datetime.now(UTC).isoformat(), **fields})

    async def send(self, order: ProductionOrder, ev: PlantEvent) -> None:
        ack = await send_event(self.client, ev, ack_wait=timedelta(seconds=2))
        self.counts[f"ack_{ack.status}"] += 1
        if ack.order_state is not None:
            self.states[order.number] = ack.order_state.value

    async def run_order(self, idx: int, order: ProductionOrder, policy: PlantPolicy) -> None:
        await asyncio.sleep(idx * 0.3)
        handle = await start_order(self.client, order, policy)
        self.states[order.number] = "released"
        scrap = self.rng.randint(0, 3)
        await self.send(order, self.event(order, "operation_started", operation="0010", work_center="ASSY-01"))
        first = self.event(order, "operation_confirmed", operation="0010", yield_qty=q(60), scrap_qty=q(scrap))
        await self.send(order, first)
        await self.send(order, first)  # the MES resends: answered `duplicate`, posted once
        if idx == 1:  # the ERP refuses this one until the planner fixes the order
            await self.reference.add_rule("erp", "confirm_operation", order=order.number, code="RU/150", times=1,
                                          message=f"Order {order.number}: confirmation not possible, order is locked "
                                                  "for costing (status CSER)")
        await self.send(order, self.event(order, "operation_confirmed", operation="0010", yield_qty=q(40 - scrap),
                                          final=True))
        if idx == 1:
            summary = await order_summary(self.client, order.plant, order.number)
            for exc in summary.open_exceptions:
                self.counts["exceptions"] += 1
                await asyncio.sleep(1.0)  # the supervisor reads it, fixes the cause in the ERP, retries
                await resolve_exception(self.client, order.plant, order.number,
                                        ExceptionResolution(exception_id=exc.id, action="retry", by="supervisor.demo"))
        if idx == 2:
            await self.send(order, self.event(order, "quality_hold", reason="burr on flange, 3 of 20 samples"))
            await asyncio.sleep(1.0)
            await release_hold(self.client, order.plant, order.number,
                               SupervisorAction(by="qa.demo", reason="deburred and re-inspected"))
            self.counts["holds"] += 1
        if idx == 3:
            await cancel_order(self.client, order.plant, order.number,
                               SupervisorAction(by="planner.demo", reason="customer order withdrawn"))
        else:
            await self.send(order, self.event(order, "operation_confirmed", operation="0020", yield_qty=q(100 - scrap),
                                              final=True))
        result = await handle.result()
        self.states[order.number] = result.state.value

    def table(self) -> Table:
        table = Table(title=f"plantbridge demo · plant 1000 · {len(self.orders)} orders")
        table.add_column("state")
        table.add_column("orders", justify="right")
        for state, n in sorted(Counter(self.states.values()).items()):
            table.add_row(state, str(n))
        return table

    async def execute(self, policy: PlantPolicy) -> float:
        started = time.monotonic()
        tasks = [asyncio.create_task(self.run_order(i, o, policy)) for i, o in enumerate(self.orders)]
        with Live(self.table(), console=self.console, refresh_per_second=4) as live:
            while not all(t.done() for t in tasks):
                live.update(self.table())
                await asyncio.sleep(0.25)
            live.update(self.table())
        for t in tasks:
            t.result()
        return time.monotonic() - started

    async def summary(self, elapsed: float, ui: str | None) -> bool:
        numbers = {o.number for o in self.orders}
        erp = [c for c in await self.reference.calls(system="erp") if c.order in numbers]
        keys = Counter(c.external_key for c in erp)
        duplicates = sum(n - 1 for n in keys.values())
        table = Table(title="summary")
        table.add_column("what")
        table.add_column("count", justify="right")
        for state, n in sorted(Counter(self.states.values()).items()):
            table.add_row(f"orders {state}", str(n))
        for op, n in sorted(Counter(c.operation for c in erp).items()):
            table.add_row(f"ERP {op}", str(n))
        table.add_row("duplicate ERP postings", str(duplicates))
        table.add_row("events answered duplicate", str(self.counts["ack_duplicate"]))
        table.add_row("exceptions opened / resolved", f"{self.counts['exceptions']} / {self.counts['exceptions']}")
        table.add_row("quality holds released", str(self.counts["holds"]))
        table.add_row("elapsed", f"{elapsed:.1f} s")
        self.console.print(table)
        if ui:
            self.console.print(f"Temporal UI: {ui}/namespaces/default/workflows?query=Plant%3D%271000%27")
        ok = duplicates == 0 and all(s in ("posted", "cancelled") for s in self.states.values())
        self.console.print("[bold green]all orders posted or cancelled, no duplicate postings[/]" if ok
                           else "[bold red]demo did not end clean[/]")
        return ok


async def run_demo(orders: int, console: Console, state_dir: Path = Path(".plantbridge")) -> bool:
    # Rejections are part of the script; their activity tracebacks would only clutter the screen.
    logging.getLogger("temporalio.activity").setLevel(logging.ERROR)
    async with AsyncExitStack() as stack:
        dev_file = state_dir / "dev.json"
        ui: str | None = None
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="plantbridge-demo-")))
        if dev_file.exists():
            info = json.loads(dev_file.read_text())
            address, ui = info["urls"]["temporal"], info["urls"].get("ui")
            console.print(f"using the running `plantbridge dev` at {address}")
        else:
            server = await DevServer(db_file=tmp / "temporal.db", port=free_port(), headless=True,
                                     log_file=tmp / "temporal.log").start()
            stack.callback(server.stop)
            address = server.address
            console.print(f"started an embedded Temporal server at {address} (run `plantbridge dev` first to keep it "
                          "and browse the orders in the UI)")
        client = await connect(address)
        reference = await ReferenceStore(f"sqlite+aiosqlite:///{tmp / 'reference.db'}").init()
        stack.push_async_callback(reference.close)
        db = await Database(f"sqlite+aiosqlite:///{tmp / 'store.db'}").init()
        stack.push_async_callback(db.close)
        worker = build_worker(client, DEMO_QUEUE, ReferenceRegistry(reference), db)
        await stack.enter_async_context(worker)
        demo = Demo(client, reference, orders, console)
        policy = PlantPolicy(task_queue=DEMO_QUEUE, retry_initial=timedelta(milliseconds=200))
        elapsed = await demo.execute(policy)
        return await demo.summary(elapsed, ui)
    return False
