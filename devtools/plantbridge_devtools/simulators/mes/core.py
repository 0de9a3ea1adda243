"""The MES's business logic: work orders, step execution, downtime, maintenance requests,
acknowledgements, and the plant events these raise (see ``outbox.py``).

Every change runs in one transaction with the events it raises. Times (``at``) default to now;
the script runner passes its own clock so a scripted plant is reproducible.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from plantbridge_devtools.simulators.common.errors import SimError
from plantbridge_devtools.simulators.common.state import Doc, SqliteState
from plantbridge_devtools.simulators.common.util import dec, iso, now
from plantbridge_devtools.simulators.mes import codes as c
from plantbridge_devtools.simulators.mes.models import (
    AcknowledgementIn,
    ChangeIn,
    DowntimeIn,
    HoldIn,
    MaintenanceIn,
    ReportIn,
    WorkOrderIn,
)
from plantbridge_devtools.simulators.mes.outbox import Dispatcher, enqueue, find_event

WORK_ORDER = "workorder"
RESOURCE = "resource"
DOWNTIME = "downtime"
MAINTENANCE = "maintenance"
ACK = "acknowledgement"
ACTIVE = (c.WO_DISPATCHED, c.WO_IN_PROGRESS, c.WO_ON_HOLD)


def _when(at: datetime | None) -> datetime:
    return at if at is not None else now()


class Mes:
    def __init__(self, state: SqliteState, dispatcher: Dispatcher, *, plant: str) -> None:
        self.state = state
        self.dispatcher = dispatcher
        self.plant = plant

    # --- helpers --------------------------------------------------------------------------

    def _emit(self, wo: Doc, event_type: str, at: datetime, **fields: Any) -> dict[str, Any]:
        """Queue a plant event (ARCHITECTURE §7 shape, the MES's local codes) about ``wo``."""
        body: dict[str, Any] = {
            "event_type": event_type,
            "source": f"mes-{wo['plant']}",
            "plant": wo["plant"],
            "order": wo["orderNo"],
            "occurred_at": iso(at),
        }
        body.update({k: v for k, v in fields.items() if v is not None})
        event = enqueue(self.state, wo["plant"], body)
        wo.setdefault("events", []).append(event["event_id"])
        self.dispatcher.notify()
        return event

    def _history(self, wo: Doc, at: datetime, what: str) -> None:
        wo.setdefault("history", []).append({"at": iso(at), "what": what})
        wo["updatedAt"] = iso(now())

    def _save(self, wo: Doc) -> Doc:
        self.state.put(WORK_ORDER, wo["workOrderId"], wo, ref=wo["orderNo"])
        return wo

    def work_order(self, wo_id: str) -> Doc:
        wo = self.state.get(WORK_ORDER, wo_id)
        if wo is None:
            raise SimError(404, "WO-404", f"work order {wo_id} does not exist")
        return wo

    def find_by_order(self, order_no: str) -> list[Doc]:
        return self.state.by_ref(WORK_ORDER, order_no)

    def _step(self, wo: Doc, step: str) -> Doc:
        for s in wo["routing"]:
            if s["step"] == step:
                return dict(s)
        raise SimError(404, "STEP-404", f"work order {wo['workOrderId']} has no step {step}")

    def _put_step(self, wo: Doc, step: Doc) -> None:
        wo["routing"] = [step if s["step"] == step["step"] else s for s in wo["routing"]]

    @staticmethod
    def _conflict(wo: Doc, doing: str) -> SimError:
        return SimError(
            409, "WO-409", f"cannot {doing}: work order {wo['workOrderId']} is {wo['status']}",
            {"workOrderId": wo["workOrderId"], "status": wo["status"]},
        )

    def _require_executable(self, wo: Doc, doing: str) -> None:
        if wo["status"] not in (c.WO_DISPATCHED, c.WO_IN_PROGRESS):
            raise self._conflict(wo, doing)

    def _touch_resource(self, resource: str) -> Doc:
        doc = self.state.get(RESOURCE, resource) or {"resource": resource, "state": "UP", "downtime": None}
        self.state.put(RESOURCE, resource, doc)
        return doc

    def resource(self, resource: str) -> Doc:
        doc = self.state.get(RESOURCE, resource)
        if doc is None:
            if resource not in c.DEFAULT_RESOURCES:
                raise SimError(404, "RES-404", f"resource {resource} is not known to the MES")
            doc = self._touch_resource(resource)
        return doc

    def _order_on(self, resource: str, wo_id: str | None) -> Doc | None:
        """The work order a resource fact belongs to: the given one, else the one running there."""
        if wo_id:
            return self.work_order(wo_id)
        candidates = [
            wo for wo in self.state.all(WORK_ORDER)
            if wo["status"] in ACTIVE
            and any(s["resource"] == resource and s["status"] in (c.STEP_RUNNING, c.STEP_PAUSED) for s in wo["routing"])
        ]
        return candidates[-1] if candidates else None

    # --- work orders ----------------------------------------------------------------------

    def dispatch(self, body: WorkOrderIn) -> tuple[Doc, bool]:
        """Create a work order; a repeat of an identical active dispatch returns it (created=False)."""
        plant = body.plant or self.plant
        request = body.model_dump(mode="json")
        with self.state.transaction():
            for old in self.find_by_order(body.orderNo):
                if old["status"] == c.WO_RECALLED:
                    continue
                if old.get("_request") == request:
                    return old, False
                raise SimError(
                    409, "WO-409-DUP",
                    f"order {body.orderNo} is already dispatched as {old['workOrderId']} ({old['status']})",
                    {"workOrderId": old["workOrderId"], "status": old["status"]},
                )
            number = self.state.next_number("workorder")
            at = now()
            wo: Doc = {
                "workOrderId": f"WO-{number:06d}",
                "orderNo": body.orderNo,
                "plant": plant,
                "material": body.material,
                "materialText": body.materialText,
                "quantity": dec(body.quantity),
                "unit": body.unit,
                "priority": body.priority,
                "dueDate": iso(body.dueDate) if body.dueDate else None,
                "status": c.WO_DISPATCHED,
                "statusBeforeHold": None,
                "hold": None,
                "routing": [
                    {
                        "step": s.step,
                        "resource": s.resource,
                        "description": s.description,
                        "plannedQty": dec(s.plannedQty if s.plannedQty is not None else body.quantity),
                        "setupMin": dec(s.setupMin),
                        "runMinPerUnit": dec(s.runMinPerUnit),
                        "status": c.STEP_READY,
                        "goodQty": "0",
                        "scrapQty": "0",
                        "scrap": {},
                        "laborMin": "0",
                        "machineMin": "0",
                        "setupMinActual": "0",
                        "startedAt": None,
                        "finishedAt": None,
                    }
                    for s in body.routing
                ],
                "bom": [{**b.model_dump(mode="json"), "quantity": dec(b.quantity)} for b in body.bom],
                "dispatchedAt": iso(at),
                "recalledAt": None,
                "completedAt": None,
                "events": [],
                "history": [],
                "_request": request,
            }
            for s in body.routing:
                self._touch_resource(s.resource)
            self._history(wo, at, "dispatched")
            return self._save(wo), True

    def change(self, wo_id: str, body: ChangeIn) -> Doc:
        """Apply an ERP change: quantity, routing (new steps READY, steps gone CANCELLED), BOM; `close` ends
        the work order (COMPLETED, open steps CANCELLED). A repeated `changeRef` changes nothing."""
        with self.state.transaction():
            wo = self.work_order(wo_id)
            if body.changeRef in wo.get("changeRefs", []):
                return wo
            if wo["status"] in (c.WO_RECALLED, c.WO_COMPLETED):
                raise self._conflict(wo, "change")
            at = now()
            wo["quantity"] = dec(body.quantity)
            if body.dueDate is not None:
                wo["dueDate"] = iso(body.dueDate)
            new_steps = {s.step: s for s in body.routing}
            routing = []
            for step in wo["routing"]:
                spec = new_steps.pop(step["step"], None)
                if spec is None:
                    if step["status"] != c.STEP_FINISHED:
                        step = {**step, "status": "CANCELLED"}
                else:
                    step = {**step, "resource": spec.resource,
                            "plannedQty": dec(spec.plannedQty if spec.plannedQty is not None else body.quantity)}
                routing.append(step)
            for spec in new_steps.values():
                self._touch_resource(spec.resource)
                routing.append({"step": spec.step, "resource": spec.resource, "description": spec.description,
                                "plannedQty": dec(spec.plannedQty if spec.plannedQty is not None else body.quantity),
                                "setupMin": dec(spec.setupMin), "runMinPerUnit": dec(spec.runMinPerUnit),
                                "status": c.STEP_READY, "goodQty": "0", "scrapQty": "0", "scrap": {}, "laborMin": "0",
                                "machineMin": "0", "setupMinActual": "0", "startedAt": None, "finishedAt": None})
            wo["routing"] = sorted(routing, key=lambda s: s["step"])
            wo["bom"] = [{**b.model_dump(mode="json"), "quantity": dec(b.quantity)} for b in body.bom]
            if body.close:
                wo["status"] = c.WO_COMPLETED
                wo["completedAt"] = iso(at)
                wo["routing"] = [{**s, "status": s["status"] if s["status"] == c.STEP_FINISHED else "CANCELLED"}
                                 for s in wo["routing"]]
            wo["changeRefs"] = [*wo.get("changeRefs", []), body.changeRef]
            wo["changeCount"] = len(wo["changeRefs"])
            wo["erpVersion"] = body.erpVersion
            self._history(wo, at, f"changed by the ERP{' (closed)' if body.close else ''}: {body.reason}".strip())
            return self._save(wo)

    def recall(self, wo_id: str, reason: str) -> Doc:
        with self.state.transaction():
            wo = self.work_order(wo_id)
            if wo["status"] == c.WO_RECALLED:
                return wo
            if wo["status"] == c.WO_COMPLETED:
                raise self._conflict(wo, "recall")
            at = now()
            wo["status"] = c.WO_RECALLED
            wo["recalledAt"] = iso(at)
            wo["routing"] = [
                {**s, "status": c.STEP_FINISHED if s["status"] == c.STEP_FINISHED else "CANCELLED"}
                for s in wo["routing"]
            ]
            self._history(wo, at, f"recalled {reason}".strip())
            return self._save(wo)

    def hold(self, wo_id: str, body: HoldIn) -> Doc:
        with self.state.transaction():
            wo = self.work_order(wo_id)
            if wo["status"] == c.WO_ON_HOLD:
                return wo
            if wo["status"] not in (c.WO_DISPATCHED, c.WO_IN_PROGRESS):
                raise self._conflict(wo, "hold")
            at = _when(body.at)
            wo["statusBeforeHold"] = wo["status"]
            wo["status"] = c.WO_ON_HOLD
            wo["hold"] = {"reasonCode": body.reasonCode, "text": body.text, "source": body.source, "raisedAt": iso(at)}
            self._history(wo, at, f"hold {body.reasonCode} ({body.source})")
            if body.source == "SHOPFLOOR":
                self._emit(wo, "quality_hold", at, reason=body.reasonCode, description=body.text or None)
            return self._save(wo)

    def unhold(self, wo_id: str, text: str) -> Doc:
        with self.state.transaction():
            wo = self.work_order(wo_id)
            if wo["status"] != c.WO_ON_HOLD:
                raise self._conflict(wo, "release the hold")
            at = now()
            wo["status"] = wo.get("statusBeforeHold") or c.WO_DISPATCHED
            wo["statusBeforeHold"] = None
            wo["hold"] = None
            self._history(wo, at, f"hold released {text}".strip())
            return self._save(wo)

    # --- execution ------------------------------------------------------------------------

    def start_step(self, wo_id: str, step_no: str, at: datetime | None = None) -> Doc:
        with self.state.transaction():
            wo = self.work_order(wo_id)
            self._require_executable(wo, f"start step {step_no}")
            step = self._step(wo, step_no)
            when = _when(at)
            if step["status"] == c.STEP_PAUSED:
                step["status"] = c.STEP_RUNNING
                self._history(wo, when, f"step {step_no} resumed")
            elif step["status"] == c.STEP_READY:
                step["status"] = c.STEP_RUNNING
                step["startedAt"] = iso(when)
                wo["status"] = c.WO_IN_PROGRESS
                self._history(wo, when, f"step {step_no} started")
                self._emit(wo, "operation_started", when, operation=step_no, work_center=step["resource"])
            else:
                raise SimError(409, "STEP-409", f"step {step_no} is {step['status']}", {"status": step["status"]})
            self._put_step(wo, step)
            return self._save(wo)

    def pause_step(self, wo_id: str, step_no: str, at: datetime | None = None) -> Doc:
        with self.state.transaction():
            wo = self.work_order(wo_id)
            step = self._step(wo, step_no)
            if wo["status"] not in ACTIVE or step["status"] != c.STEP_RUNNING:
                raise SimError(409, "STEP-409", f"step {step_no} is {step['status']} (order {wo['status']})")
            step["status"] = c.STEP_PAUSED
            self._put_step(wo, step)
            self._history(wo, _when(at), f"step {step_no} paused")
            return self._save(wo)

    def _book(self, wo: Doc, step: Doc, body: ReportIn, when: datetime, final: bool) -> dict[str, Any]:
        if body.scrapQty > 0 and not body.scrapCode:
            raise SimError(422, "WO-422", "scrapCode is required when scrapQty > 0",
                           [{"field": "scrapCode", "message": "required when scrapQty > 0"}])
        step["goodQty"] = dec(Decimal(step["goodQty"]) + body.goodQty)
        step["scrapQty"] = dec(Decimal(step["scrapQty"]) + body.scrapQty)
        if body.scrapQty > 0 and body.scrapCode:
            scrap = dict(step.get("scrap") or {})
            scrap[body.scrapCode] = dec(Decimal(scrap.get(body.scrapCode, "0")) + body.scrapQty)
            step["scrap"] = scrap
        step["laborMin"] = dec(Decimal(step["laborMin"]) + body.laborMin)
        step["machineMin"] = dec(Decimal(step["machineMin"]) + body.machineMin)
        step["setupMinActual"] = dec(Decimal(step["setupMinActual"]) + body.setupMin)
        unit = wo["unit"]
        activities = None
        if body.laborMin or body.machineMin or body.setupMin:
            activities = {"setup_min": dec(body.setupMin), "machine_min": dec(body.machineMin),
                          "labor_min": dec(body.laborMin)}
        return self._emit(
            wo, "operation_confirmed", when,
            operation=step["step"],
            work_center=step["resource"],
            yield_qty={"quantity": dec(body.goodQty), "uom": unit},
            scrap_qty={"quantity": dec(body.scrapQty), "uom": unit} if body.scrapQty > 0 else None,
            reason=body.scrapCode if body.scrapQty > 0 else None,
            final=final,
            activities=activities,
            personnel=body.operator,
        )

    def report(self, wo_id: str, step_no: str, body: ReportIn) -> tuple[Doc, dict[str, Any]]:
        with self.state.transaction():
            wo = self.work_order(wo_id)
            self._require_executable(wo, f"report on step {step_no}")
            step = self._step(wo, step_no)
            if step["status"] != c.STEP_RUNNING:
                raise SimError(409, "STEP-409", f"step {step_no} is {step['status']}; start it first",
                               {"status": step["status"]})
            when = _when(body.at)
            event = self._book(wo, step, body, when, final=False)
            self._put_step(wo, step)
            self._history(wo, when, f"step {step_no} reported good {dec(body.goodQty)} scrap {dec(body.scrapQty)}")
            return self._save(wo), event

    def finish_step(self, wo_id: str, step_no: str, body: ReportIn) -> tuple[Doc, dict[str, Any]]:
        with self.state.transaction():
            wo = self.work_order(wo_id)
            self._require_executable(wo, f"finish step {step_no}")
            step = self._step(wo, step_no)
            if step["status"] not in (c.STEP_RUNNING, c.STEP_PAUSED):
                raise SimError(409, "STEP-409", f"step {step_no} is {step['status']}", {"status": step["status"]})
            when = _when(body.at)
            event = self._book(wo, step, body, when, final=True)
            step["status"] = c.STEP_FINISHED
            step["finishedAt"] = iso(when)
            self._put_step(wo, step)
            self._history(wo, when, f"step {step_no} finished")
            if all(s["status"] == c.STEP_FINISHED for s in wo["routing"]):
                wo["status"] = c.WO_COMPLETED
                wo["completedAt"] = iso(when)
                self._history(wo, when, "completed")
            return self._save(wo), event

    # --- resources ------------------------------------------------------------------------

    def downtime(self, resource: str, body: DowntimeIn) -> Doc:
        with self.state.transaction():
            res = self.resource(resource)
            when = _when(body.at)
            if body.action == "START":
                if not body.code:
                    raise SimError(422, "WO-422", "code is required to start a downtime",
                                   [{"field": "code", "message": "required for START"}])
                if res["state"] == "DOWN":
                    raise SimError(409, "RES-409", f"resource {resource} is already down",
                                   {"downtimeId": res["downtime"]})
                wo = self._order_on(resource, body.workOrderId)
                number = self.state.next_number("downtime")
                dt: Doc = {
                    "downtimeId": f"DT-{number:06d}",
                    "resource": resource,
                    "code": body.code,
                    "equipment": body.equipment,
                    "workOrderId": wo["workOrderId"] if wo else None,
                    "orderNo": wo["orderNo"] if wo else None,
                    "startedAt": iso(when),
                    "endedAt": None,
                    "durationMin": None,
                    "comment": body.comment,
                    "events": [],
                }
                res.update(state="DOWN", downtime=dt["downtimeId"])
            else:
                if res["state"] != "DOWN" or not res.get("downtime"):
                    raise SimError(409, "RES-409", f"resource {resource} is not down")
                dt = self.state.get(DOWNTIME, res["downtime"]) or {}
                dt["endedAt"] = iso(when)
                started = datetime.fromisoformat(dt["startedAt"])
                dt["durationMin"] = dec(Decimal(int((when - started).total_seconds())) / 60)
                if body.comment:
                    dt["comment"] = body.comment
                wo = self.work_order(dt["workOrderId"]) if dt.get("workOrderId") else None
                res.update(state="UP", downtime=None)
            if wo is not None:
                event = self._emit(
                    wo, "downtime_started" if body.action == "START" else "downtime_ended", when,
                    work_center=resource, equipment=dt.get("equipment") or body.equipment,
                    reason=dt["code"] if body.action == "START" else (body.code or dt["code"]),
                )
                dt["events"] = [*dt.get("events", []), event["event_id"]]
                self._history(wo, when, f"downtime {body.action.lower()} on {resource} {dt['code']}")
                self._save(wo)
            self.state.put(DOWNTIME, dt["downtimeId"], dt, ref=resource)
            self.state.put(RESOURCE, resource, res)
            return dt

    def maintenance(self, resource: str, body: MaintenanceIn) -> Doc:
        with self.state.transaction():
            self.resource(resource)
            when = _when(body.at)
            wo = self._order_on(resource, body.workOrderId)
            number = self.state.next_number("maintenance")
            req: Doc = {
                "requestId": f"MR-{number:06d}",
                "resource": resource,
                "equipment": body.equipment,
                "priority": body.priority,
                "text": body.text,
                "workOrderId": wo["workOrderId"] if wo else None,
                "orderNo": wo["orderNo"] if wo else None,
                "requestedAt": iso(when),
                "eventId": None,
            }
            if wo is not None:
                event = self._emit(wo, "maintenance_requested", when, work_center=resource,
                                   equipment=body.equipment, priority=body.priority, description=body.text)
                req["eventId"] = event["event_id"]
                self._history(wo, when, f"maintenance requested for {body.equipment}")
                self._save(wo)
            self.state.put(MAINTENANCE, req["requestId"], req, ref=resource)
            return req

    # --- acknowledgements -----------------------------------------------------------------

    def acknowledge(self, body: AcknowledgementIn) -> tuple[Doc, bool]:
        with self.state.transaction():
            existing = self.state.get(ACK, body.transactionRef)
            event = find_event(self.state, body.transactionRef)
            number = existing["ackId"] if existing else f"ACK-{self.state.next_number('ack'):06d}"
            ack: Doc = {
                "ackId": number,
                **body.model_dump(mode="json"),
                "orderNo": event["order"] if event else None,
                "matched": event is not None,
                "receivedAt": iso(now()),
                "revision": (existing["revision"] + 1) if existing else 1,
            }
            self.state.put(ACK, body.transactionRef, ack, ref=ack["orderNo"])
            return ack, existing is None

    def acknowledgements(self, transaction_ref: str | None, order_no: str | None) -> list[Doc]:
        if transaction_ref:
            ack = self.state.get(ACK, transaction_ref)
            acks = [ack] if ack else []
        elif order_no:
            acks = self.state.by_ref(ACK, order_no)
        else:
            acks = self.state.all(ACK)
        return acks


def public(wo: Doc) -> Doc:
    return {k: v for k, v in wo.items() if not k.startswith("_")}
