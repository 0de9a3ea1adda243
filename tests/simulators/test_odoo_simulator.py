"""The Odoo simulator driven by Odoo's own client library from PyPI (odoo-client-lib) over XML-RPC,
JSON-RPC and JSON-2, and checked against the shared Odoo contract (conformance)."""

from __future__ import annotations

import json
import xmlrpc.client
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest

from plantbridge_devtools.simulators.odoo.app import DEFAULT_KEY
from plantbridge_devtools.simulators.odoo.orm import AUX, MAGIC
from plantbridge_devtools.simulators.odoo.server import OdooServer

odoolib = pytest.importorskip("odoolib", reason="odoo-client-lib (dev extra) is not installed")
CONTRACT = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "odoo" / "contract.json"


@pytest.fixture(params=["17.0", "18.0", "19.0"])
def odoo(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OdooServer]:
    with OdooServer(str(tmp_path / "odoo.db"), version=request.param) as server:
        yield server


def _mo(server: OdooServer) -> int:
    return int(httpx.post(f"{server.url}/admin/productions", json={}, timeout=10).json()["id"])


@pytest.mark.parametrize("protocol", ["xmlrpc", "jsonrpc"])
def test_integrator_script_over_rpc(odoo: OdooServer, protocol: str) -> None:
    mo_id = _mo(odoo)
    port = urlparse(odoo.url).port
    conn = odoolib.get_connection(hostname="127.0.0.1", port=port, protocol=protocol, database="odoo",
                                  login="admin", password=DEFAULT_KEY)
    conn.check_login()
    productions = conn.get_model("mrp.production")
    [mo] = productions.search_read([("state", "=", "confirmed")], ["name", "workorder_ids", "product_qty"])
    assert mo["id"] == mo_id and mo["name"] == "WH/MO/00001" and mo["product_qty"] == 100
    assert productions.search_count([("state", "in", ["confirmed", "progress"])]) == 1
    workorders = conn.get_model("mrp.workorder")
    if protocol == "xmlrpc" and odoo.app_options["version"] != "17.0":
        with pytest.raises(xmlrpc.client.Fault) as fault:  # None after commit: Fault 1 (Odoo #19889)
            workorders.button_start([mo["workorder_ids"][0]])
        assert "cannot marshal None" in fault.value.faultString
    else:
        workorders.button_start([mo["workorder_ids"][0]])
    assert workorders.read([mo["workorder_ids"][0]], ["state"])[0]["state"] == "progress"
    scraps = conn.get_model("stock.scrap")
    got = scraps.load(["id", "product_id/.id", "scrap_qty", "production_id/.id"], [["__plantbridge__.s1", "1", "2",
                                                                                   str(mo_id)]])
    assert got["messages"] == [] and len(got["ids"]) == 1
    again = scraps.load(["id", "product_id/.id", "scrap_qty", "production_id/.id"], [["__plantbridge__.s1", "1", "3",
                                                                                     str(mo_id)]])
    assert again["ids"] == got["ids"]  # the bound record is updated, not created twice
    data = conn.get_model("ir.model.data")
    assert data.search_count([("module", "=", "__plantbridge__")]) == 1
    with pytest.raises(Exception, match="It has already been unblocked"):
        conn.get_model("mrp.workcenter").unblock([1])
    with pytest.raises(Exception, match="Private methods"):
        productions._post_inventory([mo_id])


def test_integrator_script_over_json2(tmp_path: Path) -> None:
    with OdooServer(str(tmp_path / "odoo.db"), version="19.0") as odoo:
        mo_id = _mo(odoo)
        conn = odoolib.get_connection(hostname="127.0.0.1", port=urlparse(odoo.url).port, protocol="json2",
                                      database="odoo", password=DEFAULT_KEY)
        productions = conn.get_model("mrp.production")
        rows = productions.search_read(domain=[["state", "=", "confirmed"]], fields=["name"])
        assert [r["id"] for r in rows] == [mo_id]
        assert productions.button_mark_done(ids=[mo_id], context={"skip_consumption": True}) is True
        assert productions.search_read(domain=[["id", "=", mo_id]], fields=["state"])[0]["state"] == "done"
        with pytest.raises(ValueError, match=r"odoo\.exceptions\.UserError"):  # 422, per odoo-client-lib
            productions.write(ids=[mo_id], vals={"qty_producing": 5})
        bad = odoolib.get_connection(hostname="127.0.0.1", port=urlparse(odoo.url).port, protocol="json2",
                                     database="odoo", password="x" * 40)
        with pytest.raises(Exception, match=r"(?i)authentication"):
            bad.get_model("mrp.production").search_read(domain=[], fields=["name"])


def test_conformance_with_the_contract(odoo: OdooServer) -> None:
    if not CONTRACT.exists():
        pytest.skip(f"the shared Odoo contract is not here ({CONTRACT})")
    contract = json.loads(CONTRACT.read_text())
    version = odoo.app_options["version"]
    _mo(odoo)
    served: dict[str, Any] = {}
    for model in (*contract["models"], *AUX):
        r = httpx.post(f"{odoo.url}/jsonrpc", json={"jsonrpc": "2.0", "method": "call", "id": 1, "params": {
            "service": "object", "method": "execute_kw", "args": ["odoo", 2, DEFAULT_KEY, model, "fields_get", []]}})
        if "result" in r.json():
            served[model] = r.json()["result"]
    comodels = {f.get("comodel") for m in contract["models"].values() for f in m.get("fields", {}).values()}
    for model, fields in served.items():
        if model in AUX:
            assert model in comodels, f"{model} is served but the contract never names it"
            continue
        spec = contract["models"][model]["fields"]
        for name, desc in fields.items():
            if name in MAGIC:
                continue
            assert name in spec and version in spec[name]["versions"], f"{model}.{name} not in {version}"
            merged = {**spec[name], **spec[name].get("differs_by_version", {}).get(version, {})}
            assert desc["type"] == merged["type"], f"{model}.{name}"
            if desc["type"] == "selection":
                assert {v for v, _ in desc["selection"]} <= set(merged.get("selection", [])), f"{model}.{name}"
    # Every value the simulator stores is a served field.
    state = httpx.get(f"{odoo.url}/admin/state").json()["objects"]
    for model, rows in state.items():
        for row in rows:
            extra = set(row) - set(served[model]) - set(MAGIC)
            assert not extra, f"{model} stores {extra}"
