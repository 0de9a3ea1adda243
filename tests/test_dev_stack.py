"""`plantbridge dev` as a user runs it (a subprocess, free ports, its own state dir), then the demo
against it (the hybrid landscape: plants 1000/2000 on SAP, 3000 on Odoo), then SIGTERM: every child
process is gone and dev.json removed."""

from __future__ import annotations

import base64
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from asyncua import Client, ua
from google.protobuf.json_format import MessageToDict
from rich.console import Console

from plantbridge.batch.b2mml import NS, validate
from plantbridge_devtools.demo import run_demo
from plantbridge_devtools.stack import DEV_SECRETS, SAP_USER, pid_alive
from tests.edge.mqtt_helpers import TopicRecorder
from tests.support import eventually

pytestmark = pytest.mark.heavy  # minutes, not seconds: `pytest -m 'not heavy'` for a quick loop


def wait_for_dev_json(path: Path, proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert proc.poll() is None, f"plantbridge dev exited {proc.returncode}:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"no dev.json after {timeout_s} s:\n{log.read_text()[-3000:]}"
        time.sleep(0.3)
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def decode(url: str, payloads: list[Any], headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(url, json={"payloads": payloads}, headers=headers, timeout=10)


def answers(url: str, headers: dict[str, str] | None = None) -> int:
    return httpx.get(url, headers=headers, timeout=10).status_code


def odoo_work_centers(url: str, odoo: dict[str, str]) -> list[str]:
    """Plant 3000's work centers, asked through Odoo's JSON-2 API with dev.json's Odoo entry."""
    headers = {"Authorization": f"bearer {odoo['api_key']}", "X-Odoo-Database": odoo["database"]}
    answer = httpx.post(f"{url}/json/2/mrp.workcenter/search_read", headers=headers, timeout=10,
                        json={"domain": [["code", "in", ["EXTR-30", "SPOOL-30"]]], "fields": ["code"]})
    assert answer.status_code == 200, answer.text
    return sorted(r["code"] for r in answer.json())


CONFIRMATIONS = "/sap/opu/odata/sap/API_PROD_ORDER_CONFIRMATION_2_SRV/ProdnOrdConf2"


def sap_confirmed(sap: str, plant: str) -> dict[str, tuple[Decimal, Decimal]]:
    """(yield, scrap) per order of the plant, summed over SAP's own confirmations (its OData API, as any
    client reads them); reversed confirmations and their reversals left out."""
    answer = httpx.get(f"{sap}{CONFIRMATIONS}", params={"$filter": f"Plant eq '{plant}'", "$format": "json"},
                       auth=(SAP_USER, DEV_SECRETS["PLANTBRIDGE_DEV_SAP_PASSWORD"]), timeout=10)
    assert answer.status_code == 200, answer.text
    totals: dict[str, tuple[Decimal, Decimal]] = {}
    for c in answer.json()["d"]["results"]:
        if c["IsReversed"] or c["IsReversal"]:
            continue
        order = str(c["OrderID"]).lstrip("0")
        y, s = totals.get(order, (Decimal(0), Decimal(0)))
        totals[order] = (y + Decimal(c["ConfirmationYieldQuantity"]), s + Decimal(c["ConfirmationScrapQuantity"]))
    return totals


def exported(paths: list[Path]) -> tuple[dict[str, tuple[Decimal, Decimal]], dict[str, tuple[Decimal, Decimal]]]:
    """(yield, scrap) per order over the shift summaries written: from the JSON companions and from the B2MML
    documents (each validated against MESA's XSDs)."""
    from_json: dict[str, tuple[Decimal, Decimal]] = {}
    from_xml: dict[str, tuple[Decimal, Decimal]] = {}

    def add(into: dict[str, tuple[Decimal, Decimal]], order: str, y: Decimal, s: Decimal) -> None:
        y0, s0 = into.get(order, (Decimal(0), Decimal(0)))
        into[order] = (y0 + y, s0 + s)

    for path in paths:
        if path.suffix == ".json":
            for wc in json.loads(path.read_text())["summary"]["work_centers"]:
                for op in wc["operations"]:
                    add(from_json, op["order"], Decimal(op["yield_qty"]), Decimal(op["scrap_qty"]))
        else:
            validate(path.read_bytes())
            ns = {"b": NS}
            for resp in ET.fromstring(path.read_bytes()).findall("b:ProductionResponse", ns):
                order = resp.findtext("b:ProductionRequestID", namespaces=ns)
                if order is None:  # the OEE responses (per work center and plant) name no order
                    continue
                for seg in resp.findall("b:SegmentResponse", ns):
                    y = seg.findtext("b:MaterialActual/b:Quantity/b:QuantityString", namespaces=ns)
                    s = next(d.findtext("b:Value/b:ValueString", namespaces=ns) for d in seg.findall(
                        "b:ProductionData", ns) if d.findtext("b:ID", namespaces=ns) == "ScrapQuantity")
                    add(from_xml, order, Decimal(y or "0"), Decimal(s or "0"))
    return from_json, from_xml


def batch_run_after_demo(state: Path, env: dict[str, str]) -> tuple[str, list[Path]]:
    """`plantbridge batch run shift-summary --plant 1000` as a user types it after `source .plantbridge/dev.env`."""
    exports = {line.split("=", 1)[0].removeprefix("export "): shlex.split(line.split("=", 1)[1])[0]
               for line in (state / "dev.env").read_text().splitlines() if line.startswith("export ")}
    run = subprocess.run([sys.executable, "-m", "plantbridge.workers.cli", "batch", "run", "shift-summary",
                          "--plant", "1000"], env={**env, **exports}, capture_output=True, text=True, timeout=180)
    assert run.returncode == 0, run.stdout + run.stderr
    written = [Path(w) for w in re.findall(r"^\s+(?:new|same) +(\S+)$", run.stdout, flags=re.M)]
    assert written and all(p.parent == state / "exports" / "1000" and p.exists() for p in written), run.stdout
    return run.stdout, written


async def test_dev_stack_runs_the_demo_and_stops_clean(tmp_path: Path) -> None:
    state = tmp_path / "state"
    log = tmp_path / "dev.out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLANTBRIDGE_")}
    env["COLUMNS"] = "120"
    proc = subprocess.Popen([sys.executable, "-m", "plantbridge.workers.cli", "dev", "--state-dir", str(state),
                             "--free-ports"], stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)
    pids: dict[str, int] = {}
    try:
        info = wait_for_dev_json(state / "dev.json", proc, log)
        urls, pids, keys = info["urls"], info["pids"], info["api_keys"]
        assert set(urls) >= {"temporal", "ui", "gateway", "sap", "mes", "qms", "wms", "opcua", "odoo", "codec"}
        assert set(keys) == {"erp", "plant-system", "qms", "edge", "supervisor"}
        assert {"temporal", "sap", "odoo", "mes", "qms", "wms", "machines", "worker", "gateway", "codec"} <= set(pids)
        defaults = {"127.0.0.1:7233", "http://127.0.0.1:8233", "http://127.0.0.1:8080", "http://127.0.0.1:8101",
                    "http://127.0.0.1:8106"}
        assert not defaults & {urls["temporal"], urls["ui"], urls["gateway"], urls["sap"], urls["odoo"]}, urls
        assert info["odoo"]["database"] == "odoo" and info["odoo"]["login"] == "admin" and info["odoo"]["api_key"]
        assert info["plants"] == ["1000", "2000", "3000"]
        # dev.json's Odoo entry is what an integrator's script needs: Odoo's JSON-2 API answers with it.
        centers = odoo_work_centers(urls["odoo"], info["odoo"])
        assert centers == ["EXTR-30", "SPOOL-30"], centers
        rendered = (state / "plants" / "3000.yaml").read_text()
        assert f"url: {urls['odoo']}" in rendered and f"url: {urls['sap']}" not in rendered
        assert all(pid_alive(pid) for pid in pids.values()), pids
        supervisor = {"Authorization": f"Bearer {keys['supervisor']}"}
        assert answers(f"{urls['gateway']}/v1/orders?plant=2000", supervisor) == 200
        assert answers(f"{urls['gateway']}/v1/orders?plant=1000") == 401
        for name in ("sap", "odoo", "mes", "qms", "wms"):
            assert answers(f"{urls[name]}/admin/health") == 200, name
        assert answers(urls["ui"]) == 200
        # The codec server: 401 without credentials, decodes for a supervisor key; the UI is pointed
        # at it with the stack's path secret (in its command line, not in dev.json).
        assert decode(f"{urls['codec']}/decode", []).status_code == 401
        assert decode(f"{urls['codec']}/decode", [], supervisor).status_code == 200
        ui_codec = re.search(r"--ui-codec-endpoint (\S+)", (state / "temporal.log").read_text())
        assert ui_codec is not None and ui_codec.group(1).startswith(urls["codec"] + "/")
        assert answers(f"{urls['machines']}/health") == 200
        assert urls["opcua"].startswith("opc.tcp://127.0.0.1:")
        # OPC UA is encrypted: the simulator offers Basic256Sha256 SignAndEncrypt only, and the edge agent
        # connected with the certificates the stack made and put in each side's trust list.
        offered = await Client(urls["opcua"], timeout=10).connect_and_get_server_endpoints()
        assert {(e.SecurityPolicyUri.rsplit("#", 1)[-1], e.SecurityMode) for e in offered} == {
            ("Basic256Sha256", ua.MessageSecurityMode.SignAndEncrypt)}
        await eventually(lambda: " connected (" in (state / "edge.log").read_text(), what="the edge agent's session")
        assert not list((state / "edge-pki" / "rejected" / "certs").iterdir())
        for name in ("temporal", "sap", "gateway", "worker"):
            assert (state / f"{name}.log").exists()

        # A dashboard subscribed to the Unified Namespace (when the machine's broker answers: dev.json `mqtt`).
        recorder = await TopicRecorder(info["mqtt"]["uns"]).start() if info.get("mqtt") else None
        result: dict[str, Any] = {}
        ok = await run_demo(4, Console(file=(tmp_path / "demo.out").open("w"), width=120), state_dir=state,
                            result=result)
        assert ok, (tmp_path / "demo.out").read_text()[-4000:]
        assert result["duplicates"] == 0
        if recorder is not None:  # every demo order's state changes reached the UNS, live (not retained)
            def live_states(number: str) -> list[str]:
                return [p["state"] for topic, p, retained in recorder.messages
                        if not retained and "/orders/" in topic and isinstance(p, dict) and p.get("order") == number]

            orders = {**result["states"], **result.get("odoo", {}).get("states", {})}
            await eventually(lambda: all(final in live_states(number) for number, final in orders.items()),
                             timeout=30, what="every demo order's final state on the UNS")
            for number in orders:
                assert len(set(live_states(number))) >= 2, (number, live_states(number))
            await recorder.stop()
        assert sorted(result["states"].values()) == ["cancelled", "posted", "posted", "posted"]
        assert result["postings"]["confirmations"] >= 9 and result["postings"]["maintenance notifications"] == 1
        # The batch lane after the demo (issue 13): the shift summaries name every order of plant 1000 that SAP
        # holds confirmations for, with SAP's yield and scrap, in the JSON companions and the B2MML alike.
        out, written = batch_run_after_demo(state, env)
        in_sap = sap_confirmed(urls["sap"], "1000")
        assert len(in_sap) >= 2, in_sap
        from_json, from_xml = exported(written)
        assert from_json == in_sap, (out, from_json, in_sap)
        assert from_xml == in_sap, (out, from_xml, in_sap)
        assert "(in progress, so far)" in out, out
        odoo = result["odoo"]  # counted through Odoo's API by the demo
        assert sorted(odoo["states"].values()) == ["cancelled", "posted", "posted", "posted"], odoo
        assert odoo["mos"]["done"] == 3 and not odoo["doubled"] and not odoo["unbound"] and not odoo["not_done"]
        assert odoo["records"]["maintenance requests"] == 1 and odoo["records"]["scraps"] >= 4, odoo
        [odoo_rejection] = [text for where, text in result["rejections"].items() if where.startswith("3000/")]
        assert "not allowed to create" in odoo_rejection and "mrp.workcenter.productivity" in odoo_rejection
        # Temporal's history holds no clear order data: the dev stack encrypts payloads.
        from plantbridge.client import connect
        raw = await connect(urls["temporal"], codec=None)
        async for wf in raw.list_workflows("WorkflowType = 'ProductionOrder'"):
            async for ev in raw.get_workflow_handle(wf.id).fetch_history_events():
                if ev.HasField("workflow_execution_started_event_attributes"):
                    [payload] = ev.workflow_execution_started_event_attributes.input.payloads
                    assert payload.metadata["encoding"] == b"binary/encrypted"
                    # ... which the UI's codec endpoint (the path secret) decodes for the developer.
                    r = decode(f"{ui_codec.group(1)}/decode", [MessageToDict(payload)])
                    assert r.status_code == 200, r.text
                    [clear] = r.json()["payloads"]
                    assert wf.id.split(":")[-1] in base64.b64decode(clear["data"]).decode()
            break
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
    assert code == 0, log.read_text()[-3000:]
    assert not (state / "dev.json").exists() and not (state / "dev.env").exists()
    assert "plantbridge dev stopped" in log.read_text()
    alive = {name: pid for name, pid in pids.items() if pid_alive(pid)}
    assert not alive, alive
