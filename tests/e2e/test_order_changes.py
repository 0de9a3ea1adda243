"""Orders change after release (issue 14), end to end over real HTTP: the SAP simulator changes the order
(admin API, as CO02 would) and emits S/4HANA's `ProductionOrder.Changed`; the gateway tells the saga
(`order_changed`: key + version), the saga reads the order over OData and acts; the MES and WMS
simulators show the change in their own data. Stack: tests/support/plant_stack.py."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from temporalio.client import Client

from plantbridge.connectors.memory import MemoryStore
from plantbridge.store import Database
from tests.support.plant_stack import A, PlantStack, dec, local_event, plant_stack
from tests.support.polling import eventually


@pytest.fixture(scope="module")
async def uc(client: Client, db: Database, reference: MemoryStore,
             tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[PlantStack]:
    async with plant_stack(client, db, reference, tmp_path_factory.mktemp("order-changes")) as stack:
        yield stack


async def change(uc: PlantStack, number: str, body: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = await uc.sap_admin("POST", f"orders/{number}/change", body)
    return result


async def status(uc: PlantStack, number: str, action: str) -> None:
    await uc.sap_admin("POST", f"orders/{number}/status", {"action": action})


async def saga_has(uc: PlantStack, number: str, check: Any, what: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        view = await uc.view(A, number)
        return view if check(view["summary"]) else None

    return await eventually(probe, 40, what=what)


async def mes_has(uc: PlantStack, number: str, check: Any, what: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        wo = await uc.work_order(A, number)
        return wo if wo is not None and check(wo) else None

    return await eventually(probe, 40, what=what)


async def test_raised_quantity_posts_the_extra_yield(uc: PlantStack) -> None:
    number = await uc.create_order(A)  # 100 ST, 10 % tolerance: 110 at most
    await uc.dispatched(A, number)
    await change(uc, number, {"quantity": "150"})
    wo = await mes_has(uc, number, lambda wo: wo["quantity"] == "150", "the MES work order at 150")
    assert [dec(s["plannedQty"]) for s in wo["routing"]] == [150, 150]
    await saga_has(uc, number, lambda s: dec(s["order"]["quantity"]["quantity"]) == 150, "the saga at 150")
    await uc.run(A, number, {"do": "start", "step": "0010"}, {"do": "finish", "step": "0010", "good": 140})
    rows = await uc.delivered(A, number)
    assert all(r["response"]["status"] == "accepted" for r in rows), rows
    await uc.settled(A, number)
    confs = (await uc.sap_of(number))["confirmations"]
    assert [dec(c["ConfirmationYieldQuantity"]) for c in confs] == [140]  # not refused as over-confirmation


async def test_cut_below_confirmed_is_an_exception(uc: PlantStack) -> None:
    number = await uc.create_order(A)
    await uc.dispatched(A, number)
    await uc.run(A, number, {"do": "start", "step": "0010"}, {"do": "report", "step": "0010", "good": 60})
    await uc.delivered(A, number)
    await uc.settled(A, number)
    await change(uc, number, {"quantity": "50"})
    view = await saga_has(uc, number, lambda s: any(e["category"] == "order_change" and e["status"] == "open"
                                                   for e in s["exceptions"]), "an order-change exception")
    [exc] = [e for e in view["summary"]["exceptions"] if e["category"] == "order_change"]
    assert "below the 60" in exc["message"]
    assert dec((await uc.sap_of(number))["order"]["TotalQuantity"]) == 50


async def test_removed_operation_is_cancelled_in_the_mes_and_its_events_refused(uc: PlantStack) -> None:
    number = await uc.create_order(A)
    await uc.dispatched(A, number)
    await change(uc, number, {"operations": [{"action": "remove", "operation": "0020"}]})
    wo = await mes_has(uc, number, lambda wo: any(s["step"] == "0020" and s["status"] == "CANCELLED"
                                                  for s in wo["routing"]), "step 0020 cancelled in the MES")
    assert wo["changeCount"] == 1
    await saga_has(uc, number, lambda s: "0020" in s["removed_operations"], "0020 removed in the saga")
    code, answer = await uc.send(f"mes-{A}", local_event(A, number, "operation_started", f"rm-{number}",
                                                         operation="0020", work_center="L3-TEST"))
    assert code == 422 or answer["status"] == "rejected", answer
    assert "removed from order" in str(answer), answer


async def test_added_component_is_staged_and_in_the_mes_bom(uc: PlantStack) -> None:
    number = await uc.create_order(A)
    await uc.dispatched(A, number)

    async def first_staging() -> list[dict[str, Any]] | None:
        return await uc.wms_of("staging-requests", number) or None

    await eventually(first_staging, what="the release staging")
    await change(uc, number, {"components": [{"action": "add", "item": "0030", "material": "SEAL-KIT-1",
                                              "quantity": "2", "unit": "ST", "operation": "0020"}]})

    async def staged_new() -> list[dict[str, Any]] | None:
        docs = await uc.wms_of("staging-requests", number)
        new = [d for d in docs if [t["material"] for t in d["tasks"]] == ["SEAL-KIT-1"]]
        return new or None

    [doc] = await eventually(staged_new, 40, what="the new component staged in the WMS")
    assert dec(doc["tasks"][0]["qty"]) == 2
    wo = await mes_has(uc, number, lambda wo: any(b["material"] == "SEAL-KIT-1" for b in wo["bom"]),
                       "the MES BOM with the new component")
    assert len(wo["bom"]) == 3


async def test_teco_mid_run_ends_postings(uc: PlantStack) -> None:
    number = await uc.create_order(A)
    await uc.dispatched(A, number)
    await uc.run(A, number, {"do": "start", "step": "0010"}, {"do": "report", "step": "0010", "good": 30})
    await uc.delivered(A, number)
    await uc.settled(A, number)
    before = await uc.sap_of(number)
    assert len(before["confirmations"]) == 1
    await status(uc, number, "teco")
    await uc.reaches(A, number, "posted", timeout=40)
    await mes_has(uc, number, lambda wo: wo["status"] == "COMPLETED", "the MES work order closed")
    # A late confirmation: the saga has ended (the gateway keeps what it cannot deliver); SAP gets nothing.
    await uc.send(f"mes-{A}", local_event(A, number, "operation_confirmed", f"late-{number}", operation="0010",
                                          work_center="L1-ASSY", yield_qty={"quantity": "5", "uom": "PCS"}))
    view = await uc.view(A, number)
    assert any("technically completed (TECO)" in t["text"] for t in view["summary"]["timeline"])
    sap = await uc.sap_of(number)
    assert len(sap["confirmations"]) == 1  # no posting after TECO
    # No goods receipt either: only the backflush of the confirmation before TECO.
    assert len(sap["material_documents"]) == len(before["material_documents"])
    assert "TECO" in sap["order"]["system_status"]


async def test_deletion_flag_cancels_with_compensations(uc: PlantStack) -> None:
    number = await uc.create_order(A)
    await uc.dispatched(A, number)
    await uc.settled(A, number)
    await status(uc, number, "deletion_flag")
    view = await uc.reaches(A, number, "cancelled", timeout=40)
    assert view["summary"]["cancel_requested_by"] == "erp"
    wo = await uc.work_order(A, number)
    assert wo is not None and wo["status"] == "RECALLED"
    kinds = {(s["kind"], s["status"]) for s in view["summary"]["steps"] if s["compensation"]}
    assert ("mes.recall", "done") in kinds and ("wms.release_staging", "done") in kinds
    assert not (await uc.sap_of(number))["confirmations"]


async def test_out_of_order_change_event_is_ignored(uc: PlantStack) -> None:
    number = await uc.create_order(A)
    await uc.dispatched(A, number)
    await change(uc, number, {"quantity": "120"})
    await saga_has(uc, number, lambda s: s["order_changes"] == 1, "the first change applied")
    # A late duplicate of an earlier Changed event: the gateway reads the order (same version), the saga
    # ignores it.
    late = {"specversion": "1.0", "type": "sap.s4.beh.productionorder.v1.ProductionOrder.Changed.v1",
            "source": "/default/sap.s4.beh/100", "id": f"late-{number}", "time": "2020-01-01T00:00:00Z",
            "data": {"ManufacturingOrder": number}}
    response = await uc.http.post(f"{uc.gateway}/v1/erp/sap/events", json=late, headers=uc.auth("erp"))
    assert response.status_code == 200, response.text
    view = await saga_has(uc, number, lambda s: any("not newer" in t["text"] for t in s["timeline"]),
                          "the late notice ignored")
    assert view["summary"]["order_changes"] == 1 and dec(view["summary"]["order"]["quantity"]["quantity"]) == 120


async def test_removed_component_is_released_in_the_wms(uc: PlantStack) -> None:
    number = await uc.create_order(A)
    await uc.dispatched(A, number)

    async def staging() -> list[dict[str, Any]] | None:
        return await uc.wms_of("staging-requests", number) or None

    [doc] = await eventually(staging, what="the release staging")
    assert sorted(t["material"] for t in doc["tasks"]) == ["RM-HOUSING", "RM-OIL"]
    await change(uc, number, {"components": [{"action": "remove", "item": "0020"}]})

    async def oil_cancelled() -> dict[str, Any] | None:
        [now] = await uc.wms_of("staging-requests", number)
        tasks = {t["material"]: t["status"] for t in now["tasks"]}
        return now if tasks["RM-OIL"] == "CANCELLED" else None

    now = await eventually(oil_cancelled, 40, what="the RM-OIL staging task cancelled in the WMS")
    assert {t["material"]: t["status"] for t in now["tasks"]}["RM-HOUSING"] == "OPEN"
    wo = await mes_has(uc, number, lambda wo: [b["material"] for b in wo["bom"]] == ["RM-HOUSING"],
                       "the MES BOM without RM-OIL")
    assert wo["changeCount"] == 1


async def test_rescheduled_order_moves_the_mes_due_date_and_rearms_the_sla(uc: PlantStack) -> None:
    number = await uc.create_order(A)
    await uc.dispatched(A, number)
    await change(uc, number, {"start": "2031-05-04", "end": "2031-05-06"})
    await mes_has(uc, number, lambda wo: str(wo.get("dueDate") or "").startswith("2031-05-06"),
                  "the MES due date moved")
    view = await saga_has(uc, number, lambda s: s["order"]["end_date"] == "2031-05-06", "the saga's end date")
    assert any("dates" in t["text"] and "2031-05-06" in t["text"] for t in view["summary"]["timeline"])
