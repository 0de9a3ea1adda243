"""Master-data check of an Odoo plant: its work centers against Odoo's `mrp.workcenter` list (the Odoo
simulator over JSON-2, real HTTP) and its `xref.locations` against the WMS simulator's location master.
The activity runs in temporalio's ActivityEnvironment with a real Temporal client (the running sagas'
work centers); the report is exported as JSON."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment

from plantbridge.activities.batch import BatchActivities
from plantbridge.batch.masterdata import compare
from plantbridge.canonical.batch_jobs import MasterDataCheckRequest
from plantbridge.canonical.plant_config import PlantConfig
from plantbridge.connectors.odoo_rpc import OdooRpc
from plantbridge.store import Database, sqlite_url
from plantbridge_devtools.simulators.odoo.app import DEFAULT_KEY
from plantbridge_devtools.simulators.odoo.server import OdooServer
from plantbridge_devtools.simulators.wms.server import WmsServer


@pytest.fixture
def odoo_url(tmp_path: Path) -> Iterator[str]:
    with OdooServer(str(tmp_path / "odoo.db"), version="19.0") as server:
        yield server.url


@pytest.fixture
def wms_url(tmp_path: Path) -> Iterator[str]:
    with WmsServer(str(tmp_path / "wms.db")) as server:
        yield server.url


def odoo_plant(plant: str, odoo: str, wms: str) -> PlantConfig:
    return PlantConfig.model_validate({
        "plant": plant, "name": "Odoo master data plant", "timezone": "Europe/Lisbon",
        "erp": {"kind": "odoo", "url": odoo, "database": "odoo", "login": "admin", "api_key_env": "TEST_ODOO_KEY",
                "version": "19.0"},
        "wms": {"kind": "rest", "url": wms, "api_key_env": "TEST_WMS_KEY"},
        "work_centers": [{"code": "EXTR-30"}, {"code": "SPOOL-30"}, {"code": "OLD-39"}],
        "xref": {"work_centers": {"L3-EXTR": "EXTR-30", "L3-SPOOL": "SPOOL-30"},
                 "locations": {"EXTR-30": "LINE-L2", "LINE": "LINE-L2", "FG": "FG-01", "QI": "QI-09"}},
    })


async def test_odoo_work_centers_and_wms_locations(client: Client, odoo_url: str, wms_url: str, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_ODOO_KEY", DEFAULT_KEY)
    monkeypatch.setenv("TEST_WMS_KEY", "wms-dev-key")
    rpc = OdooRpc(odoo_url, database="odoo", login="admin", api_key=DEFAULT_KEY, api="json2", timeout=10)
    try:  # Odoo's own master data, created through its API as an administrator would
        for code in ("EXTR-30", "SPOOL-30", "PRESS-31"):
            await rpc.call("mrp.workcenter", "create", vals_list=[{"name": code, "code": code, "active": True}])
        await rpc.call("mrp.workcenter", "create", vals_list=[{"name": "retired", "code": "GONE-32", "active": False}])
    finally:
        await rpc.aclose()
    plant = f"5{uuid.uuid4().int % 1000:03d}"
    cfg = odoo_plant(plant, odoo_url, wms_url)
    db = await Database(sqlite_url(tmp_path / "pb.db")).init()
    try:
        acts = BatchActivities({plant: cfg}, db, tmp_path / "exports")
        report = await ActivityEnvironment(client).run(acts.masterdata_check, MasterDataCheckRequest(plant=plant))
    finally:
        await db.close()
    assert report.erp_catalogue_checked and report.wms_checked and not report.mes_checked and report.error is None
    found = {(f.problem, f.kind, f.code, f.system) for f in report.findings}
    assert found == {
        ("unmapped", "work_center", "PRESS-31", "erp"),  # in Odoo, unknown to the plant file
        # the simulator's own demo work centers (another line of the same Odoo database): unknown here too
        ("unmapped", "work_center", "ASSY-01", "erp"), ("unmapped", "work_center", "PACK-01", "erp"),
        ("stale", "work_center", "OLD-39", "erp"),  # in the plant file, not (or no longer active) in Odoo
        ("stale", "location", "QI-09", "wms"),  # a WMS location the WMS does not have
    }, report.findings
    (qi,) = [f for f in report.findings if f.code == "QI-09"]
    assert "QI -> QI-09" in qi.detail
    assert report.written and json.loads(Path(report.written).read_text())["findings"]


def test_sap_plant_has_no_catalogue_so_nothing_is_stale_in_the_erp() -> None:
    cfg = PlantConfig.model_validate({"plant": "1000", "work_centers": [{"code": "ASSY-01"}, {"code": "OLD-01"}],
                                      "xref": {"work_centers": {"L1-ASSY": "ASSY-01"}}})
    assert compare(cfg, None, {"ASSY-01"}) == []
    assert [(f.problem, f.code) for f in compare(cfg, None, {"ASSY-01"}, erp_catalogue={"ASSY-01"})] == [
        ("stale", "OLD-01")]
