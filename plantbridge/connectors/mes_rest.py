"""The MES connector ("LineControl MES", REST API v2): dispatch, recall, hold, acknowledgements.

Mapping (ERP / canonical -> the MES's own codes, by reading the plant file's tables backwards):

- work center -> MES resource: the local code of `xref.work_centers` whose ERP code is the order's
  work center. An unmapped work center passes through only when the MES already knows a resource
  of that name (`GET /resources/{code}`); otherwise `BusinessRejection` code ``XREF-WORK-CENTER``
  ("no MES resource for work center ASSY-01: add it to xref.work_centers in the plant file").
- unit -> MES unit (``PCS``, ``SET``, ``KG``, ``G``, ``M``, ``L``): the local code of `xref.units`
  the MES accepts, else the UN/ECE code itself when the MES accepts it (``SET``), else
  ``XREF-UNIT``. The MES has no built-in defaults: the plant file's `xref.units` is its unit table.
- hold reason -> MES hold code: a reason that is (or maps back through `xref.reasons` to) an MES
  hold code ``H-*`` is sent as code; any other text goes as `text` with code ``H-QUAL``.

Replays ("already done" is success, `replayed=True`): an identical re-dispatch (the MES answers
200 with the existing work order), a recall of a recalled order, a hold of a held order, lifting
a hold that is not there, an acknowledgement the MES already holds with the same content (looked
up on `retry`). Other 409s (``WO-409`` e.g. holding a recalled order, ``WO-409-DUP`` the order is
dispatched with other data) are business rejections carrying the MES's code.

Acknowledgement: ``{transactionRef: cmd.event_id, result, erpDocument, text}`` with
posted / overridden -> ``OK`` (the ERP documents; an override says who posted by hand),
rejected -> ``NOK`` with the ERP's message, skipped -> ``OK`` with a text saying a supervisor
skipped the ERP posting (nothing for the MES to redo, and nothing was posted).
"""

from __future__ import annotations

from typing import Any

from plantbridge.canonical.commands import Acknowledge, ChangeOrder, Dispatch, Hold, Recall, StepResult
from plantbridge.canonical.order import ProductionOrder
from plantbridge.connectors.errors import BusinessRejection
from plantbridge.connectors.rest_common import (
    RestConnector,
    decimal_text,
    local_unit,
)

SYSTEM = "mes"
API = "/api/v2"
MES_UNITS = frozenset({"PCS", "SET", "KG", "G", "M", "L"})
MES_HOLD_CODES = frozenset({"H-QUAL", "H-MATL", "H-ENG", "H-CUST"})
DEFAULT_HOLD_CODE = "H-QUAL"
RECALLED, ON_HOLD, COMPLETED = "RECALLED", "ON_HOLD", "COMPLETED"


def _doc(wo: dict[str, Any]) -> str:
    return f"MES {wo['workOrderId']}"


class MesRestConnector(RestConnector):
    SYSTEM = SYSTEM
    DEV_KEY = "mes-dev-key"

    # --- mapping --------------------------------------------------------------------------

    def unit(self, unece: str) -> str:
        return local_unit(unece, plant=self.plant, system=SYSTEM, accepted=MES_UNITS)

    async def resource(self, work_center: str) -> str:
        for local, erp in self.plant.xref.work_centers.items():
            if erp == work_center:
                return local
        try:
            await self.http.call("GET", f"{API}/resources/{work_center}", doing=f"look up resource {work_center}")
        except BusinessRejection as err:
            if err.code not in ("RES-404", "API-404"):
                raise
            raise BusinessRejection(
                f"no MES resource for work center {work_center}: add it to xref.work_centers in the plant file "
                f"of plant {self.plant.plant}",
                system=SYSTEM, code="XREF-WORK-CENTER",
                details=[f"xref.work_centers: <MES resource>: {work_center}"],
            ) from None
        return work_center

    def hold_code(self, reason: str) -> str:
        if reason in MES_HOLD_CODES:
            return reason
        for local, erp in self.plant.xref.reasons.items():
            if erp == reason and local in MES_HOLD_CODES:
                return local
        return DEFAULT_HOLD_CODE

    async def work_order_body(self, order: ProductionOrder) -> dict[str, Any]:
        unit = self.unit(order.quantity.uom)
        routing = []
        for op in sorted(order.operations, key=lambda o: o.number):
            routing.append({
                "step": op.number,
                "resource": await self.resource(op.work_center),
                "description": op.description[:80],
                "plannedQty": decimal_text(op.planned_qty.quantity),
            })
        bom = [
            {"material": comp.material, "quantity": decimal_text(comp.quantity.quantity),
             "unit": self.unit(comp.quantity.uom), **({"step": comp.operation} if comp.operation else {})}
            for comp in order.components
        ]
        return {
            "orderNo": order.number,
            "plant": order.plant,
            "material": order.material,
            "materialText": order.description[:80],
            "quantity": decimal_text(order.quantity.quantity),
            "unit": unit,
            "routing": routing,
            "bom": bom,
        }

    # --- look-ups -------------------------------------------------------------------------

    async def work_orders(self, order: ProductionOrder) -> list[dict[str, Any]]:
        body = await self.http.json("GET", f"{API}/workorders", params={"orderNo": order.number},
                                    doing=f"list work orders of order {order.number}")
        items: list[dict[str, Any]] = body.get("items", [])
        return sorted(items, key=lambda wo: str(wo["workOrderId"]))

    async def current(self, order: ProductionOrder) -> dict[str, Any] | None:
        """The order's live work order (the latest not recalled), else its latest one."""
        wos = await self.work_orders(order)
        live = [wo for wo in wos if wo["status"] != RECALLED]
        candidates = live or wos
        return candidates[-1] if candidates else None

    # --- the port -------------------------------------------------------------------------

    async def dispatch(self, order: ProductionOrder, cmd: Dispatch, *, key: str, retry: bool) -> StepResult:
        # The MES recognises an identical dispatch itself (200 + the existing work order), so a
        # retry needs no separate look-up: the POST is the look-up.
        body = await self.work_order_body(order)
        response = await self.http.call("POST", f"{API}/workorders", json=body,
                                        doing=f"dispatch order {order.number}")
        wo = response.json()
        replayed = response.status_code == 200
        what = "already dispatched as" if replayed else "dispatched as"
        return StepResult(documents=[_doc(wo)], message=f"order {order.number} {what} {wo['workOrderId']}",
                          replayed=replayed)

    async def change_order(self, order: ProductionOrder, cmd: ChangeOrder, *, key: str, retry: bool) -> StepResult:
        """The ERP changed the order: the live work order follows (`POST /workorders/{id}/change`).

        The body is the MES's own: the order's quantity, routing and BOM as they are now (steps the MES
        no longer finds in the routing are cancelled there), `close` for TECO. `changeRef` (the step's
        key) makes a retry harmless: the MES answers a change it already applied with that change.
        """
        wo = await self.current(order)
        if wo is None or wo["status"] in (RECALLED, COMPLETED):
            state = "no live work order" if wo is None else f"work order {wo['workOrderId']} {wo['status']}"
            return StepResult(documents=[_doc(wo)] if wo else [], replayed=True,
                              message=f"order {order.number}: {state} in the MES; nothing to change")
        body = await self.work_order_body(order)
        change = {"changeRef": key, "quantity": body["quantity"], "routing": body["routing"], "bom": body["bom"],
                  "close": cmd.close, "reason": cmd.summary[:200], "erpVersion": cmd.version}
        if order.end_date is not None:  # the ERP's (plant-local) end date, due at its end
            change["dueDate"] = f"{order.end_date.isoformat()}T23:59:59Z"
        done = await self.http.json("POST", f"{API}/workorders/{wo['workOrderId']}/change", json=change,
                                    doing=f"change {wo['workOrderId']}")
        return StepResult(documents=[_doc(done)],
                          message=f"{done['workOrderId']} changed ({done['status']}, change {done.get('changeCount')})")

    async def recall(self, order: ProductionOrder, cmd: Recall, *, key: str, retry: bool) -> StepResult:
        wo = await self.current(order)
        if wo is None:
            return StepResult(message=f"order {order.number} was never dispatched to the MES; nothing to recall")
        if wo["status"] == RECALLED:
            return StepResult(documents=[_doc(wo)], message=f"{wo['workOrderId']} is already recalled",
                              replayed=True)
        done = await self.http.json("POST", f"{API}/workorders/{wo['workOrderId']}/recall",
                                    json={"reason": (cmd.reason or "")[:120]},
                                    doing=f"recall {wo['workOrderId']}")
        return StepResult(documents=[_doc(done)], message=f"{done['workOrderId']} recalled")

    async def hold(self, order: ProductionOrder, cmd: Hold, *, key: str, retry: bool) -> StepResult:
        wo = await self.current(order)
        if wo is None:
            raise BusinessRejection(f"order {order.number} has no work order in the MES", system=SYSTEM,
                                    code="WO-404")
        wo_id = wo["workOrderId"]
        if cmd.released:
            if wo["status"] != ON_HOLD:
                return StepResult(documents=[_doc(wo)], message=f"{wo_id} is not on hold ({wo['status']})",
                                  replayed=True)
            try:
                done = await self.http.json("POST", f"{API}/workorders/{wo_id}/unhold",
                                            json={"text": cmd.reason[:200]}, doing=f"release the hold of {wo_id}")
            except BusinessRejection as err:
                if err.code != "WO-409":  # lifted meanwhile (shop floor): already done
                    raise
                return StepResult(documents=[_doc(wo)], message=f"{wo_id} is no longer on hold", replayed=True)
            return StepResult(documents=[_doc(done)], message=f"{wo_id} hold released, {done['status']}")
        if wo["status"] == ON_HOLD:
            return StepResult(documents=[_doc(wo)], message=f"{wo_id} is already on hold", replayed=True)
        code = self.hold_code(cmd.reason)
        done = await self.http.json(
            "POST", f"{API}/workorders/{wo_id}/hold",
            json={"reasonCode": code, "text": cmd.reason[:200], "source": "INTEGRATION"},
            doing=f"hold {wo_id}",
        )
        return StepResult(documents=[_doc(done)], message=f"{wo_id} on hold ({code})")

    @staticmethod
    def acknowledgement(cmd: Acknowledge) -> dict[str, Any]:
        documents = ", ".join(cmd.documents)
        if cmd.status == "rejected":
            result, text = "NOK", f"rejected by the ERP: {cmd.message or 'no message'}"
        elif cmd.status == "skipped":
            result = "OK"
            text = "ERP posting skipped by a supervisor; nothing was posted"
            text += f": {cmd.message}" if cmd.message else ""
        elif cmd.status == "overridden":
            result = "OK"
            text = f"posted by hand in the ERP ({documents or 'no document'}), confirmed by a supervisor"
        else:
            result, text = "OK", f"posted: {documents}" if documents else "posted"
        return {"transactionRef": cmd.event_id, "result": result, "erpDocument": documents[:80] or None,
                "text": text[:500]}

    async def acknowledge(self, order: ProductionOrder, cmd: Acknowledge, *, key: str, retry: bool) -> StepResult:
        """One acknowledgement per plant event; an aggregated posting acknowledges each event in it."""
        by_event = cmd.documents_by_event
        results = [await self._acknowledge_one(cmd.model_copy(update={
            "event_id": event_id, "also": [], "documents_by_event": {},
            "documents": by_event.get(event_id, cmd.documents) if by_event else cmd.documents}), retry)
            for event_id in (cmd.event_id, *cmd.also)]
        if len(results) == 1:
            return results[0]
        return StepResult(documents=[d for r in results for d in r.documents],
                          replayed=all(r.replayed for r in results),
                          message=f"{len(results)} events acknowledged")

    async def _acknowledge_one(self, cmd: Acknowledge, retry: bool) -> StepResult:
        body = self.acknowledgement(cmd)
        if retry:
            found = await self.http.json("GET", f"{API}/acknowledgements", params={"transactionRef": cmd.event_id},
                                         doing=f"look up the acknowledgement of {cmd.event_id}")
            for ack in found.get("items", []):
                if all(ack.get(k) == v for k, v in body.items()):
                    return StepResult(documents=[f"MES {ack['ackId']}"], replayed=True,
                                      message=f"{cmd.event_id} already acknowledged {body['result']}")
        ack = await self.http.json("POST", f"{API}/acknowledgements", json=body,
                                   doing=f"acknowledge {cmd.event_id}")
        return StepResult(documents=[f"MES {ack['ackId']}"],
                          message=f"{cmd.event_id} acknowledged {body['result']} (revision {ack['revision']})")
