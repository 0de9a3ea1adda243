"""The use cases, one test each, end to end over real HTTP, counted in the simulators' own data.

The module's stack (fixture `uc`):

- the S/4HANA simulator, whose business events go to the gateway (its webhook, with an `erp` key);
- two MES simulators (one per plant, each with its own resource codes and units), a QMS and a WMS;
- plant files `1710.yaml` (pieces, `L1-ASSY`/`L3-TEST`, `PCS`) and `1720.yaml` (weight, `P2-MIX`/`P2-BAG`,
  `KG`) loaded with the production loader: `erp: sap_odata`, `mes/qms/wms: rest`, cross-references
  and the plant policy (short SLAs, `consumption: aggregate`, spare parts for `PRESS-01`);
- a worker on its own task queue with `ConfiguredRegistry(plants)`;
- the gateway on a free port with the plants' `translate`, `policy_for` (plant policy + this queue)
  and `order_source = erp_order_source(plants)` (a `SapODataConnector`), as `plantbridge gateway` wires it;
- each MES's outbound pointed at the gateway with a `plant-system` key of its plant.

Sagas start through the gateway's ERP intake: the order is created and released in SAP (admin API),
SAP publishes `ProductionOrder.Changed` on release (a CloudEvent; S/4HANA has no Released type) to
`POST /v1/erp/sap/events`, the gateway reads the order back over OData and starts the saga. The shop
floor is the MES's script runner (`/admin/run`), whose events reach the gateway with the MES's local
codes. What the MES cannot send (rework, material consumption, quality results and dispositions) is
posted to the gateway as the plant system would, in the §7 wire format with the plant's local codes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from temporalio.client import Client

from plantbridge.canonical import SupervisorAction
from plantbridge.canonical.commands import StepKind, external_key
from plantbridge.connectors.memory import MemoryStore
from plantbridge.store import Database
from tests.support.plant_stack import (
    CODES,
    DECIDED,
    A,
    B,
    PlantStack,
    conf_key,
    dec,
    guid_hex,
    local_event,
    plant_stack,
)
from tests.support.polling import eventually


@pytest.fixture(scope="module")
async def uc(client: Client, db: Database, reference: MemoryStore,
             tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[PlantStack]:
    async with plant_stack(client, db, reference, tmp_path_factory.mktemp("use-cases")) as stack:
        yield stack


# --- 1. release ----------------------------------------------------------------------------------


async def test_release_dispatches_to_the_mes_and_stages_in_the_wms(uc: PlantStack) -> None:
    number = await uc.create_order(A)
    wo = await uc.dispatched(A, number)
    # The MES holds the work order with its own codes: resources and units from the plant file.
    assert wo["plant"] == A and wo["material"] == f"FG-{number}"
    assert (wo["quantity"], wo["unit"]) == ("100", "PCS")
    assert [(s["step"], s["resource"], s["status"]) for s in wo["routing"]] == [
        ("0010", "L1-ASSY", "READY"), ("0020", "L3-TEST", "READY")]
    assert sorted((b["material"], dec(b["quantity"]), b["unit"]) for b in wo["bom"]) == [
        ("RM-HOUSING", 100, "PCS"), ("RM-OIL", 5, "L")]

    async def staged() -> list[dict[str, Any]]:
        return await uc.wms_of("staging-requests", number)

    [staging] = await eventually(staged, what="the staging request in the WMS")
    assert staging["toLocation"] == "LINE-L1" and staging["status"] == "OPEN"
    assert sorted((t["material"], dec(t["qty"]), t["unit"], t["fromLocation"], t["toLocation"])
                  for t in staging["tasks"]) == [("RM-HOUSING", 100, "EA", "RM-A01", "LINE-L1"),
                                                 ("RM-OIL", 5, "LTR", "RM-A01", "LINE-L1")]
    view = await uc.settled(A, number)
    assert view["state"] == "released"
    done = {s["kind"]: s for s in view["summary"]["steps"]}
    assert done["mes.dispatch"]["status"] == "done" and done["wms.stage"]["status"] == "done"
    assert done["wms.stage"]["result"]["documents"] == [f"WMS {staging['stagingId']}"]
    # The saga was started by SAP's own release event, delivered to the gateway's ERP intake.
    async def release_delivered() -> list[dict[str, Any]]:
        deliveries = await uc.sap_admin("GET", "events")
        return [d for d in deliveries if d["type"].endswith(".Changed.v1") and d["status"] == "delivered"
                and d["subject"] in (number, number.zfill(12))]

    assert len(await eventually(release_delivered, what="SAP's release event delivered")) == 1
    # Dispatched once, staged once, even though SAP sent Created and Changed.
    assert len((await uc.mes_get(A, "/api/v2/workorders", orderNo=number))["items"]) == 1


# --- 2. confirmations ----------------------------------------------------------------------------


async def test_partial_and_final_confirmations_post_once_each_and_are_acknowledged(uc: PlantStack) -> None:
    number = await uc.create_order(A)
    await uc.dispatched(A, number)
    first = await uc.run(A, number,
                         {"do": "start", "step": "0010"},
                         {"do": "report", "step": "0010", "good": 30, "scrap": 2, "scrapCode": "S-SCRATCH",
                          "laborMin": 20, "machineMin": 15, "operator": "op-7"},
                         {"do": "report", "step": "0010", "good": 20, "setupMin": 10})
    assert len(first) == 3  # started, two partial reports
    await uc.delivered(A, number)
    # Rework is reported at the line terminal, not by the MES's API: the plant system sends it itself.
    rework_id = f"mes{A}-rw-{number}"
    status, answer = await uc.send(f"mes-{A}", local_event(
        A, number, "operation_confirmed", rework_id, operation="0010", work_center="L1-ASSY",
        yield_qty={"quantity": "5", "uom": "PCS"}, rework_qty={"quantity": "3", "uom": "PCS"}, reason="S-DENT"))
    assert answer["status"] == "accepted" and (status, answer["erp"]["status"]) in DECIDED, answer
    final = await uc.run(A, number, {"do": "finish", "step": "0010", "good": 43, "laborMin": 25, "machineMin": 30})
    rows = await uc.delivered(A, number)
    await uc.settled(A, number)
    # The gateway's synchronous answers, kept by the MES: every confirmation accepted (and posted, unless
    # SAP took longer than the gateway's ack_wait: then 202 pending, and the business acknowledgement follows).
    answers = {r["event_id"]: (r["http_status"], r["response"]) for r in rows}
    for event_id in (first[1], first[2], final[0]):
        http_status, body = answers[event_id]
        assert body["status"] == "accepted", body
        assert (http_status, body["erp"]["status"]) in DECIDED, body

    expected = {  # event -> (yield, scrap, rework, reason, final, setup, machine, labor)
        first[1]: (30, 2, 0, "SCR1", False, 0, 15, 20),
        first[2]: (20, 0, 0, None, False, 10, 0, 0),
        rework_id: (5, 0, 3, "SCR2", False, None, None, None),
        final[0]: (43, 0, 0, None, True, 0, 30, 25),
    }
    confs = (await uc.sap_of(number))["confirmations"]
    assert len(confs) == 4, confs  # each once
    by_key = {guid_hex(c["ExternalSystemConfirmation"]): c for c in confs}
    assert len(by_key) == 4
    for event_id, (yld, scrap, rework, reason, is_final, setup, machine, labor) in expected.items():
        conf = by_key[conf_key(A, number, event_id)]
        assert conf["OrderOperation"] == "0010" and conf["WorkCenter"] == "ASSY-01", conf
        assert (dec(conf["ConfirmationYieldQuantity"]), dec(conf["ConfirmationScrapQuantity"]),
                dec(conf["ConfirmationReworkQuantity"])) == (yld, scrap, rework), conf
        assert conf["ConfirmationUnit"] == "ST"
        assert bool(conf["IsFinalConfirmation"]) is is_final and (conf["FinalConfirmationType"] == "X") is is_final
        assert (conf.get("VarianceReasonCode") or None) == reason, conf
        if setup is not None:
            assert (dec(conf["OpConfirmedWorkQuantity1"]), dec(conf["OpConfirmedWorkQuantity2"]),
                    dec(conf["OpConfirmedWorkQuantity3"])) == (setup, machine, labor), conf
        # The MES got an OK business acknowledgement naming SAP's document.
        ack = await uc.acked(A, event_id)
        documents = ack["erpDocument"].split(", ")  # the confirmation, then its backflush material document
        assert documents[0] == f"ProdnOrdConf2 {conf['ConfirmationGroup']}/{conf['ConfirmationCount']}", ack
        assert ack["revision"] == 1 and ack["matched"] is (event_id != rework_id)
    assert first[0] not in {a["transactionRef"] for a in (await uc.mes_get(A, "/api/v2/acknowledgements",
                                                                           orderNo=number))["items"]}
    view = await uc.view(A, number)
    op = view["summary"]["operations"]["0010"]
    assert (dec(op["yield_total"]), dec(op["scrap_total"]), op["final"]) == (98, 2, True)
    assert view["state"] == "partially_confirmed"


# --- 3. material issue and backflush -------------------------------------------------------------


async def test_aggregated_consumption_posts_one_goods_issue_and_backflush_goes_with_confirmations(
    uc: PlantStack,
) -> None:
    number = await uc.create_order(A)
    await uc.dispatched(A, number)
    events = await uc.run(A, number,
                          {"do": "start", "step": "0010"},
                          {"do": "report", "step": "0010", "good": 40},
                          {"do": "finish", "step": "0010", "good": 60},
                          {"do": "start", "step": "0020"})
    await uc.delivered(A, number)
    consumed = []
    for i, litres in enumerate(("1.5", "2", "1.25")):
        event_id = f"mes{A}-mc-{number}-{i}"
        status, answer = await uc.send(f"mes-{A}", local_event(
            A, number, "material_consumed", event_id, material="RM-OIL", quantity={"quantity": litres, "uom": "L"},
            storage_location="0001"))
        assert status == 202 and answer["status"] == "accepted", answer
        assert answer["erp"]["status"] == "pending" and "aggregated" in answer["erp"]["message"], answer
        consumed.append(event_id)
    await uc.settled(A, number)
    sap = await uc.sap_of(number)
    assert not [i for d in sap["material_documents"] for i in d["items"] if i["Material"] == "RM-OIL"]
    # Operation 0020 ends: the buffered consumption is posted, summed, in one document.
    last = await uc.run(A, number, {"do": "finish", "step": "0020", "good": 100})
    await uc.reaches(A, number, "posted")
    sap = await uc.sap_of(number)
    oil = [(d, i) for d in sap["material_documents"] for i in d["items"] if i["Material"] == "RM-OIL"]
    assert len(oil) == 1, oil
    doc, item = oil[0]
    assert item["GoodsMovementType"] == "261" and dec(item["QuantityInEntryUnit"]) == Decimal("4.75")
    assert item["EntryUnit"] == "L" and item["StorageLocation"] == "0001"
    assert doc["MaterialDocumentHeaderText"] and doc["ReferenceDocument"]
    for event_id in consumed:  # one acknowledgement per event of the aggregated posting
        ack = await uc.acked(A, event_id)
        assert ack["erpDocument"] == f"MaterialDocument {doc['MaterialDocument']}/{doc['MaterialDocumentYear']}"
    # Backflush: RM-HOUSING goes with the confirmations of 0010 (40 and 60 of 100), nothing with 0020.
    confs = {guid_hex(c["ExternalSystemConfirmation"]): c for c in sap["confirmations"]}
    assert len(confs) == 3
    for event_id, qty in ((events[1], 40), (events[2], 60)):
        conf = confs[conf_key(A, number, event_id)]
        moves = [(m["Material"], m["GoodsMovementType"], dec(m["QuantityInEntryUnit"]))
                 for m in conf["goods_movements"]]
        assert moves == [("RM-HOUSING", "261", qty)], conf
    conf_0020 = confs[conf_key(A, number, last[0])]
    assert conf_0020["goods_movements"] == [] and conf_0020["APIConfHasNoGoodsMovements"] in (True, "X")
    housing = [i for d in sap["material_documents"] for i in d["items"] if i["Material"] == "RM-HOUSING"]
    assert sorted(dec(i["QuantityInEntryUnit"]) for i in housing) == [40, 60]
    assert all(i["GoodsMovementType"] == "261" for i in housing)


# --- 4. quality hold and disposition -------------------------------------------------------------


@pytest.mark.parametrize("variant", ["scrap", "release"])
async def test_failed_inspection_holds_blocks_and_disposition_posts_the_usage_decision(
    uc: PlantStack, variant: str,
) -> None:
    number = await uc.create_order(A, inspection="03")  # in-process inspection: the lot exists at release
    material = f"FG-{number}"
    await uc.dispatched(A, number)
    await uc.run(A, number, {"do": "start", "step": "0010"}, {"do": "report", "step": "0010", "good": 40})
    await uc.settled(A, number)
    response = await uc.http.put(f"{uc.wms}/admin/stock",  # what the line produced so far, at the output
                                 json={"material": material, "location": "PROD-OUT", "qty": "40", "unit": "EA"})
    response.raise_for_status()

    result_id = f"qms{A}-res-{number}"
    status, answer = await uc.send("qms", local_event(
        A, number, "quality_result", result_id, source=f"qms-{A}", operation="0010", passed=False,
        characteristics=[{"name": "DIA-OUT", "value": "10.09", "unit": "MMT", "ok": False},
                         {"name": "VISUAL", "value": "ok", "ok": True}]))
    assert status == 200 and answer["status"] == "accepted" and answer["order_state"] == "quality_hold", answer

    async def blocked() -> dict[str, Any] | None:
        stock = await uc.wms_get("stock", material=material)
        return stock if stock["activeBlocks"] else None

    stock = await eventually(blocked, what="the WMS block")
    assert (dec(stock["blocked"]), dec(stock["available"])) == (40, 0), stock
    [block] = await uc.wms_of("stock-blocks", number)
    assert (block["status"], block["location"], block["reasonCode"]) == ("ACTIVE", "PROD-OUT", "QC-HOLD")
    view = await uc.settled(A, number)
    assert view["state"] == "quality_hold" and view["on_hold"] is True
    assert (await uc.work_order(A, number) or {})["status"] == "ON_HOLD"
    [lot] = (await uc.qms_get("lots", order=number))["items"]
    assert {(r["charCode"], r["verdict"]) for r in lot["results"]} >= {("DIA-OUT", "REJECT"), ("VISUAL", "ACCEPT")}
    alerts = await uc.reference.calls("notify", "alert", number)
    assert any(a.payload["topic"] == "quality_hold" for a in alerts), alerts

    if variant == "scrap":  # QA decides in the QMS: scrap 5 pieces
        status, answer = await uc.send("qms", local_event(
            A, number, "quality_disposition", f"qms{A}-disp-{number}", source=f"qms-{A}", decision="scrap",
            quantity={"quantity": "5", "uom": "PCS"}, reason="burr on flange"))
        assert answer["status"] == "accepted" and (status, answer["erp"]["status"]) in DECIDED, answer
    else:  # the supervisor releases the hold through the gateway
        await uc.supervisor("POST", f"/v1/orders/{A}/{number}/release-hold", {"reason": "re-inspected, OK"})

    view = await uc.reaches(A, number, "partially_confirmed")
    assert view["on_hold"] is False
    view = await uc.settled(A, number)

    async def unblocked() -> dict[str, Any] | None:
        stock = await uc.wms_get("stock", material=material)
        return stock if not stock["activeBlocks"] else None

    stock = await eventually(unblocked, what="the WMS block released")
    assert (dec(stock["blocked"]), dec(stock["available"])) == (0, 40), stock
    [block] = await uc.wms_of("stock-blocks", number)
    assert block["status"] == "RELEASED"
    assert (await uc.work_order(A, number) or {})["status"] == "IN_PROGRESS"
    sap = await uc.sap_of(number)
    [sap_lot] = sap["inspection_lots"]
    [ud] = sap["usage_decisions"]  # once
    assert ud["InspectionLot"] == sap_lot["InspectionLot"]
    assert ud["InspectionLotUsageDecisionCode"] == ("R" if variant == "scrap" else "A"), ud
    assert ud["InspLotUsageDecisionValuation"] == ("R" if variant == "scrap" else "A"), ud
    scrapped = [i for d in sap["material_documents"] for i in d["items"] if i["GoodsMovementType"] == "551"]
    if variant == "scrap":
        assert [(i["Material"], dec(i["QuantityInEntryUnit"]), i["EntryUnit"]) for i in scrapped] == [
            (material, 5, "ST")], scrapped
        # The QMS's events are not acknowledged in the MES: it was not their source.
        assert await uc.ack(A, f"qms{A}-disp-{number}") is None
        assert await uc.ack(A, result_id) is None
    else:
        assert scrapped == []
    assert not view["summary"]["exceptions"]


# --- 5. maintenance ------------------------------------------------------------------------------


async def test_maintenance_request_runs_a_child_workflow_notification_reservation_and_alert(uc: PlantStack) -> None:
    number = await uc.create_order(A)
    await uc.dispatched(A, number)
    events = await uc.run(A, number, {"do": "start", "step": "0010"},
                          {"do": "maintenance", "equipment": "PRESS-01", "priority": 2,
                           "text": "hydraulic leak at press 1"})
    request_id = events[-1]
    child_id = f"maintenance:{A}:{number}:{request_id}"
    ref20 = external_key(f"{child_id}:{StepKind.ERP_MAINTENANCE_NOTIFICATION.value}")[:20]

    async def notified() -> list[dict[str, Any]]:
        return [n for n in (await uc.sap_of(number))["notifications"] if n["MaintNotifExtReferenceNumber"] == ref20]

    [notification] = await eventually(notified, what="the SAP maintenance notification")
    assert notification["TechnicalObject"] == "PRESS-01" and notification["MaintPriority"] == "2", notification
    assert notification["MainWorkCenter"] == "ASSY-01" and notification["MaintenancePlanningPlant"] == A
    assert notification["NotificationText"] == "hydraulic leak at press 1"

    async def reserved() -> list[dict[str, Any]]:
        return await uc.wms_of("reservations", number)

    [reservation] = await eventually(reserved, what="the spare-part reservation in the WMS")
    assert (reservation["material"], dec(reservation["qty"]), reservation["unit"], reservation["location"],
            reservation["equipment"], reservation["status"]) == ("SEAL-KIT-1", 2, "EA", "SP-01", "PRESS-01",
                                                                 "RESERVED")

    async def alerted() -> list[Any]:
        calls = await uc.reference.calls("notify", "alert", number)
        return [c for c in calls if c.payload["topic"] == "maintenance"]

    [alert] = await eventually(alerted, what="the maintenance alert")
    assert "PRESS-01" in alert.payload["message"]

    child = uc.client.get_workflow_handle(child_id)
    desc = await child.describe()
    assert desc.workflow_type == "MaintenanceRequest" and desc.parent_id == f"production-order:{A}:{number}"
    view = await uc.view(A, number)
    assert [(m["status"], m["workflow_id"]) for m in view["summary"]["maintenance"]] == [("started", child_id)]
    assert view["state"] == "in_progress"  # the order does not wait for the repair
    await child.signal("complete_maintenance", SupervisorAction(by="tech.lee", reason="seal replaced"))
    result = await asyncio.wait_for(child.result(), 30)
    assert result["status"] == "completed" and result["completed_by"] == "tech.lee"
    assert [(s["kind"], s["status"]) for s in result["steps"]] == [
        ("erp.maintenance_notification", "done"), ("wms.reserve", "done")]
    assert len(await notified()) == 1 and len(await reserved()) == 1  # once each


# --- 6. completion -------------------------------------------------------------------------------


async def test_completion_posts_goods_receipt_transfers_and_reports_shipment_readiness(uc: PlantStack) -> None:
    number = await uc.create_order(A)
    material = f"FG-{number}"
    await uc.dispatched(A, number)
    events = await uc.run(A, number,
                          {"do": "start", "step": "0010"}, {"do": "finish", "step": "0010", "good": 100},
                          {"do": "start", "step": "0020"},
                          {"do": "finish", "step": "0020", "good": 100, "laborMin": 20, "machineMin": 15})
    assert len(events) == 4
    view = await uc.reaches(A, number, "posted")
    result = await asyncio.wait_for(uc.client.get_workflow_handle(view["workflow_id"]).result(), 30)
    assert result["state"] == "posted" and not result["exceptions"]
    sap = await uc.sap_of(number)
    receipts = [i for d in sap["material_documents"] for i in d["items"] if i["GoodsMovementType"] == "101"]
    assert [(i["Material"], dec(i["QuantityInEntryUnit"]), i["EntryUnit"], i["StorageLocation"]) for i in receipts] \
        == [(material, 100, "ST", "0001")]
    assert sap["order"]["OrderIsTechnicallyCompleted"] in (True, "X"), sap["order"]
    assert "TECO" in sap["order"]["system_status"], sap["order"]
    assert len(sap["confirmations"]) == 2 and all(c["IsFinalConfirmation"] for c in sap["confirmations"])
    [transfer] = await uc.wms_of("transfers", number)
    assert (transfer["material"], dec(transfer["qty"]), transfer["unit"], transfer["fromLocation"],
            transfer["toLocation"], transfer["status"]) == (material, 100, "EA", "PROD-OUT", "FG-01", "CONFIRMED")
    [ready] = await uc.wms_of("shipment-readiness", number)
    assert (ready["status"], dec(ready["qty"]), dec(ready["availableQty"]), ready["location"]) == (
        "READY", 100, 100, "FG-01")
    stock = await uc.wms_get("stock", material=material, location="FG-01")
    assert dec(stock["onHand"]) == 100 and dec(stock["available"]) == 100
    assert (await uc.work_order(A, number) or {})["status"] == "COMPLETED"
    kinds = [s["kind"] for s in view["summary"]["steps"] if s["event_id"] == "completion"]
    assert kinds == ["erp.goods_receipt", "erp.complete_order", "wms.transfer", "wms.shipment_ready"]


# --- 7. a rejected posting -----------------------------------------------------------------------


async def test_rejected_posting_is_nok_to_the_mes_then_ok_after_retry_and_posted_once(uc: PlantStack) -> None:
    number = await uc.create_order(A)
    await uc.dispatched(A, number)
    await uc.run(A, number, {"do": "start", "step": "0010"}, {"do": "report", "step": "0010", "good": 50})
    await uc.settled(A, number)
    await uc.sap_admin("PATCH", "rules", {"period_closed": True})
    try:
        [final_id] = await uc.run(A, number, {"do": "finish", "step": "0010", "good": 50})
        nok = await uc.acked(A, final_id, "NOK")
        assert "Posting only possible in periods" in nok["text"], nok
        assert nok["text"].startswith("rejected by the ERP") and nok["matched"] is True
        [row] = [r for r in await uc.delivered(A, number) if r["event_id"] == final_id]
        # The gateway's synchronous answer to the MES (pending only if SAP answered after ack_wait).
        assert row["response"]["erp"]["status"] in ("rejected", "pending"), row
        view = await uc.view(A, number)
        [exc] = [e for e in view["summary"]["exceptions"] if e["status"] == "open"]
        assert exc["erp_code"] == "M7/053" and exc["event_id"] == final_id
        assert not [c for c in (await uc.sap_of(number))["confirmations"]
                    if guid_hex(c["ExternalSystemConfirmation"]) == conf_key(A, number, final_id)]
    finally:
        await uc.sap_admin("PATCH", "rules", {"period_closed": False})  # FI opens the period
    await uc.supervisor("POST", f"/v1/orders/{A}/{number}/exceptions/{exc['id']}/resolve",
                        {"action": "retry", "comment": "period opened by FI"})
    ok = await uc.acked(A, final_id, "OK", revision=2)
    assert ok["erpDocument"].startswith("ProdnOrdConf2 ") and ok["text"].startswith("posted")
    view = await uc.settled(A, number)
    [exc] = view["summary"]["exceptions"]
    assert view["open_exceptions"] == 0 and exc["status"] == "resolved" and exc["resolved_by"].startswith("uc-")
    confs = (await uc.sap_of(number))["confirmations"]
    mine = [c for c in confs if guid_hex(c["ExternalSystemConfirmation"]) == conf_key(A, number, final_id)]
    assert len(mine) == 1 and mine[0]["IsFinalConfirmation"], confs
    assert len(confs) == 2
    assert ok["erpDocument"].startswith(f"ProdnOrdConf2 {mine[0]['ConfirmationGroup']}/{mine[0]['ConfirmationCount']}")


# --- 8. two plants -------------------------------------------------------------------------------


async def _run_plant(uc: PlantStack, plant: str, number: str) -> list[str]:
    unit_qty = 100 if plant == A else 500
    partial, scrap = unit_qty * 2 // 5, 2
    _r1, _r2, _wc1, _wc2, _unit, _sap_unit, code, _reason = CODES[plant]
    await uc.dispatched(plant, number)
    return await uc.run(plant, number,
                        {"do": "start", "step": "0010"},
                        {"do": "report", "step": "0010", "good": partial, "scrap": scrap, "scrapCode": code},
                        {"do": "finish", "step": "0010", "good": unit_qty - partial - scrap},
                        {"do": "start", "step": "0020"},
                        {"do": "finish", "step": "0020", "good": unit_qty - scrap})


async def test_two_plants_side_by_side_with_their_own_codes_and_units(uc: PlantStack) -> None:
    numbers = {A: await uc.create_order(A), B: await uc.create_order(B)}
    events = dict(zip((A, B), await asyncio.gather(*(_run_plant(uc, p, n) for p, n in numbers.items())),
                      strict=True))
    for plant, number in numbers.items():
        r1, r2, wc1, wc2, unit, sap_unit, _code, reason = CODES[plant]
        total = 100 if plant == A else 500
        await uc.reaches(plant, number, "posted", timeout=45)
        # The MES of the plant: its resources and unit; the other plant's MES never saw the order.
        wo = await uc.work_order(plant, number)
        assert wo is not None and wo["status"] == "COMPLETED" and wo["unit"] == unit
        assert [s["resource"] for s in wo["routing"]] == [r1, r2]
        other = B if plant == A else A
        assert await uc.work_order(other, number) is None
        # SAP: work centers, units and reasons mapped; each confirmation once, acknowledged OK.
        sap = await uc.sap_of(number)
        confs = {guid_hex(c["ExternalSystemConfirmation"]): c for c in sap["confirmations"]}
        assert len(confs) == 3 and len(sap["confirmations"]) == 3
        started1, partial, final1, started2, final2 = events[plant]
        good = total * 2 // 5
        expect = {partial: ("0010", wc1, good, 2, reason), final1: ("0010", wc1, total - good - 2, 0, None),
                  final2: ("0020", wc2, total - 2, 0, None)}
        for event_id, (op, wc, yld, scrap, why) in expect.items():
            conf = confs[conf_key(plant, number, event_id)]
            assert (conf["OrderOperation"], conf["WorkCenter"], conf["ConfirmationUnit"], conf["Plant"]) == (
                op, wc, sap_unit, plant), conf
            assert (dec(conf["ConfirmationYieldQuantity"]), dec(conf["ConfirmationScrapQuantity"])) == (yld, scrap)
            assert (conf.get("VarianceReasonCode") or None) == why
            ack = await uc.acked(plant, event_id)
            assert ack["matched"] is True
        assert conf_key(plant, number, started1) not in confs and conf_key(plant, number, started2) not in confs
        receipts = [i for d in sap["material_documents"] for i in d["items"] if i["GoodsMovementType"] == "101"]
        assert [(i["Plant"], dec(i["QuantityInEntryUnit"]), i["EntryUnit"]) for i in receipts] == [
            (plant, total - 2, sap_unit)]
        backflush = [i for d in sap["material_documents"] for i in d["items"] if i["GoodsMovementType"] == "261"]
        assert sum(dec(i["QuantityInEntryUnit"]) for i in backflush) == total  # component = order quantity
        assert sap["order"]["OrderIsTechnicallyCompleted"] in (True, "X")
        [staging] = await uc.wms_of("staging-requests", number)
        assert (staging["toLocation"], staging["tasks"][0]["fromLocation"], staging["tasks"][0]["unit"]) == (
            ("LINE-L1", "RM-A01", "EA") if plant == A else ("LINE-L2", "RM-B01", "KG"))
        [transfer] = await uc.wms_of("transfers", number)
        assert (dec(transfer["qty"]), transfer["unit"]) == (total - 2, "EA" if plant == A else "KG")
