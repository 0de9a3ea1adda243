"""The WMS's business logic: stock per material and location, staging tasks, stock blocks,
transfers, shipment readiness and spare-part reservations."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from plantbridge_devtools.simulators.common.errors import SimError
from plantbridge_devtools.simulators.common.state import Doc, SqliteState
from plantbridge_devtools.simulators.common.util import dec, iso, now

STOCK, STAGING, BLOCK, TRANSFER, READINESS, RESERVATION = (
    "stock", "staging", "block", "transfer", "readiness", "reservation"
)

UNITS: dict[str, str] = {"EA": "each", "KG": "kilogram", "LTR": "litre", "MTR": "metre", "BOX": "box"}
# Location code -> type. PRODUCTION locations book the receipt from production implicitly: a
# transfer out of them needs no stock on hand (but is refused while the material is blocked there).
LOCATIONS: dict[str, str] = {
    "RM-A01": "STORAGE", "RM-B01": "STORAGE", "LINE-L1": "LINESIDE", "LINE-L2": "LINESIDE",
    "PROD-OUT": "PRODUCTION", "QI-01": "QUARANTINE", "FG-01": "STORAGE", "SP-01": "SPARES", "DOCK-01": "SHIPPING",
}
BLOCK_REASONS: dict[str, str] = {
    "QC-HOLD": "quality hold", "DAMAGE": "damaged", "RECOUNT": "count discrepancy", "CUST-HOLD": "customer hold",
}


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
Location = Annotated[str, _in(LOCATIONS, "location")]
Qty = Annotated[Decimal, Field(gt=0, max_digits=15, decimal_places=3)]
Ref = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$")]
Material = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[0-9A-Za-z._/-]+$")]
When = Annotated[datetime | None, AfterValidator(_aware)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class StagingItemIn(Strict):
    material: Material
    qty: Qty
    unit: Unit
    fromLocation: Location | None = None


class StagingIn(Strict):
    reference: Ref
    orderRef: Ref
    toLocation: Location = "LINE-L1"
    neededBy: When = None
    items: list[StagingItemIn] = Field(min_length=1, max_length=200)


class BlockIn(Strict):
    reference: Ref
    material: Material
    location: Location | None = None
    qty: Qty | None = Field(default=None, description="omit to block all stock in scope, incoming included")
    unit: Unit | None = None
    reasonCode: Annotated[str, _in(BLOCK_REASONS, "block reason")] = "QC-HOLD"
    orderRef: Ref | None = None
    text: str = Field(default="", max_length=200)


class ReleaseIn(Strict):
    text: str = Field(default="", max_length=200)


class TransferIn(Strict):
    reference: Ref
    material: Material
    qty: Qty
    unit: Unit
    fromLocation: Location
    toLocation: Location
    orderRef: Ref | None = None
    batch: str | None = Field(default=None, max_length=20)


class ReadinessIn(Strict):
    reference: Ref
    orderRef: Ref
    material: Material
    qty: Qty
    unit: Unit
    location: Location = "FG-01"
    shipDate: When = None


class ReservationIn(Strict):
    reference: Ref
    material: Material
    qty: Qty
    unit: Unit
    location: Location = "SP-01"
    equipment: str | None = Field(default=None, max_length=40)
    orderRef: Ref | None = None
    neededBy: When = None


class StockIn(Strict):
    material: Material
    location: Location
    qty: Annotated[Decimal, Field(ge=0, max_digits=15, decimal_places=3)]
    unit: Unit


def _d(value: Any) -> Decimal:
    return Decimal(str(value))


class Wms:
    def __init__(self, state: SqliteState) -> None:
        self.state = state

    # --- stock ----------------------------------------------------------------------------

    def _stock_rows(self, material: str) -> list[Doc]:
        return [s for s in self.state.all(STOCK) if s["material"] == material]

    def _unit_of(self, material: str) -> str | None:
        rows = self._stock_rows(material)
        return str(rows[0]["unit"]) if rows else None

    def _check_unit(self, material: str, unit: str | None) -> None:
        known = self._unit_of(material)
        if unit and known and unit != known:
            raise SimError(422, "UNIT_MISMATCH", f"{material} is kept in {known}, not {unit}")

    def _on_hand(self, material: str, location: str) -> Decimal:
        row = self.state.get(STOCK, f"{material}|{location}")
        return _d(row["onHand"]) if row else Decimal(0)

    def _add(self, material: str, location: str, qty: Decimal, unit: str) -> None:
        key = f"{material}|{location}"
        row = self.state.get(STOCK, key) or {"material": material, "location": location, "unit": unit, "onHand": "0"}
        row["onHand"] = dec(_d(row["onHand"]) + qty)
        row["updatedAt"] = iso(now())
        self.state.put(STOCK, key, row, ref=material)

    def _active_blocks(self, material: str) -> list[Doc]:
        return [b for b in self.state.all(BLOCK) if b["material"] == material and b["status"] == "ACTIVE"]

    def _blocked_at(self, material: str, location: str, on_hand: Decimal) -> Decimal:
        blocks = [b for b in self._active_blocks(material) if b["location"] in (None, location)]
        if any(b["qty"] is None for b in blocks):
            return on_hand
        return min(on_hand, sum((_d(b["qty"]) for b in blocks), Decimal(0)))

    def _reserved_at(self, material: str, location: str) -> Decimal:
        return sum(
            (_d(r["reservedQty"]) for r in self.state.all(RESERVATION)
             if r["material"] == material and r["location"] == location and r["status"] in ("RESERVED", "PARTIAL")),
            Decimal(0),
        )

    def _available_at(self, material: str, location: str) -> Decimal:
        on_hand = self._on_hand(material, location)
        return max(Decimal(0), on_hand - self._blocked_at(material, location, on_hand)
                   - self._reserved_at(material, location))

    def stock(self, material: str, location: str | None = None) -> Doc:
        rows = [r for r in self._stock_rows(material) if location is None or r["location"] == location]
        locations = []
        for r in rows:
            on_hand = _d(r["onHand"])
            blocked = self._blocked_at(material, r["location"], on_hand)
            reserved = self._reserved_at(material, r["location"])
            locations.append({
                "location": r["location"], "onHand": dec(on_hand), "blocked": dec(blocked),
                "reserved": dec(reserved), "available": dec(max(Decimal(0), on_hand - blocked - reserved)),
            })
        total = {k: sum((_d(x[k]) for x in locations), Decimal(0)) for k in ("onHand", "blocked", "reserved")}
        blocks = self._active_blocks(material)
        return {
            "material": material,
            "unit": self._unit_of(material),
            "onHand": dec(total["onHand"]),
            "blocked": dec(total["blocked"]),
            "reserved": dec(total["reserved"]),
            "available": dec(max(Decimal(0), total["onHand"] - total["blocked"] - total["reserved"])),
            "locations": locations,
            "activeBlocks": [b["blockId"] for b in blocks if location is None or b["location"] in (None, location)],
        }

    def set_stock(self, body: StockIn) -> Doc:
        with self.state.transaction():
            self._check_unit(body.material, body.unit)
            key = f"{body.material}|{body.location}"
            row = {"material": body.material, "location": body.location, "unit": body.unit,
                   "onHand": dec(body.qty), "updatedAt": iso(now())}
            self.state.put(STOCK, key, row, ref=body.material)
            return self.stock(body.material)

    def _move(self, material: str, qty: Decimal, unit: str, src: str, dst: str) -> None:
        if src == dst:
            raise SimError(422, "SAME_LOCATION", "source and destination are the same location")
        self._check_unit(material, unit)
        if LOCATIONS[src] == "PRODUCTION":
            if self._blocked_at(material, src, Decimal("1e12")) > 0:
                raise SimError(409, "STOCK_BLOCKED", f"{material} is blocked at {src}")
        else:
            available = self._available_at(material, src)
            if qty > available:
                on_hand = self._on_hand(material, src)
                code = "STOCK_BLOCKED" if qty <= on_hand else "INSUFFICIENT_STOCK"
                raise SimError(409, code, f"{material} at {src}: {dec(available)} {unit} available, {dec(qty)} needed",
                               [{"location": src, "onHand": dec(on_hand), "available": dec(available)}])
        self._add(material, src, -qty, unit)
        self._add(material, dst, qty, unit)

    # --- lookups --------------------------------------------------------------------------

    def get(self, kind: str, key: str, what: str) -> Doc:
        doc = self.state.get(kind, key)
        if doc is None:
            raise SimError(404, "NOT_FOUND", f"{what} {key} does not exist")
        return doc

    def by_reference(self, kind: str, reference: str | None) -> list[Doc]:
        return self.state.by_ref(kind, reference) if reference else self.state.all(kind)

    def _fresh_reference(self, kind: str, reference: str, id_field: str) -> None:
        earlier = self.state.by_ref(kind, reference)
        if earlier:
            raise SimError(409, "DUPLICATE_REFERENCE", f"reference {reference} was already used",
                           [{id_field: earlier[0][id_field]}])

    def _new_id(self, prefix: str, kind: str) -> str:
        return f"{prefix}-{self.state.next_number(kind):06d}"

    # --- staging --------------------------------------------------------------------------

    def stage(self, body: StagingIn) -> Doc:
        self._fresh_reference(STAGING, body.reference, "stagingId")
        tasks = []
        for item in body.items:
            self._check_unit(item.material, item.unit)
            src = item.fromLocation
            if src is None:
                rows = sorted(self._stock_rows(item.material), key=lambda r: _d(r["onHand"]), reverse=True)
                src = next((r["location"] for r in rows if LOCATIONS[r["location"]] == "STORAGE"), "RM-A01")
            tasks.append({"taskId": self._new_id("TSK", "task"), "material": item.material, "qty": dec(item.qty),
                          "unit": item.unit, "fromLocation": src, "toLocation": body.toLocation, "status": "OPEN",
                          "confirmedAt": None})
        doc: Doc = {
            "stagingId": self._new_id("STG", STAGING), "reference": body.reference, "orderRef": body.orderRef,
            "toLocation": body.toLocation, "neededBy": iso(body.neededBy) if body.neededBy else None,
            "status": "OPEN", "tasks": tasks, "createdAt": iso(now()),
        }
        return self.state.put(STAGING, doc["stagingId"], doc, ref=body.reference)

    def confirm_task(self, staging_id: str, task_id: str) -> Doc:
        doc = self.get(STAGING, staging_id, "staging request")
        if doc["status"] == "CANCELLED":
            raise SimError(409, "STAGING_CANCELLED", f"staging request {staging_id} is cancelled")
        task = next((t for t in doc["tasks"] if t["taskId"] == task_id), None)
        if task is None:
            raise SimError(404, "NOT_FOUND", f"task {task_id} is not part of {staging_id}")
        if task["status"] == "OPEN":
            self._move(task["material"], _d(task["qty"]), task["unit"], task["fromLocation"], task["toLocation"])
            task.update(status="CONFIRMED", confirmedAt=iso(now()))
        doc["tasks"] = [task if t["taskId"] == task_id else t for t in doc["tasks"]]
        if all(t["status"] == "CONFIRMED" for t in doc["tasks"]):
            doc["status"] = "STAGED"
        elif any(t["status"] == "CONFIRMED" for t in doc["tasks"]):
            doc["status"] = "IN_PROGRESS"
        return self.state.put(STAGING, staging_id, doc)

    def cancel_task(self, staging_id: str, task_id: str) -> Doc:
        """Cancel one OPEN task (a component taken off the order); a confirmed one needs a return transfer."""
        doc = self.get(STAGING, staging_id, "staging request")
        task = next((t for t in doc["tasks"] if t["taskId"] == task_id), None)
        if task is None:
            raise SimError(404, "NOT_FOUND", f"task {task_id} is not part of {staging_id}")
        if task["status"] == "CONFIRMED":
            raise SimError(409, "TASK_CONFIRMED", f"task {task_id} is confirmed; return the material by a transfer")
        task["status"] = "CANCELLED"
        doc["tasks"] = [task if t["taskId"] == task_id else t for t in doc["tasks"]]
        live = [t for t in doc["tasks"] if t["status"] != "CANCELLED"]
        if not live:
            doc["status"] = "CANCELLED"
        elif all(t["status"] == "CONFIRMED" for t in live):
            doc["status"] = "STAGED"
        return self.state.put(STAGING, staging_id, doc)

    def cancel_staging(self, staging_id: str) -> Doc:
        doc = self.get(STAGING, staging_id, "staging request")
        if doc["status"] == "STAGED":
            raise SimError(409, "STAGING_DONE", f"staging request {staging_id} is already staged")
        doc["status"] = "CANCELLED"
        doc["tasks"] = [{**t, "status": "CANCELLED"} if t["status"] == "OPEN" else t for t in doc["tasks"]]
        return self.state.put(STAGING, staging_id, doc)

    # --- blocks ---------------------------------------------------------------------------

    def block(self, body: BlockIn) -> Doc:
        self._fresh_reference(BLOCK, body.reference, "blockId")
        self._check_unit(body.material, body.unit)
        doc: Doc = {
            "blockId": self._new_id("BLK", BLOCK), "reference": body.reference, "material": body.material,
            "location": body.location, "qty": dec(body.qty) if body.qty is not None else None,
            "unit": body.unit or self._unit_of(body.material), "scope": "QTY" if body.qty is not None else "ALL",
            "reasonCode": body.reasonCode, "orderRef": body.orderRef, "text": body.text, "status": "ACTIVE",
            "blockedAt": iso(now()), "releasedAt": None,
        }
        return self.state.put(BLOCK, doc["blockId"], doc, ref=body.reference)

    def release_block(self, block_id: str, body: ReleaseIn) -> Doc:
        doc = self.get(BLOCK, block_id, "stock block")
        if doc["status"] != "ACTIVE":
            raise SimError(409, "BLOCK_NOT_ACTIVE", f"stock block {block_id} is {doc['status']}")
        doc.update(status="RELEASED", releasedAt=iso(now()), releaseText=body.text)
        return self.state.put(BLOCK, block_id, doc)

    # --- transfers, readiness, reservations -----------------------------------------------

    def transfer(self, body: TransferIn) -> Doc:
        self._fresh_reference(TRANSFER, body.reference, "transferId")
        self._move(body.material, body.qty, body.unit, body.fromLocation, body.toLocation)
        doc: Doc = {"transferId": self._new_id("TRF", TRANSFER), **body.model_dump(mode="json"),
                    "qty": dec(body.qty), "status": "CONFIRMED", "confirmedAt": iso(now())}
        return self.state.put(TRANSFER, doc["transferId"], doc, ref=body.reference)

    def readiness(self, body: ReadinessIn) -> Doc:
        self._fresh_reference(READINESS, body.reference, "readinessId")
        self._check_unit(body.material, body.unit)
        on_hand = self._on_hand(body.material, body.location)
        available = self._available_at(body.material, body.location)
        if available >= body.qty:
            status = "READY"
        elif on_hand >= body.qty:
            status = "BLOCKED"
        else:
            status = "SHORT"
        doc: Doc = {"readinessId": self._new_id("SR", READINESS), **body.model_dump(mode="json"),
                    "qty": dec(body.qty), "shipDate": iso(body.shipDate) if body.shipDate else None,
                    "status": status, "availableQty": dec(available), "checkedAt": iso(now())}
        return self.state.put(READINESS, doc["readinessId"], doc, ref=body.reference)

    def reserve(self, body: ReservationIn) -> Doc:
        self._fresh_reference(RESERVATION, body.reference, "reservationId")
        self._check_unit(body.material, body.unit)
        available = self._available_at(body.material, body.location)
        reserved = min(available, body.qty)
        doc: Doc = {"reservationId": self._new_id("RSV", RESERVATION), **body.model_dump(mode="json"),
                    "qty": dec(body.qty), "neededBy": iso(body.neededBy) if body.neededBy else None,
                    "reservedQty": dec(reserved), "status": "RESERVED" if reserved >= body.qty else "PARTIAL",
                    "createdAt": iso(now())}
        return self.state.put(RESERVATION, doc["reservationId"], doc, ref=body.reference)

    def cancel_reservation(self, reservation_id: str) -> Doc:
        doc = self.get(RESERVATION, reservation_id, "reservation")
        if doc["status"] == "CANCELLED":
            raise SimError(409, "RESERVATION_CANCELLED", f"reservation {reservation_id} is already cancelled")
        doc.update(status="CANCELLED", cancelledAt=iso(now()))
        return self.state.put(RESERVATION, reservation_id, doc)

    def everything_by_reference(self, reference: str) -> list[Doc]:
        found = []
        for kind, id_field in ((STAGING, "stagingId"), (BLOCK, "blockId"), (TRANSFER, "transferId"),
                               (READINESS, "readinessId"), (RESERVATION, "reservationId")):
            for doc in self.state.by_ref(kind, reference):
                found.append({"type": kind, "id": doc[id_field], "document": doc})
        return found
