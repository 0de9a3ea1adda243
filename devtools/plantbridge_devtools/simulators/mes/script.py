"""The script runner behind ``POST /admin/run``: drive one work order through the shop floor.

A script names a work order (``workOrderId`` or ``orderNo``, the active work order of that ERP
order) and a list of actions, run in order on a virtual clock that starts at ``startAt`` (default
now) and advances ``stepMin`` minutes (default 1) after each action::

    {"orderNo": "1004157", "startAt": "2026-11-26T08:00:00+01:00", "actions": [
      {"do": "start", "step": "0010"},
      {"do": "report", "step": "0010", "good": 40, "scrap": 2, "scrapCode": "S-SCRATCH", "chunks": 2,
       "laborMin": 30, "machineMin": 25, "everyMin": 10},
      {"do": "downtime", "code": "D-MECH", "minutes": 15, "equipment": "PRESS-01"},
      {"do": "maintenance", "equipment": "PRESS-01", "priority": 2, "text": "hydraulic leak"},
      {"do": "hold", "code": "H-QUAL", "text": "burr on edge"},
      {"do": "unhold"},
      {"do": "pause", "step": "0010"}, {"do": "start", "step": "0010"},
      {"do": "wait", "minutes": 30},
      {"do": "finish", "step": "0010", "good": 0}
    ]}

``report`` splits good, scrap and minutes over ``chunks`` reports (``everyMin`` apart); ``downtime``
starts and ends a downtime of ``minutes`` on ``resource`` (default: the resource of the running
step, else the first step's); ``hold`` is raised at the shop floor (so it emits ``quality_hold``).
The run stops at the first failing action; the answer says which and why, with the events raised.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from plantbridge_devtools.simulators.common.errors import SimError
from plantbridge_devtools.simulators.common.state import Doc
from plantbridge_devtools.simulators.common.util import iso, now
from plantbridge_devtools.simulators.mes import codes as c
from plantbridge_devtools.simulators.mes.core import Mes, public
from plantbridge_devtools.simulators.mes.models import (
    DowntimeCode,
    DowntimeIn,
    HoldCode,
    HoldIn,
    MaintenanceIn,
    Minutes,
    Qty,
    ReportIn,
    ScrapCode,
    Timestamp,
)


class _Action(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StartAction(_Action):
    do: Literal["start"]
    step: str


class PauseAction(_Action):
    do: Literal["pause"]
    step: str


class ReportAction(_Action):
    do: Literal["report", "finish"]
    step: str
    good: Qty = Decimal(0)
    scrap: Qty = Decimal(0)
    scrapCode: ScrapCode = None
    chunks: int = Field(default=1, ge=1, le=1000)
    everyMin: Minutes = Decimal(1)
    laborMin: Minutes = Decimal(0)
    machineMin: Minutes = Decimal(0)
    setupMin: Minutes = Decimal(0)
    operator: str | None = None


class DowntimeAction(_Action):
    do: Literal["downtime"]
    code: DowntimeCode
    minutes: Minutes = Decimal(5)
    resource: str | None = None
    equipment: str | None = None


class HoldAction(_Action):
    do: Literal["hold"]
    code: HoldCode = "H-QUAL"
    text: str = ""


class UnholdAction(_Action):
    do: Literal["unhold"]
    text: str = ""


class MaintenanceAction(_Action):
    do: Literal["maintenance"]
    equipment: str
    priority: int = Field(default=3, ge=1, le=4)
    text: str = "maintenance requested by the operator"
    resource: str | None = None


class WaitAction(_Action):
    do: Literal["wait"]
    minutes: Minutes


Action = Annotated[
    StartAction | PauseAction | ReportAction | DowntimeAction | HoldAction | UnholdAction | MaintenanceAction
    | WaitAction,
    Field(discriminator="do"),
]


class ScriptIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    workOrderId: str | None = None
    orderNo: str | None = None
    startAt: Timestamp = None
    stepMin: Minutes = Decimal(1)
    actions: list[Action] = Field(min_length=1, max_length=1000)


def split(total: Decimal, parts: int) -> list[Decimal]:
    """``total`` in ``parts`` shares of at most 3 decimals that add up exactly."""
    share = (total / parts).quantize(Decimal("0.001"), rounding=ROUND_DOWN)
    if total == total.to_integral_value():
        share = (total / parts).to_integral_value(rounding=ROUND_DOWN)
        extra = int(total - share * parts)
        return [share + (1 if i < extra else 0) for i in range(parts)]
    shares = [share] * parts
    shares[-1] = total - share * (parts - 1)
    return shares


def _minutes(m: Decimal) -> timedelta:
    return timedelta(minutes=float(m))


def _resolve(mes: Mes, script: ScriptIn) -> Doc:
    if script.workOrderId:
        return mes.work_order(script.workOrderId)
    if script.orderNo:
        active = [wo for wo in mes.find_by_order(script.orderNo) if wo["status"] != c.WO_RECALLED]
        if active:
            return active[-1]
        raise SimError(404, "WO-404", f"order {script.orderNo} has no active work order")
    raise SimError(422, "WO-422", "give workOrderId or orderNo")


def _default_resource(wo: Doc) -> str:
    for s in wo["routing"]:
        if s["status"] in (c.STEP_RUNNING, c.STEP_PAUSED):
            return str(s["resource"])
    return str(wo["routing"][0]["resource"])


def run_script(mes: Mes, script: ScriptIn) -> dict[str, Any]:
    wo = _resolve(mes, script)
    wo_id = wo["workOrderId"]
    clock: datetime = script.startAt or now()
    events_before = len(wo.get("events", []))
    done = 0
    error: dict[str, Any] | None = None
    for index, action in enumerate(script.actions):
        try:
            clock = _run_one(mes, wo_id, action, clock)
        except SimError as exc:
            error = {"index": index, "action": action.model_dump(mode="json"), "status": exc.status,
                     "errorCode": exc.code, "message": exc.message}
            break
        done += 1
        clock += _minutes(script.stepMin)
    wo = mes.work_order(wo_id)
    return {
        "ok": error is None,
        "executed": done,
        "error": error,
        "clock": iso(clock),
        "events": wo.get("events", [])[events_before:],
        "workOrder": public(wo),
    }


def _run_one(mes: Mes, wo_id: str, action: Any, clock: datetime) -> datetime:
    if isinstance(action, StartAction):
        mes.start_step(wo_id, action.step, clock)
    elif isinstance(action, PauseAction):
        mes.pause_step(wo_id, action.step, clock)
    elif isinstance(action, ReportAction):
        chunks = action.chunks
        goods, scraps = split(action.good, chunks), split(action.scrap, chunks)
        labor, machine, setup = (split(m, chunks) for m in (action.laborMin, action.machineMin, action.setupMin))
        for i in range(chunks):
            if i:
                clock += _minutes(action.everyMin)
            body = ReportIn(goodQty=goods[i], scrapQty=scraps[i], scrapCode=action.scrapCode if scraps[i] else None,
                            laborMin=labor[i], machineMin=machine[i], setupMin=setup[i], operator=action.operator,
                            at=clock)
            if action.do == "finish" and i == chunks - 1:
                mes.finish_step(wo_id, action.step, body)
            else:
                mes.report(wo_id, action.step, body)
    elif isinstance(action, DowntimeAction):
        resource = action.resource or _default_resource(mes.work_order(wo_id))
        mes.downtime(resource, DowntimeIn(action="START", code=action.code, equipment=action.equipment,
                                          workOrderId=wo_id, at=clock))
        clock += _minutes(action.minutes)
        mes.downtime(resource, DowntimeIn(action="END", workOrderId=wo_id, at=clock))
    elif isinstance(action, HoldAction):
        mes.hold(wo_id, HoldIn(reasonCode=action.code, text=action.text, source="SHOPFLOOR", at=clock))
    elif isinstance(action, UnholdAction):
        mes.unhold(wo_id, action.text)
    elif isinstance(action, MaintenanceAction):
        resource = action.resource or _default_resource(mes.work_order(wo_id))
        mes.maintenance(resource, MaintenanceIn(equipment=action.equipment, priority=action.priority,
                                                text=action.text, workOrderId=wo_id, at=clock))
    elif isinstance(action, WaitAction):
        clock += _minutes(action.minutes)
    return clock
