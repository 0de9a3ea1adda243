"""`plantbridge export b2mml ORDER --plant P`: a running saga's order as a B2MML ProductionSchedule
(what was released) and ProductionPerformance (what was reported), both valid against MESA's XSDs.
Real Temporal dev server and saga worker (conftest), the CLI through typer's CliRunner in a thread."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from rich.console import Console
from temporalio.client import Client
from typer.testing import CliRunner

from plantbridge.batch.b2mml import PERFORMANCE_XSD, SCHEDULE_XSD, validate
from plantbridge.client import start_order, submit_event
from plantbridge.workers import export_cli
from plantbridge.workers.cli import app
from plantbridge_devtools.temporal_server import DevServer
from tests.conftest import event, fast_policy, new_order, qty


async def test_export_order_as_b2mml(client: Client, worker: object, temporal_server: DevServer, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    order = new_order()
    await start_order(client, order, fast_policy())
    for ev_type, fields in (("operation_started", {"operation": "0010", "work_center": "ASSY-01"}),
                            ("operation_confirmed", {"operation": "0010", "yield_qty": qty(60), "scrap_qty": qty(2)})):
        ack = await submit_event(client, event(order, ev_type, **fields))
        assert ack.status == "accepted", ack
    monkeypatch.setattr(export_cli, "console", Console(width=400))
    runner = CliRunner()
    args = ["export", "b2mml", order.number, "--plant", order.plant, "--out", str(tmp_path),
            "--temporal", temporal_server.address]
    result = await asyncio.to_thread(runner.invoke, app, args)
    assert result.exit_code == 0, (result.output, result.exception)
    assert result.output.count("new ") == 2
    files = sorted(tmp_path.iterdir())
    (perf_file,) = [f for f in files if "_performance_" in f.name]
    (sched_file,) = [f for f in files if "_schedule_" in f.name]
    validate(sched_file.read_bytes(), SCHEDULE_XSD)
    validate(perf_file.read_bytes(), PERFORMANCE_XSD)

    n = {"b": "http://www.mesa.org/xml/B2MML-V0600"}
    sched = ET.fromstring(sched_file.read_bytes())
    (req,) = sched.findall("b:ProductionRequest", n)
    assert req.findtext("b:ID", namespaces=n) == order.number
    assert req.findtext("b:ProductProductionRuleID", namespaces=n) == "FG-1000"
    segs = {s.findtext("b:ProcessSegmentID", namespaces=n): s for s in req.findall("b:SegmentRequirement", n)}
    assert sorted(segs) == ["0010", "0020"]
    assert segs["0010"].findtext("b:EquipmentRequirement/b:EquipmentID", namespaces=n) == "ASSY-01"
    produced = segs["0010"].find("b:MaterialProducedRequirement/b:Quantity", n)
    assert produced is not None
    assert (Decimal(produced.findtext("b:QuantityString", namespaces=n) or ""),
            produced.findtext("b:UnitOfMeasure", namespaces=n)) == (100, "H87")
    def consumed(op: str) -> list[str | None]:
        return [c.findtext("b:MaterialDefinitionID", namespaces=n)
                for c in segs[op].findall("b:MaterialConsumedRequirement", n)]
    assert consumed("0010") == ["RM-STEEL"] and consumed("0020") == ["RM-SEAL"]
    assert req.findtext("b:RequestState", namespaces=n) == "Released"

    perf = ET.fromstring(perf_file.read_bytes())
    (resp,) = perf.findall("b:ProductionResponse", n)
    assert resp.findtext("b:ProductionRequestID", namespaces=n) == order.number
    assert resp.findtext("b:ResponseState", namespaces=n) == "Running"
    by_op = {s.findtext("b:ProcessSegmentID", namespaces=n): s for s in resp.findall("b:SegmentResponse", n)}
    op10 = by_op["0010"]
    assert Decimal(op10.findtext("b:MaterialActual/b:Quantity/b:QuantityString", namespaces=n) or "") == 60
    data = {d.findtext("b:ID", namespaces=n): Decimal(d.findtext("b:Value/b:ValueString", namespaces=n) or "")
            for d in op10.findall("b:ProductionData", n)}
    assert data == {"PlannedQuantity": 100, "ScrapQuantity": 2, "ReworkQuantity": 0, "Confirmations": 1}
    assert op10.findtext("b:SegmentState", namespaces=n) == "Running"
    assert by_op["0020"].findtext("b:SegmentState", namespaces=n) == "Ready"

    # Again: the same names, nothing new.
    again = await asyncio.to_thread(runner.invoke, app, args)
    assert again.exit_code == 0 and again.output.count("same ") == 2 and sorted(tmp_path.iterdir()) == files
    # An order without a saga: a clear message, exit 1.
    missing = await asyncio.to_thread(runner.invoke, app, ["export", "b2mml", "999999", "--plant", order.plant,
                                                           "--out", str(tmp_path), "--temporal",
                                                           temporal_server.address])
    assert missing.exit_code == 1 and "no saga for order 999999" in missing.output
