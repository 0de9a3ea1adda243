"""The QMS's business logic: inspection lots, results per characteristic, holds, dispositions."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from plantbridge_devtools.simulators.common.errors import SimError
from plantbridge_devtools.simulators.common.state import Doc, SqliteState
from plantbridge_devtools.simulators.common.util import dec, iso, now

LOT = "lot"
HOLD = "hold"

UNITS: dict[str, str] = {
    "pcs": "pieces", "kg": "kilograms", "g": "grams", "m": "metres", "mm": "millimetres", "um": "micrometres",
    "N": "newton", "Nm": "newton metre", "bar": "bar", "degC": "degrees Celsius", "%": "percent",
}
LOT_ORIGINS = ("PRODUCTION", "FINAL", "GOODS_RECEIPT")
HOLD_CODES: dict[str, str] = {
    "QH-DIM": "dimensional deviation", "QH-VIS": "visual defect", "QH-MAT": "material nonconformance",
    "QH-FUNC": "functional test failed", "QH-SUSP": "suspect, pending investigation",
}
DISPOSITIONS: dict[str, str] = {"UA": "use as is", "RW": "rework", "SC": "scrap"}
LOT_OPEN, LOT_INSPECTION, LOT_COMPLETE, LOT_DISPOSITIONED = "OPEN", "IN_INSPECTION", "RESULTS_COMPLETE", "DISPOSITIONED"


def _in(codes: dict[str, str], what: str) -> AfterValidator:
    def check(value: str | None) -> str | None:
        if value is not None and value not in codes:
            raise ValueError(f"unknown {what} {value!r}; expected one of {', '.join(codes)}")
        return value

    return AfterValidator(check)


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("timestamp needs a UTC offset")
    return value


Unit = Annotated[str, _in(UNITS, "unit")]
Qty = Annotated[Decimal, Field(ge=0, max_digits=15, decimal_places=6)]
Ref = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[0-9A-Za-z._:/-]+$")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class CharacteristicIn(Strict):
    charCode: Ref
    description: str = Field(default="", max_length=80)
    unit: Unit | None = None
    target: Decimal | None = None
    lower: Decimal | None = None
    upper: Decimal | None = None
    qualitative: bool = False


class LotIn(Strict):
    orderRef: Ref
    plant: str = Field(default="1000", min_length=1, max_length=4)
    material: Ref
    lotQty: Annotated[Decimal, Field(gt=0, max_digits=15, decimal_places=3)]
    unit: Unit
    origin: Literal["PRODUCTION", "FINAL", "GOODS_RECEIPT"] = "PRODUCTION"
    externalRef: Ref | None = None
    plan: list[CharacteristicIn] = Field(default_factory=list, max_length=200)


class ResultIn(Strict):
    charCode: Ref
    measured: str = Field(min_length=1, max_length=40, description="a number, or a text for qualitative ones")
    unit: Unit | None = None
    verdict: Literal["ACCEPT", "REJECT"] | None = None
    inspector: str | None = Field(default=None, max_length=40)
    measuredAt: Annotated[datetime | None, AfterValidator(_aware)] = None


class ResultsIn(Strict):
    results: list[ResultIn] = Field(min_length=1, max_length=200)


class HoldIn(Strict):
    orderRef: Ref
    lotId: str | None = None
    material: Ref | None = None
    qty: Qty | None = None
    unit: Unit | None = None
    reasonCode: Annotated[str, _in(HOLD_CODES, "hold reason")]
    text: str = Field(default="", max_length=200)
    externalRef: Ref | None = None


class ReleaseIn(Strict):
    releasedBy: str = Field(default="api", max_length=40)
    text: str = Field(default="", max_length=200)


class DispositionIn(Strict):
    code: Annotated[str, _in(DISPOSITIONS, "disposition code")]
    qty: Qty | None = None
    unit: Unit | None = None
    decidedBy: str = Field(default="api", max_length=40)
    text: str = Field(default="", max_length=200)


class Qms:
    def __init__(self, state: SqliteState) -> None:
        self.state = state

    def lot(self, lot_id: str) -> Doc:
        lot = self.state.get(LOT, lot_id)
        if lot is None:
            raise SimError(404, "LOT_NOT_FOUND", f"inspection lot {lot_id} does not exist")
        return lot

    def lots(self, order: str | None) -> list[Doc]:
        return self.state.by_ref(LOT, order) if order else self.state.all(LOT)

    def create_lot(self, body: LotIn) -> tuple[Doc, bool]:
        with self.state.transaction():
            if body.externalRef:
                for old in self.state.by_ref(LOT, body.orderRef):
                    if old.get("externalRef") == body.externalRef:
                        return old, False
            codes = [ch.charCode for ch in body.plan]
            if len(set(codes)) != len(codes):
                raise SimError(422, "VALIDATION_FAILED", "characteristic codes must be unique in a plan")
            lot_id = f"QL-{self.state.next_number('lot'):06d}"
            lot: Doc = {
                "lotId": lot_id,
                **body.model_dump(mode="json", exclude={"plan", "lotQty"}),
                "lotQty": dec(body.lotQty),
                "plan": [ch.model_dump(mode="json") for ch in body.plan],
                "status": LOT_OPEN,
                "verdict": "PENDING",
                "results": [],
                "disposition": None,
                "createdAt": iso(now()),
            }
            return self.state.put(LOT, lot_id, lot, ref=body.orderRef), True

    @staticmethod
    def _judge(plan: dict[str, Doc], result: ResultIn) -> str:
        if result.verdict:
            return result.verdict
        ch = plan.get(result.charCode)
        if ch is None or ch.get("qualitative") or (ch.get("lower") is None and ch.get("upper") is None):
            raise SimError(422, "VERDICT_REQUIRED", f"{result.charCode}: give a verdict (no limits to judge by)")
        try:
            value = Decimal(result.measured)
        except ArithmeticError as exc:
            raise SimError(422, "VALIDATION_FAILED", f"{result.charCode}: measured is not a number") from exc
        low, high = ch.get("lower"), ch.get("upper")
        ok = (low is None or value >= Decimal(low)) and (high is None or value <= Decimal(high))
        return "ACCEPT" if ok else "REJECT"

    def record_results(self, lot_id: str, body: ResultsIn) -> Doc:
        with self.state.transaction():
            lot = self.lot(lot_id)
            if lot["status"] == LOT_DISPOSITIONED:
                raise SimError(409, "LOT_CLOSED", f"lot {lot_id} is already dispositioned")
            plan = {ch["charCode"]: ch for ch in lot["plan"]}
            results = list(lot["results"])
            for r in body.results:
                ch = plan.get(r.charCode)
                if plan and ch is None:
                    raise SimError(422, "CHAR_UNKNOWN", f"{r.charCode} is not in the inspection plan of {lot_id}")
                if ch and ch.get("unit") and r.unit and r.unit != ch["unit"]:
                    raise SimError(422, "UNIT_MISMATCH", f"{r.charCode} is measured in {ch['unit']}, not {r.unit}")
                results = [x for x in results if x["charCode"] != r.charCode]
                results.append({
                    "charCode": r.charCode,
                    "measured": r.measured,
                    "unit": r.unit or (ch or {}).get("unit"),
                    "verdict": self._judge(plan, r),
                    "inspector": r.inspector,
                    "measuredAt": iso(r.measuredAt or now()),
                })
            lot["results"] = results
            done = {x["charCode"] for x in results}
            complete = not plan or set(plan) <= done
            lot["status"] = LOT_COMPLETE if complete else LOT_INSPECTION
            if any(x["verdict"] == "REJECT" for x in results):
                lot["verdict"] = "REJECT"
            else:
                lot["verdict"] = "ACCEPT" if complete else "PENDING"
            return self.state.put(LOT, lot_id, lot)

    # --- holds ----------------------------------------------------------------------------

    def hold(self, hold_id: str) -> Doc:
        hold = self.state.get(HOLD, hold_id)
        if hold is None:
            raise SimError(404, "HOLD_NOT_FOUND", f"hold {hold_id} does not exist")
        return hold

    def holds(self, order: str | None, status: str | None) -> list[Doc]:
        holds = self.state.by_ref(HOLD, order) if order else self.state.all(HOLD)
        return [h for h in holds if status is None or h["status"] == status]

    def place_hold(self, body: HoldIn) -> tuple[Doc, bool]:
        with self.state.transaction():
            if body.externalRef:
                for h in self.state.by_ref(HOLD, body.orderRef):
                    if h.get("externalRef") == body.externalRef:
                        return h, False
            if body.lotId:
                lot = self.lot(body.lotId)
                if lot["status"] == LOT_DISPOSITIONED:
                    raise SimError(409, "LOT_CLOSED", f"lot {body.lotId} is already dispositioned")
            hold_id = f"QH-{self.state.next_number('hold'):06d}"
            hold: Doc = {
                "holdId": hold_id,
                **body.model_dump(mode="json"),
                "qty": dec(body.qty) if body.qty is not None else None,
                "status": "ACTIVE",
                "placedAt": iso(now()),
                "releasedAt": None,
                "releasedBy": None,
                "releaseText": None,
            }
            return self.state.put(HOLD, hold_id, hold, ref=body.orderRef), True

    def release_hold(self, hold_id: str, body: ReleaseIn) -> Doc:
        with self.state.transaction():
            hold = self.hold(hold_id)
            if hold["status"] != "ACTIVE":
                return hold
            hold.update(status="RELEASED", releasedAt=iso(now()), releasedBy=body.releasedBy, releaseText=body.text)
            return self.state.put(HOLD, hold_id, hold)

    # --- disposition ----------------------------------------------------------------------

    def disposition(self, lot_id: str, body: DispositionIn) -> Doc:
        with self.state.transaction():
            lot = self.lot(lot_id)
            if lot["status"] == LOT_DISPOSITIONED:
                raise SimError(409, "LOT_ALREADY_DISPOSITIONED",
                               f"lot {lot_id} already has disposition {lot['disposition']['code']}",
                               [{"disposition": lot["disposition"]}])
            if body.unit and body.unit != lot["unit"]:
                raise SimError(422, "UNIT_MISMATCH", f"lot {lot_id} is counted in {lot['unit']}, not {body.unit}")
            at = iso(now())
            lot["disposition"] = {
                "code": body.code,
                "text": body.text or DISPOSITIONS[body.code],
                "qty": dec(body.qty if body.qty is not None else Decimal(lot["lotQty"])),
                "unit": lot["unit"],
                "decidedBy": body.decidedBy,
                "decidedAt": at,
            }
            lot["status"] = LOT_DISPOSITIONED
            released: list[str] = []
            for h in self.state.by_ref(HOLD, lot["orderRef"]):
                if h["status"] == "ACTIVE" and h.get("lotId") in (None, lot_id):
                    h.update(status="RELEASED", releasedAt=at, releasedBy="DISPOSITION",
                             releaseText=f"{lot_id}: {body.code}")
                    self.state.put(HOLD, h["holdId"], h)
                    released.append(h["holdId"])
            lot["disposition"]["releasedHolds"] = released
            return self.state.put(LOT, lot_id, lot)


def summary(lots: list[Doc]) -> dict[str, Any]:
    return {"items": lots, "count": len(lots)}
