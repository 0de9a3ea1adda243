"""The MES, QMS and WMS connectors against the three simulators over real HTTP (uvicorn in threads).

Nothing is mocked: the only transport wrappers record what went over the wire, or drop an answer
after the simulator has processed the request (a lost answer)."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from plantbridge.canonical.commands import (
    Acknowledge,
    Dispatch,
    Hold,
    Inspection,
    Recall,
    ShipmentReady,
    Stage,
    StockBlock,
    Transfer,
    external_key,
)
from plantbridge.canonical.fields import Quantity
from plantbridge.canonical.order import Component, Operation, ProductionOrder
from plantbridge.canonical.plant_config import PlantConfig
from plantbridge.connectors.errors import BusinessRejection, TransientError
from plantbridge.connectors.mes_rest import MesRestConnector
from plantbridge.connectors.qms_rest import QmsRestConnector
from plantbridge.connectors.wms_rest import WmsRestConnector
from plantbridge_devtools.simulators.mes.server import MesServer
from plantbridge_devtools.simulators.qms.server import QmsServer
from plantbridge_devtools.simulators.wms.server import WmsServer
from tests.support import Recorder

MES_KEY = {"X-API-Key": "mes-dev-key"}
QMS_KEY = {"X-API-Key": "qms-dev-key"}
WMS_KEY = {"X-API-Key": "wms-dev-key"}
_numbers = itertools.count(4100001)

PLANT_1000 = PlantConfig.model_validate({
    "plant": "1000",
    "work_centers": [{"code": "ASSY-01"}, {"code": "TEST-01"}],
    "xref": {"work_centers": {"L1-ASSY": "ASSY-01", "L3-TEST": "TEST-01"},
             "reasons": {"H-MATL": "MAT-01"},
             "units": {"PCS": "H87", "KG": "KGM"}},
})
# Another plant on the same MES product: its own resource names, and it counts pieces as sets.
PLANT_2000 = PlantConfig.model_validate({
    "plant": "2000",
    "xref": {"work_centers": {"P2-MONT-1": "ASSY-01", "P2-PRUEF": "TEST-01"},
             "units": {"SET": "H87", "G": "GRM"}},
})


def qty(value: str, uom: str = "H87") -> Quantity:
    return Quantity(quantity=Decimal(value), uom=uom)


def make_order(plant: str = "1000", *, work_centers: tuple[str, ...] = ("ASSY-01", "TEST-01"),
               quantity: str = "100", components: list[Component] | None = None) -> ProductionOrder:
    return ProductionOrder(
        number=str(next(_numbers)), plant=plant, material="FG-100", description="Gearbox",
        quantity=qty(quantity),
        operations=[Operation(number=f"{(i + 1) * 10:04d}", work_center=wc, description=f"op {i + 1}",
                              planned_qty=qty(quantity)) for i, wc in enumerate(work_centers)],
        components=components if components is not None else [
            Component(item="0010", material="RM-10", quantity=qty("200"), operation="0010", storage_location="0001"),
            Component(item="0020", material="RM-20", quantity=qty("1.5", "KGM"), operation="0010"),
        ],
    )


def key(step: str) -> str:
    return external_key(f"production-order:test:{step}")


# --- simulators and connectors -------------------------------------------------------------


@pytest.fixture(scope="module")
def sims(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    base: Path = tmp_path_factory.mktemp("plant-sims")
    with MesServer(str(base / "mes.db")) as mes, QmsServer(str(base / "qms.db")) as qms, \
            WmsServer(str(base / "wms.db")) as wms:
        yield {"mes": mes.url, "qms": qms.url, "wms": wms.url}


@pytest.fixture
async def admin() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


@pytest.fixture
async def rec() -> Recorder:
    return Recorder()


@pytest.fixture
async def mes(sims: dict[str, str], rec: Recorder) -> AsyncIterator[MesRestConnector]:
    conn = MesRestConnector(sims["mes"], api_key="mes-dev-key", plant_config=PLANT_1000, timeout=5, transport=rec)
    yield conn
    await conn.aclose()


@pytest.fixture
async def qms(sims: dict[str, str], rec: Recorder) -> AsyncIterator[QmsRestConnector]:
    conn = QmsRestConnector(sims["qms"], api_key="qms-dev-key", plant_config=PLANT_1000, timeout=5, transport=rec)
    yield conn
    await conn.aclose()


@pytest.fixture
async def wms(sims: dict[str, str], rec: Recorder) -> AsyncIterator[WmsRestConnector]:
    conn = WmsRestConnector(sims["wms"], api_key="wms-dev-key", plant_config=PLANT_1000, timeout=5, transport=rec)
    yield conn
    await conn.aclose()


async def work_orders(admin: httpx.AsyncClient, url: str, order: ProductionOrder) -> list[dict[str, Any]]:
    r = await admin.get(f"{url}/api/v2/workorders", params={"orderNo": order.number}, headers=MES_KEY)
    r.raise_for_status()
    items: list[dict[str, Any]] = r.json()["items"]
    return items


# --- MES ------------------------------------------------------------------------------------


async def test_dispatch_maps_resources_and_units_and_replays(
    mes: MesRestConnector, sims: dict[str, str], admin: httpx.AsyncClient, rec: Recorder
) -> None:
    order = make_order()
    first = await mes.dispatch(order, Dispatch(), key=key("d1"), retry=False)
    assert first.documents[0].startswith("MES WO-") and not first.replayed

    [wo] = await work_orders(admin, sims["mes"], order)
    assert [s["resource"] for s in wo["routing"]] == ["L1-ASSY", "L3-TEST"]
    assert [s["step"] for s in wo["routing"]] == ["0010", "0020"]
    assert (wo["quantity"], wo["unit"], wo["plant"], wo["material"]) == ("100", "PCS", "1000", "FG-100")
    assert [(b["material"], b["quantity"], b["unit"], b["step"]) for b in wo["bom"]] == [
        ("RM-10", "200", "PCS", "0010"), ("RM-20", "1.5", "KG", "0010")]

    again = await mes.dispatch(order, Dispatch(), key=key("d1"), retry=True)
    assert again.replayed and again.documents == first.documents
    assert len(await work_orders(admin, sims["mes"], order)) == 1


async def test_redispatch_with_other_data_is_the_mes_conflict(mes: MesRestConnector) -> None:
    order = make_order()
    await mes.dispatch(order, Dispatch(), key=key("d2"), retry=False)
    changed = order.model_copy(update={"quantity": qty("120")})
    with pytest.raises(BusinessRejection) as err:
        await mes.dispatch(changed, Dispatch(), key=key("d2"), retry=True)
    assert err.value.code == "WO-409-DUP" and err.value.system == "mes"
    assert "already dispatched" in err.value.message


async def test_hold_unhold_recall(mes: MesRestConnector, sims: dict[str, str], admin: httpx.AsyncClient) -> None:
    order = make_order()
    await mes.dispatch(order, Dispatch(), key=key("h0"), retry=False)

    held = await mes.hold(order, Hold(reason="MAT-01"), key=key("h1"), retry=False)
    [wo] = await work_orders(admin, sims["mes"], order)
    assert wo["status"] == "ON_HOLD" and wo["hold"]["reasonCode"] == "H-MATL"  # ERP reason mapped back
    assert wo["hold"]["source"] == "INTEGRATION" and not held.replayed
    assert (await mes.hold(order, Hold(reason="MAT-01"), key=key("h1"), retry=True)).replayed

    lifted = await mes.hold(order, Hold(reason="release", released=True), key=key("h2"), retry=False)
    assert not lifted.replayed
    assert (await work_orders(admin, sims["mes"], order))[0]["status"] == "DISPATCHED"
    assert (await mes.hold(order, Hold(reason="release", released=True), key=key("h2"), retry=True)).replayed

    recalled = await mes.recall(order, Recall(reason="order cancelled"), key=key("h3"), retry=False)
    assert not recalled.replayed and recalled.documents == [f"MES {wo['workOrderId']}"]
    assert (await work_orders(admin, sims["mes"], order))[0]["status"] == "RECALLED"
    assert (await mes.recall(order, Recall(), key=key("h3"), retry=True)).replayed

    # Holding a recalled order is a real conflict, not "already done".
    with pytest.raises(BusinessRejection) as err:
        await mes.hold(order, Hold(reason="inspection failed: DIA"), key=key("h4"), retry=False)
    assert err.value.code == "WO-409" and "RECALLED" in err.value.message


async def test_acknowledgements_ok_and_nok(mes: MesRestConnector, sims: dict[str, str], admin: httpx.AsyncClient,
                                           rec: Recorder) -> None:
    order = make_order()
    ok = Acknowledge(event_id=f"mes1000-{order.number}-1", status="posted",
                     documents=["ProdnOrdConf2 00001234/00000001"])
    nok = Acknowledge(event_id=f"mes1000-{order.number}-2", status="rejected",
                      message="Posting period 011 2026 is not open")
    skipped = Acknowledge(event_id=f"mes1000-{order.number}-3", status="skipped", message="counted twice")
    for cmd in (ok, nok, skipped):
        result = await mes.acknowledge(order, cmd, key=key(cmd.event_id), retry=False)
        assert result.documents[0].startswith("MES ACK-")

    async def ack(ref: str) -> dict[str, Any]:
        r = await admin.get(f"{sims['mes']}/api/v2/acknowledgements", params={"transactionRef": ref}, headers=MES_KEY)
        [item] = r.json()["items"]
        return dict(item)

    a = await ack(ok.event_id)
    assert (a["result"], a["erpDocument"], a["revision"]) == ("OK", "ProdnOrdConf2 00001234/00000001", 1)
    n = await ack(nok.event_id)
    assert n["result"] == "NOK" and "Posting period 011 2026 is not open" in n["text"] and n["erpDocument"] is None
    s = await ack(skipped.event_id)
    assert s["result"] == "OK" and "skipped by a supervisor" in s["text"]

    posts = len(rec.posts())
    replay = await mes.acknowledge(order, ok, key=key(ok.event_id), retry=True)
    assert replay.replayed and len(rec.posts()) == posts
    assert (await ack(ok.event_id))["revision"] == 1


async def test_missing_cross_reference_names_the_field(mes: MesRestConnector, sims: dict[str, str],
                                                       admin: httpx.AsyncClient) -> None:
    unmapped_wc = make_order(work_centers=("ASSY-01", "PAINT-09"))
    with pytest.raises(BusinessRejection) as err:
        await mes.dispatch(unmapped_wc, Dispatch(), key=key("x1"), retry=False)
    assert err.value.code == "XREF-WORK-CENTER"
    assert "no MES resource for work center PAINT-09" in err.value.message and "xref.work_centers" in err.value.message

    unmapped_unit = make_order(components=[Component(material="RM-30", quantity=qty("2", "MTQ"))])
    with pytest.raises(BusinessRejection) as err:
        await mes.dispatch(unmapped_unit, Dispatch(), key=key("x2"), retry=False)
    assert err.value.code == "XREF-UNIT" and "MTQ" in err.value.message and "xref.units" in err.value.message
    assert await work_orders(admin, sims["mes"], unmapped_wc) == []

    # An unmapped code the MES knows itself passes through unchanged.
    known = make_order(work_centers=("ASSY-01", "L2-MACH"))
    await mes.dispatch(known, Dispatch(), key=key("x3"), retry=False)
    [wo] = await work_orders(admin, sims["mes"], known)
    assert [s["resource"] for s in wo["routing"]] == ["L1-ASSY", "L2-MACH"]


async def test_unavailable_and_unreachable_are_transient(mes: MesRestConnector, sims: dict[str, str],
                                                         admin: httpx.AsyncClient) -> None:
    order = make_order()
    await admin.put(f"{sims['mes']}/admin/faults", json={"error_503_ratio": 1.0})
    try:
        with pytest.raises(TransientError) as err:
            await mes.dispatch(order, Dispatch(), key=key("t1"), retry=False)
        assert err.value.code == "SYS-503" and "retry-after: 1" in err.value.details
    finally:
        await admin.delete(f"{sims['mes']}/admin/faults")

    closed = MesRestConnector("http://127.0.0.1:9", api_key="k", plant_config=PLANT_1000, timeout=2)
    try:
        with pytest.raises(TransientError) as err:
            await closed.recall(order, Recall(), key=key("t2"), retry=False)
        assert err.value.code == "NETWORK"
    finally:
        await closed.aclose()

    wrong_key = MesRestConnector(sims["mes"], api_key="nope", plant_config=PLANT_1000)
    try:
        with pytest.raises(BusinessRejection) as rejected:
            await wrong_key.recall(order, Recall(), key=key("t3"), retry=False)
        assert rejected.value.code == "AUTH-401" and "api_key_env" in rejected.value.message
    finally:
        await wrong_key.aclose()


async def test_two_plants_map_side_by_side(sims: dict[str, str], admin: httpx.AsyncClient) -> None:
    a = MesRestConnector(sims["mes"], api_key="mes-dev-key", plant_config=PLANT_1000)
    b = MesRestConnector(sims["mes"], api_key="mes-dev-key", plant_config=PLANT_2000)
    try:
        comps = [Component(material="RM-10", quantity=qty("250", "GRM"))]
        order_a = make_order("1000", components=[])
        order_b = make_order("2000", components=comps)
        await a.dispatch(order_a, Dispatch(), key=key("p1"), retry=False)
        await b.dispatch(order_b, Dispatch(), key=key("p2"), retry=False)
        [wo_a] = await work_orders(admin, sims["mes"], order_a)
        [wo_b] = await work_orders(admin, sims["mes"], order_b)
        assert ([s["resource"] for s in wo_a["routing"]], wo_a["unit"], wo_a["plant"]) == (
            ["L1-ASSY", "L3-TEST"], "PCS", "1000")
        assert ([s["resource"] for s in wo_b["routing"]], wo_b["unit"], wo_b["plant"]) == (
            ["P2-MONT-1", "P2-PRUEF"], "SET", "2000")
        assert wo_b["bom"][0]["unit"] == "G"
        # Plant 1000 has no gram in its table and the MES does not take GRM: named, not guessed.
        with pytest.raises(BusinessRejection, match=r"xref\.units.*plant 1000"):
            await a.dispatch(make_order("1000", components=comps), Dispatch(), key=key("p3"), retry=False)
    finally:
        await a.aclose()
        await b.aclose()


# --- QMS ------------------------------------------------------------------------------------


async def test_inspection_creates_the_lot_and_records_results_once(
    qms: QmsRestConnector, sims: dict[str, str], admin: httpx.AsyncClient, rec: Recorder
) -> None:
    order = make_order()
    cmd = Inspection(passed=False, operation="0020", characteristics=[
        {"name": "outer diameter", "value": "10.07", "unit": "MMT", "ok": False},
        {"name": "VISUAL", "value": "ok", "unit": None, "ok": True},
    ])
    first = await qms.inspection(order, cmd, key=key("q1"), retry=False)
    assert first.documents[0].startswith("QMS QL-") and not first.replayed

    r = await admin.get(f"{sims['qms']}/qms/v1/lots", params={"order": order.number}, headers=QMS_KEY)
    [lot] = r.json()["items"]
    assert (lot["origin"], lot["unit"], lot["lotQty"], lot["externalRef"]) == ("FINAL", "pcs", "100", "pb-1000-"
                                                                             + order.number)
    results = {x["charCode"]: x for x in lot["results"]}
    assert results["outer-diameter"]["measured"] == "10.07" and results["outer-diameter"]["unit"] == "mm"
    assert results["outer-diameter"]["verdict"] == "REJECT" and results["VISUAL"]["verdict"] == "ACCEPT"
    assert lot["verdict"] == "REJECT"

    posts = len(rec.posts())
    again = await qms.inspection(order, cmd, key=key("q1"), retry=True)
    assert again.replayed and again.documents == first.documents and len(rec.posts()) == posts
    r = await admin.get(f"{sims['qms']}/qms/v1/lots", params={"order": order.number}, headers=QMS_KEY)
    [lot] = r.json()["items"]
    assert len(lot["results"]) == 2


async def test_inspection_uses_the_qms_lot_and_its_plan(qms: QmsRestConnector, sims: dict[str, str],
                                                        admin: httpx.AsyncClient) -> None:
    order = make_order()
    r = await admin.post(f"{sims['qms']}/qms/v1/lots", headers=QMS_KEY, json={
        "orderRef": order.number, "material": "FG-100", "lotQty": "100", "unit": "pcs", "origin": "PRODUCTION",
        "plan": [{"charCode": "DIA-OUT", "description": "outer diameter", "unit": "mm", "lower": "9.95",
                  "upper": "10.05"}]})
    lot_id = r.json()["lotId"]
    cmd = Inspection(passed=True, characteristics=[{"name": "Outer Diameter", "value": "10.01", "unit": "mm",
                                                    "ok": True}])
    result = await qms.inspection(order, cmd, key=key("q2"), retry=False)
    assert result.documents == [f"QMS {lot_id}"]
    lot = (await admin.get(f"{sims['qms']}/qms/v1/lots/{lot_id}", headers=QMS_KEY)).json()
    assert (lot["status"], lot["verdict"], lot["results"][0]["charCode"]) == ("RESULTS_COMPLETE", "ACCEPT", "DIA-OUT")


# --- WMS ------------------------------------------------------------------------------------


async def put_stock(admin: httpx.AsyncClient, url: str, material: str, location: str, amount: str, unit: str) -> None:
    r = await admin.put(f"{url}/admin/stock", json={"material": material, "location": location, "qty": amount,
                                                    "unit": unit})
    r.raise_for_status()


async def stock(admin: httpx.AsyncClient, url: str, material: str) -> dict[str, Any]:
    r = await admin.get(f"{url}/wms/api/stock", params={"material": material}, headers=WMS_KEY)
    return dict(r.json())


async def test_stage_after_a_lost_answer_and_release(wms: WmsRestConnector, sims: dict[str, str],
                                                     admin: httpx.AsyncClient, rec: Recorder) -> None:
    url = sims["wms"]
    await put_stock(admin, url, "RM-10", "RM-A01", "1000", "EA")
    await put_stock(admin, url, "RM-20", "RM-B01", "50", "KG")
    order = make_order()
    k = key(f"{order.number}:stage")

    rec.lose_next = ("POST", "/wms/api/staging-requests")
    with pytest.raises(TransientError):
        await wms.stage(order, Stage(), key=k, retry=False)
    posts = len(rec.posts())
    found = await wms.stage(order, Stage(), key=k, retry=True)
    assert found.replayed and len(rec.posts()) == posts  # looked up by reference, not sent again
    r = await admin.get(f"{url}/wms/api/staging-requests", params={"reference": k}, headers=WMS_KEY)
    [stg] = r.json()["items"]
    assert found.documents == [f"WMS {stg['stagingId']}"]
    assert stg["toLocation"] == "LINE-L1" and stg["orderRef"] == order.number
    assert [(t["material"], t["qty"], t["unit"], t["fromLocation"]) for t in stg["tasks"]] == [
        ("RM-10", "200", "EA", "RM-A01"), ("RM-20", "1.5", "KG", "RM-B01")]

    # Without the retry flag the repeated reference is recognised too (same key: the stored answer).
    assert (await wms.stage(order, Stage(), key=k, retry=False)).replayed

    # The picker moves the first component; then the order is cancelled.
    task = stg["tasks"][0]["taskId"]
    await admin.post(f"{url}/wms/api/staging-requests/{stg['stagingId']}/tasks/{task}/confirm", headers=WMS_KEY)
    rm10 = {x["location"]: x["onHand"] for x in (await stock(admin, url, "RM-10"))["locations"]}
    assert rm10 == {"RM-A01": "800", "LINE-L1": "200"}
    released = await wms.stage(order, Stage(release=True), key=key(f"{order.number}:unstage"), retry=False)
    assert not released.replayed and any(d.startswith("WMS TRF-") for d in released.documents)
    stg = (await admin.get(f"{url}/wms/api/staging-requests/{stg['stagingId']}", headers=WMS_KEY)).json()
    assert stg["status"] == "CANCELLED"
    rm10 = {x["location"]: x["onHand"] for x in (await stock(admin, url, "RM-10"))["locations"]}
    assert rm10 == {"RM-A01": "1000", "LINE-L1": "0"}
    again = await wms.stage(order, Stage(release=True), key=key(f"{order.number}:unstage"), retry=True)
    assert again.replayed


async def test_block_unblock_transfer_and_shipment(wms: WmsRestConnector, sims: dict[str, str],
                                                  admin: httpx.AsyncClient, rec: Recorder) -> None:
    url = sims["wms"]
    order = make_order(quantity="40").model_copy(update={"material": "FG-200"})
    await put_stock(admin, url, "FG-200", "FG-01", "0", "EA")

    blocked = await wms.stock_block(order, StockBlock(blocked=True, reason="inspection failed: DIA"),
                                    key=key(f"{order.number}:block"), retry=False)
    assert blocked.documents[0].startswith("WMS BLK-")
    assert (await stock(admin, url, "FG-200"))["activeBlocks"] == [blocked.documents[0].removeprefix("WMS ")]
    assert (await wms.stock_block(order, StockBlock(blocked=True), key=key(f"{order.number}:block"),
                                  retry=True)).replayed

    with pytest.raises(BusinessRejection) as err:  # the output cannot leave production while blocked
        await wms.transfer(order, Transfer(quantity=qty("40")), key=key(f"{order.number}:early"), retry=False)
    assert err.value.code == "STOCK_BLOCKED"

    unblocked = await wms.stock_block(order, StockBlock(blocked=False, reason="release"),
                                      key=key(f"{order.number}:unblock"), retry=False)
    assert not unblocked.replayed and (await stock(admin, url, "FG-200"))["activeBlocks"] == []
    assert (await wms.stock_block(order, StockBlock(blocked=False), key=key(f"{order.number}:unblock"),
                                  retry=True)).replayed

    k = key(f"{order.number}:transfer")
    rec.lose_next = ("POST", "/wms/api/transfers")
    with pytest.raises(TransientError):
        await wms.transfer(order, Transfer(quantity=qty("40")), key=k, retry=False)
    moved = await wms.transfer(order, Transfer(quantity=qty("40")), key=k, retry=True)
    assert moved.replayed and moved.documents[0].startswith("WMS TRF-")
    r = await admin.get(f"{url}/wms/api/transfers", params={"reference": k}, headers=WMS_KEY)
    [trf] = r.json()["items"]
    assert (trf["fromLocation"], trf["toLocation"], trf["qty"], trf["unit"]) == ("PROD-OUT", "FG-01", "40", "EA")
    assert {x["location"]: x["onHand"] for x in (await stock(admin, url, "FG-200"))["locations"]}["FG-01"] == "40"

    ready = await wms.shipment_ready(order, ShipmentReady(quantity=qty("40")), key=key(f"{order.number}:ship"),
                                     retry=False)
    assert ready.documents[0].startswith("WMS SR-") and "READY" in (ready.message or "")
    posts = len(rec.posts())
    again = await wms.shipment_ready(order, ShipmentReady(quantity=qty("40")), key=key(f"{order.number}:ship"),
                                     retry=True)
    assert again.replayed and again.documents == ready.documents and len(rec.posts()) == posts


async def test_wms_unknown_location_and_unit(wms: WmsRestConnector) -> None:
    order = make_order()
    with pytest.raises(BusinessRejection) as err:
        await wms.transfer(order, Transfer(quantity=qty("1"), to_location="HALL-9"), key=key("w1"), retry=False)
    assert err.value.code == "XREF-LOCATION" and "xref.locations" in err.value.message
    with pytest.raises(BusinessRejection) as err:
        await wms.transfer(order, Transfer(quantity=qty("1", "MTQ")), key=key("w2"), retry=False)
    assert err.value.code == "XREF-UNIT"
