"""SapODataConnector against the S/4HANA simulator over real HTTP (uvicorn in a thread). Nothing is
mocked: the only transport wrapper records what went over the wire."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import date, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from plantbridge.canonical.commands import (
    CompleteOrder,
    ConfirmOperation,
    GoodsMovement,
    GoodsMovementItem,
    GoodsReceipt,
    MaintenanceNotification,
    UsageDecision,
    external_key,
)
from plantbridge.canonical.events import ActivityTimes
from plantbridge.canonical.fields import Quantity
from plantbridge.canonical.order import ProductionOrder
from plantbridge.connectors.errors import BusinessRejection, OrderNotFound, TransientError
from plantbridge.connectors.sap_odata import SapODataConnector
from plantbridge.connectors.sap_odata_http import (
    format_date,
    format_duration,
    parse_date,
    parse_datetime,
    parse_duration,
    parse_error,
)
from plantbridge.connectors.sap_odata_payloads import CONF, MATDOC, PM, PROD
from plantbridge_devtools.simulators.sap.server import SimulatorServer
from tests.support import Recorder

Admin = httpx.AsyncClient


def qty(value: str, uom: str = "H87") -> Quantity:
    return Quantity(quantity=Decimal(value), uom=uom)


@pytest.fixture(scope="module")
def sap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorServer]:
    db: Path = tmp_path_factory.mktemp("sap") / "sap.db"
    with SimulatorServer(str(db)) as server:
        yield server


@pytest.fixture
async def admin(sap: SimulatorServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"{sap.url}/admin", timeout=10) as client:
        (await client.post("/reset"))
        yield client
        (await client.post("/reset"))


@pytest.fixture
async def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def erp(sap: SimulatorServer, admin: Admin, recorder: Recorder) -> AsyncIterator[SapODataConnector]:
    async with SapODataConnector(
        sap.url, user="PLANTBRIDGE", password="secret", timeout=5.0, transport=recorder
    ) as connector:
        yield connector


async def create_order(admin: Admin, *, release: bool = True, **overrides: Any) -> str:
    body: dict[str, Any] = {
        "plant": "1000",
        "material": "FG-100",
        "quantity": "100",
        "unit": "ST",
        "storage_location": "0001",
        "start": "2026-11-26",
        "end": "2026-11-28",
        "inspection_lot_origin": "04",
        "operations": [
            {"operation": "0010", "work_center": "ASSY-01", "description": "Assemble",
             "standard_values": [{"unit": "MIN", "quantity": "30"}]},
            {"operation": "0020", "work_center": "PACK-01", "control_key": "PP02"},
        ],
        "components": [
            {"item": "0010", "material": "RM-1", "quantity": "200", "unit": "KG", "storage_location": "0002",
             "batch": "B1", "backflush": True, "operation": "0010"},
            {"item": "0020", "material": "RM-2", "quantity": "100", "unit": "ST", "operation": "0020"},
        ],
        "release": release,
        **overrides,
    }
    response = await adm(admin, "post", "/orders", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["ManufacturingOrder"])


def key(name: str) -> str:
    return external_key(f"production-order:1000:test:{name}:{uuid.uuid4()}")


async def adm(admin: Admin, method: str, path: str, json: Any = None) -> httpx.Response:
    response = await admin.request(method.upper(), path, json=json)
    response.raise_for_status()
    return response


async def state(admin: Admin) -> dict[str, Any]:
    response = await admin.get("/state")
    response.raise_for_status()
    return dict(response.json())


async def traffic(admin: Admin) -> list[dict[str, Any]]:
    """What the simulator received (method, service, path, query, status), oldest first."""
    response = await admin.get("/traffic")
    response.raise_for_status()
    return list(response.json())


def names_key(request: dict[str, Any], k: str) -> bool:
    """A GET whose $filter names the external key (as GUID, the matdoc reference half, or the notification's
    first 20 digits)."""
    where = request["query"].get("$filter", "")
    return request["method"] == "GET" and (str(uuid.UUID(k)) in where or k[:16] in where)


async def assert_lookup_before_any_post(admin: Admin, since: int, k: str, what: str) -> None:
    """The retried call's traffic (from index `since`): first a GET by the key, and no second posting."""
    calls = [c for c in (await traffic(admin))[since:] if c["path"] != "" or c["method"] != "GET"]  # not CSRF
    assert calls, f"{what}: no request"
    assert names_key(calls[0], k), f"{what}: the first request of a retry is not the look-up by key: {calls[0]}"
    posts = [c for c in calls if c["method"] == "POST"]
    assert posts == [], f"{what}: posted again although the look-up found the posting: {posts}"


# --- codec -------------------------------------------------------------------------------------


def test_codec_literals() -> None:
    assert parse_date("/Date(1795651200000)/") == date(2026, 11, 26)
    assert parse_date("/Date(1795651200000+0000)/") == date(2026, 11, 26)
    assert parse_date(None) is None
    assert format_date(date(2026, 11, 26)) == "/Date(1795651200000)/"
    moment = parse_datetime("/Date(1795651200000+0100)/")
    assert moment is not None and moment.isoformat() == "2026-11-26T00:00:00+00:00"
    assert parse_duration("PT08H30M00S") == time(8, 30)
    assert format_duration(time(8, 30)) == "PT08H30M00S"


def test_parse_error_html_and_json() -> None:
    html = httpx.Response(503, text="<html><head><title>Service cannot be reached</title></head></html>")
    assert parse_error(html).message == "Service cannot be reached"
    body = {"error": {"code": "M7/053", "message": {"lang": "en", "value": "Posting only possible"},
                      "innererror": {"errordetails": [{"code": "M7/053", "message": "Posting only possible"}]}}}
    parsed = parse_error(httpx.Response(400, json=body))
    assert (parsed.code, parsed.message) == ("M7/053", "Posting only possible")
    assert parsed.details == ["Posting only possible"]


# --- reading and releasing ---------------------------------------------------------------------


async def test_read_order_maps_operations_components_units(erp: SapODataConnector, admin: Admin) -> None:
    number = await create_order(admin, release=False)
    order = await erp.read_order(number.zfill(12))
    assert order.number == number.lstrip("0")
    assert (order.plant, order.material, order.erp_system, order.released) == ("1000", "FG-100", "sap_s4", False)
    assert order.quantity == qty("100", "H87")
    assert (order.start_date, order.end_date) == (date(2026, 11, 26), date(2026, 11, 28))
    assert order.storage_location == "0001"
    assert [(op.number, op.work_center, op.control_key) for op in order.operations] == [
        ("0010", "ASSY-01", "PP01"),
        ("0020", "PACK-01", "PP02"),
    ]
    assert order.operations[0].planned_qty == qty("100") and order.operations[0].description == "Assemble"
    rm1, rm2 = order.components
    assert (rm1.material, rm1.quantity, rm1.backflush, rm1.storage_location, rm1.batch, rm1.operation) == (
        "RM-1", qty("200", "KGM"), True, "0002", "B1", "0010",
    )
    assert rm1.reservation and rm1.reservation_item == "1"
    assert (rm2.quantity, rm2.backflush, rm2.storage_location, rm2.batch) == (qty("100"), False, None, None)

    released = await erp.release_order(number)
    assert not released.replayed
    assert (await erp.read_order(number)).released
    assert (await erp.release_order(number)).replayed


async def test_read_unknown_order_is_not_found(erp: SapODataConnector, admin: Admin) -> None:
    """SAP's "resource not found" is the one not-found error of every OrderSource (the gateway: 404)."""
    with pytest.raises(OrderNotFound) as err:
        await erp.read_order("999999")
    assert isinstance(err.value, LookupError) and err.value.number == "999999"
    assert "order 999999 does not exist in SAP" in str(err.value) and "/IWBEP/CM_MGW_RT/020" not in str(err.value)


# --- the posting path --------------------------------------------------------------------------


async def test_full_posting_sequence_posts_each_once(erp: SapODataConnector, admin: Admin) -> None:
    order = await erp.read_order(await create_order(admin))
    rm1 = order.components[0]

    def backflush(quantity: str) -> GoodsMovementItem:
        return GoodsMovementItem(
            material=rm1.material, quantity=qty(quantity, "KGM"), movement_type="261",
            storage_location=rm1.storage_location, batch=rm1.batch,
            reservation=rm1.reservation, reservation_item=rm1.reservation_item,
        )

    steps: list[tuple[str, Any, str]] = [
        ("confirm_operation", ConfirmOperation(
            operation="0010", work_center="ASSY-01", yield_qty=qty("40"), scrap_qty=qty("2"), final=False,
            activities=ActivityTimes(setup_min=Decimal(15), machine_min=Decimal(40), labor_min=Decimal(42)),
            personnel="00001234", goods_movements=[backflush("84")]), key("c1")),
        ("confirm_operation", ConfirmOperation(
            operation="0010", work_center="ASSY-01", yield_qty=qty("58"), final=True,
            goods_movements=[backflush("116")]), key("c2")),
        ("goods_movement", GoodsMovement(items=[GoodsMovementItem(
            material="RM-2", quantity=qty("100"), movement_type="261")]), key("gi")),
        ("confirm_operation", ConfirmOperation(
            operation="0020", work_center="PACK-01", yield_qty=qty("98"), final=True), key("c3")),
        ("goods_receipt", GoodsReceipt(quantity=qty("98")), key("gr")),
        ("complete_order", CompleteOrder(), key("teco")),
        ("usage_decision", UsageDecision(decision="release"), key("ud")),
        ("maintenance_notification", MaintenanceNotification(
            equipment="10000042", work_center="ASSY-01", priority=2,
            description="Spindle vibration above limit on assembly cell 1, bearing noise"), key("pm")),
    ]
    documents: dict[str, list[str]] = {}
    for method, cmd, k in steps:
        result = await getattr(erp, method)(order, cmd, key=k, retry=False)
        assert not result.replayed, (method, result)
        assert result.documents, method
        documents[k] = result.documents
    # A retry of every step finds the first posting instead of posting again: the simulator takes a
    # duplicate posting (as a real S/4 may), so only the look-up by key, seen in its traffic, prevents one.
    keyed = {"confirm_operation", "goods_movement", "goods_receipt", "maintenance_notification"}
    for method, cmd, k in steps:
        since = len(await traffic(admin))
        again = await getattr(erp, method)(order, cmd, key=k, retry=True)
        assert again.replayed, method
        assert again.documents[0] == documents[k][0], method
        if method in keyed:
            await assert_lookup_before_any_post(admin, since, k, method)

    s = await state(admin)
    assert s["counts"]["confirmations"] == 3
    # SAP's own data: one document per external key.
    conf_keys = [c["ExternalSystemConfirmation"] for c in s["confirmations"]]
    doc_keys = [d.get("ReferenceDocument", "") + d.get("MaterialDocumentHeaderText", "")
                for d in s["material_documents"]]
    doc_keys = [d for d in doc_keys if d]  # the backflushes of confirmations carry none
    assert len(conf_keys) == len(set(conf_keys)) and len(doc_keys) == len(set(doc_keys))
    assert s["counts"]["material_documents"] == 4  # two backflushes with confirmations, 261, 101
    assert s["counts"]["usage_decisions"] == 1 and s["counts"]["notifications"] == 1
    confs = {c["ExternalSystemConfirmation"]: c for c in s["confirmations"]}
    c1 = confs[str(uuid.UUID(steps[0][2]))]
    assert (c1["ConfirmationYieldQuantity"], c1["ConfirmationScrapQuantity"], c1["IsFinalConfirmation"]) == (
        "40", "2", False,
    )
    assert (c1["OpConfirmedWorkQuantity2"], c1["OpWorkQuantityUnit2"], c1["Personnel"]) == ("40", "MIN", "00001234")
    assert [m["QuantityInEntryUnit"] for m in c1["goods_movements"]] == ["84"]
    assert confs[str(uuid.UUID(steps[1][2]))]["IsFinalConfirmation"] is True
    assert confs[str(uuid.UUID(steps[3][2]))]["APIConfHasNoGoodsMovements"] is True
    assert documents[steps[0][2]][0].startswith("ProdnOrdConf2 ") and documents[steps[0][2]][1].startswith(
        "MaterialDocument "
    )
    by_ref = {
        d.get("ReferenceDocument", "") + d.get("MaterialDocumentHeaderText", ""): d for d in s["material_documents"]
    }
    gi, gr = by_ref[steps[2][2]], by_ref[steps[4][2]]
    assert (gi["GoodsMovementCode"], gi["items"][0]["GoodsMovementType"]) == ("03", "261")
    assert (gr["GoodsMovementCode"], gr["items"][0]["GoodsMovementType"], gr["items"][0]["StorageLocation"]) == (
        "02", "101", "0001",
    )
    assert documents[steps[4][2]] == [f"MaterialDocument {gr['MaterialDocument']}/{gr['MaterialDocumentYear']}"]
    (snapshot,) = s["orders"]
    assert "TECO" in snapshot["system_status"]
    (ud,) = s["usage_decisions"]
    assert (ud["InspectionLotUsageDecisionCode"], ud["InspLotUsageDecisionValuation"]) == ("A", "A")
    (notif,) = s["notifications"]
    assert notif["MaintNotifExtReferenceNumber"] == steps[7][2][:20]
    assert notif["NotificationText"] == "Spindle vibration above limit on assembl"
    assert steps[7][2] in notif["MaintNotificationLongText"]
    assert (notif["TechnicalObject"], notif["MaintPriority"], notif["MainWorkCenter"]) == ("10000042", "2", "ASSY-01")


async def test_duplicate_external_key_is_a_replay_not_an_error(erp: SapODataConnector, admin: Admin) -> None:
    order = await erp.read_order(await create_order(admin))
    cmd = ConfirmOperation(operation="0010", work_center="ASSY-01", yield_qty=qty("10"))
    k = key("dup")
    first = await erp.confirm_operation(order, cmd, key=k, retry=False)
    await adm(admin, "patch", "/rules", json={"refuse_duplicate_keys": True})  # an S/4 that refuses (option)
    second = await erp.confirm_operation(order, cmd, key=k, retry=False)  # SAP answers ZPB/001
    assert second.replayed and second.documents == first.documents
    assert (await state(admin))["counts"]["confirmations"] == 1
    await adm(admin, "patch", "/rules", json={"refuse_duplicate_keys": False})


async def test_retry_after_fault_after_commit_finds_the_posting(erp: SapODataConnector, admin: Admin) -> None:
    order = await erp.read_order(await create_order(admin))
    cases: list[tuple[str, Any, str, str]] = [
        ("confirm_operation", ConfirmOperation(operation="0010", work_center="ASSY-01", yield_qty=qty("10")),
         CONF, "confirmations"),
        ("goods_receipt", GoodsReceipt(quantity=qty("10")), MATDOC, "material_documents"),
        ("maintenance_notification", MaintenanceNotification(equipment="E-1", priority=3, description="Leak"),
         PM, "notifications"),
    ]
    for method, cmd, service, table in cases:
        k = key(method)
        await adm(admin, "put", "/faults", json={"after_commit_ratio": 1, "services": [service]})
        with pytest.raises(TransientError):
            await getattr(erp, method)(order, cmd, key=k, retry=False)
        await adm(admin, "delete", "/faults")
        assert (await state(admin))["counts"][table] == 1, "the first attempt was committed"
        since = len(await traffic(admin))
        result = await getattr(erp, method)(order, cmd, key=k, retry=True)
        assert result.replayed
        await assert_lookup_before_any_post(admin, since, k, method)
        assert (await state(admin))["counts"][table] == 1, f"{method} posted twice"


async def test_csrf_token_expired_mid_run_is_fetched_again(
    erp: SapODataConnector, admin: Admin, recorder: Recorder
) -> None:
    order = await erp.read_order(await create_order(admin))
    cmd = ConfirmOperation(operation="0010", work_center="ASSY-01", yield_qty=qty("10"))
    await erp.confirm_operation(order, cmd, key=key("a"), retry=False)
    await adm(admin, "post", "/csrf/expire")
    recorder.calls.clear()
    result = await erp.confirm_operation(order, cmd, key=key("b"), retry=False)
    assert not result.replayed
    assert [c[2] for c in recorder.calls] == [403, 200, 201]  # refused, new token, posted
    assert (await state(admin))["counts"]["confirmations"] == 2


async def test_teco_rereads_the_etag_on_412(erp: SapODataConnector, admin: Admin) -> None:
    order = await erp.read_order(await create_order(admin))
    await adm(admin, "patch", "/rules", json={"reject": [
        {"service": PROD, "count": 1, "code": "ZPB/412", "message": "Precondition failed", "status": 412}
    ]})
    result = await erp.complete_order(order, CompleteOrder(), key=key("teco"), retry=False)
    assert not result.replayed
    assert "TECO" in (await state(admin))["orders"][0]["system_status"]


# --- classification ----------------------------------------------------------------------------


async def _confirm(erp: SapODataConnector, order: ProductionOrder, yield_qty: str = "10") -> None:
    cmd = ConfirmOperation(operation="0010", work_center="ASSY-01", yield_qty=qty(yield_qty))
    await erp.confirm_operation(order, cmd, key=key("x"), retry=False)


async def test_order_not_released_is_a_business_rejection(erp: SapODataConnector, admin: Admin) -> None:
    order = await erp.read_order(await create_order(admin, release=False))
    with pytest.raises(BusinessRejection) as err:
        await _confirm(erp, order)
    assert err.value.code == "BS/013"
    assert "System status CRTD is active" in err.value.message and err.value.details


async def test_period_closed_is_m7_053(erp: SapODataConnector, admin: Admin) -> None:
    order = await erp.read_order(await create_order(admin))
    await adm(admin, "patch", "/rules", json={"period_closed": True})
    with pytest.raises(BusinessRejection) as err:
        await _confirm(erp, order)
    assert err.value.code == "M7/053" and "Posting only possible in periods" in err.value.message
    with pytest.raises(BusinessRejection) as err:
        await erp.goods_receipt(order, GoodsReceipt(quantity=qty("1")), key=key("gr"), retry=False)
    assert err.value.code == "M7/053"


async def test_over_confirmation_is_a_business_rejection(erp: SapODataConnector, admin: Admin) -> None:
    order = await erp.read_order(await create_order(admin))
    with pytest.raises(BusinessRejection) as err:
        await _confirm(erp, order, "150")
    assert err.value.code == "ZPB/002"


async def test_lock_is_transient(erp: SapODataConnector, admin: Admin) -> None:
    number = await create_order(admin)
    order = await erp.read_order(number)
    await adm(admin, "patch", "/rules", json={"locked_orders": {number: "JSMITH"}})
    with pytest.raises(TransientError) as err:
        await _confirm(erp, order)
    assert err.value.code == "MC/601" and "JSMITH" in err.value.message
    with pytest.raises(TransientError):
        await erp.complete_order(order, CompleteOrder(), key=key("teco"), retry=False)


@pytest.mark.parametrize("fmt", ["html", "json"])
async def test_503_is_transient(erp: SapODataConnector, admin: Admin, fmt: str) -> None:
    order = await erp.read_order(await create_order(admin))
    await adm(admin, "put", "/faults", json={"error_503_ratio": 1, "error_503_format": fmt})
    with pytest.raises(TransientError) as err:
        await _confirm(erp, order)
    assert err.value.code == ("ZPB/503" if fmt == "json" else "HTTP/503")
    assert (await state(admin))["counts"]["confirmations"] == 0


async def test_429_is_transient(erp: SapODataConnector, admin: Admin) -> None:
    order = await erp.read_order(await create_order(admin))
    await adm(admin, "patch", "/rules", json={"reject": [
        {"service": CONF, "count": 1, "code": "ZPB/429", "message": "Too many requests", "status": 429}
    ]})
    with pytest.raises(TransientError):
        await _confirm(erp, order)


async def test_hang_is_a_transient_timeout(sap: SimulatorServer, admin: Admin) -> None:
    number = await create_order(admin)
    async with SapODataConnector(sap.url, user="PLANTBRIDGE", password="secret", timeout=1.0) as erp:
        order = await erp.read_order(number)
        await adm(admin, "put", "/faults", json={"hang_ratio": 1, "hang_seconds": 2})
        with pytest.raises(TransientError) as err:
            await _confirm(erp, order)
    assert err.value.code == "NETWORK/TIMEOUT"


async def test_wrong_password_needs_a_person(sap: SimulatorServer, admin: Admin) -> None:
    number = await create_order(admin)
    async with SapODataConnector(sap.url, user="PLANTBRIDGE", password="wrong") as erp:
        with pytest.raises(BusinessRejection) as err:
            await erp.read_order(number)
    assert err.value.code == "HTTP/401" and "logon failed" in err.value.message
    assert "wrong" not in err.value.message
