"""Business metrics with plant labels on the Prometheus endpoint, and `plantbridge status`."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

import httpx
from rich.console import Console
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from plantbridge.client import connect, order_summary, start_order, submit_event
from plantbridge.connectors.memory import MemoryRegistry, MemoryStore
from plantbridge.store import Database
from plantbridge.workers.settings import Settings
from plantbridge.workers.status import collect_status, print_status, watch_business_metrics
from plantbridge.workers.worker import build_worker
from plantbridge_devtools.temporal_server import DevServer
from tests.conftest import event, fast_policy, new_order, qty
from tests.support import eventually, free_port

QUEUE = "plantbridge-metrics-test"


async def test_metrics_endpoint_serves_business_metrics_with_plant_labels(
    temporal_server: DevServer, reference: MemoryStore, db: Database
) -> None:
    port = free_port()
    runtime = Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(
        bind_address=f"127.0.0.1:{port}", counters_total_suffix=True, durations_as_seconds=True)))
    client = await connect(temporal_server.address, runtime=runtime)
    held, rejected = new_order("1000", components=False), new_order("1000", components=False)
    await reference.add_rule("erp", "confirm_operation", order=rejected.number, code="RU/505",
                             message="Posting period 011/2026 is not open")
    async with build_worker(client, QUEUE, MemoryRegistry(reference), db):
        await start_order(client, held, fast_policy(task_queue=QUEUE))
        await start_order(client, rejected, fast_policy(task_queue=QUEUE))
        ok = await submit_event(client, event(held, "operation_confirmed", operation="0010", yield_qty=qty(5)))
        assert ok.erp is not None and ok.erp.status == "posted"
        await submit_event(client, event(held, "quality_hold", reason="porosity"))
        bad = await submit_event(client, event(rejected, "operation_confirmed", operation="0010", yield_qty=qty(5)))
        assert bad.erp is not None and bad.erp.status == "rejected"

        async def both_visible() -> bool:
            report = await collect_status(client, db, plant="1000")
            return report["1000"].holds_open >= 1 and report["1000"].open_exceptions >= 1

        await eventually(both_visible)
        task = asyncio.create_task(watch_business_metrics(client, db, interval_s=0.5))
        try:
            async def scraped() -> bool:
                async with httpx.AsyncClient() as http:
                    text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
                return 'plantbridge_holds_open{plant="1000"' in text or (
                    "plantbridge_holds_open{" in text and 'plant="1000"' in text)

            await eventually(scraped)
            async with httpx.AsyncClient() as http:
                text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        summary = await order_summary(client, rejected.plant, rejected.number)
        assert summary.open_exceptions
    lines = [line for line in text.splitlines() if line.startswith("plantbridge_")]
    def has(name: str, *labels: str) -> bool:
        return any(line.startswith(name) and all(lb in line for lb in labels) for line in lines)

    assert has("plantbridge_orders", 'plant="1000"', 'state="quality_hold"')
    assert has("plantbridge_open_exceptions", 'plant="1000"')
    assert has("plantbridge_oldest_hold_age", 'plant="1000"')
    assert has("plantbridge_business_rejections_total", 'plant="1000"', 'code="RU/505"')
    assert has("plantbridge_event_to_erp_posting", 'plant="1000"')
    assert has("plantbridge_postings_total", 'plant="1000"', 'system="erp"')
    assert "temporal_" in text  # the runtime's own metrics on the same endpoint


async def test_status_command_report(temporal_server: DevServer, db: Database, client: object, worker: object,
                                     tmp_path: object) -> None:
    order = new_order("1000", components=False)
    c = await connect(temporal_server.address)
    await start_order(c, order, fast_policy(hold_sla=timedelta(hours=1)))
    await submit_event(c, event(order, "quality_hold", reason="label misprint"))

    async def held() -> bool:
        return (await collect_status(c, db, plant="1000"))["1000"].holds_open >= 1

    await eventually(held)
    console = Console(record=True, width=200)
    await print_status(Settings(temporal_address=temporal_server.address, store_url=db.url), "1000", console)
    out = console.export_text()
    assert "plantbridge status" in out and "quality_hold" in out and "1000" in out
