"""The WMS connector ("StockPilot WMS"): staging, stock blocks, finished-goods transfer, shipment readiness.

Every creating POST carries ``Idempotency-Key: <key>`` and ``reference: <key>`` (the step's
32-character external key). On `retry` the connector first looks the request up by reference
(``GET /<collection>?reference=``) and answers with what it finds (`replayed=True`), without a
second request. A ``409 DUPLICATE_REFERENCE`` (the request arrived earlier, its answer was lost,
and the call is not flagged as a retry) is resolved the same way; a repeated key with the same
body gets the WMS's stored answer (``Idempotent-Replayed: true``, also `replayed=True`).

Locations: canonical / ERP names -> WMS locations, `DEFAULT_LOCATIONS` overridden by the
plant file's `xref.locations` when the plant configuration has that table (proposed field, read
with `getattr`), then by the `locations` argument:

=============  ==========  ===========================================================
key            default     used for
=============  ==========  ===========================================================
``LINE``       ``LINE-L1`` staging destination (line side); a key equal to the ERP work
                           center of the order's first operation wins (``ASSY-01: LINE-L1``)
``PROD-OUT``   ``PROD-OUT`` production output: source of the finished-goods transfer and
                           where the order's output is blocked
``FG``         ``FG-01``   finished goods (`Transfer.to_location` default, shipment readiness)
``QI``         ``QI-01``   quarantine
<ERP sloc>     (none)      a component's `storage_location` -> staging source; unmapped:
                           the WMS picks the storage location with the most stock
=============  ==========  ===========================================================

A location that is neither mapped nor one of the WMS's own is ``XREF-LOCATION``.
Units: `xref.units` read backwards when the WMS accepts the code, else built in (``H87`` ->
``EA``, ``KGM`` -> ``KG``, ``LTR``, ``MTR``, ``BX`` -> ``BOX``), else ``XREF-UNIT``.

Compensations and lifts find what the order put in the WMS by its ``orderRef`` (the WMS lists
have no order filter, so the collection is read and filtered):
- `Stage(release=True)`: open / in-progress staging requests are cancelled; tasks already
  confirmed (material at the line) are transferred back to where they came from
  (reference ``{key}-{taskId}``). Cancelled requests are skipped ("already done").
- `StockBlock(blocked=False)`: every active block of the order's material with the order's
  ``orderRef`` is released; none active = already lifted (`replayed=True`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from plantbridge.canonical.commands import Reservation, ShipmentReady, Stage, StepResult, StockBlock, Transfer
from plantbridge.canonical.fields import Quantity
from plantbridge.canonical.order import ProductionOrder
from plantbridge.canonical.plant_config import PlantConfig, TlsSettings
from plantbridge.connectors.errors import BusinessRejection
from plantbridge.connectors.rest_common import (
    RestConnector,
    decimal_text,
    local_unit,
)

SYSTEM = "wms"
API = "/wms/api"
WMS_UNITS = frozenset({"EA", "KG", "LTR", "MTR", "BOX"})
WMS_UNIT_OF: dict[str, str] = {"H87": "EA", "C62": "EA", "EA": "EA", "KGM": "KG", "LTR": "LTR", "MTR": "MTR",
                               "BX": "BOX"}
WMS_LOCATIONS = frozenset({"RM-A01", "RM-B01", "LINE-L1", "LINE-L2", "PROD-OUT", "QI-01", "FG-01", "SP-01",
                           "DOCK-01"})
DEFAULT_LOCATIONS: dict[str, str] = {"LINE": "LINE-L1", "PROD-OUT": "PROD-OUT", "FG": "FG-01", "QI": "QI-01",
                                     "SPARES": "SP-01"}
BLOCK_REASON = "QC-HOLD"
# collection path -> id field
STAGING, BLOCKS, TRANSFERS, READINESS = "staging-requests", "stock-blocks", "transfers", "shipment-readiness"
RESERVATIONS = "reservations"
ID_FIELD = {STAGING: "stagingId", BLOCKS: "blockId", TRANSFERS: "transferId", READINESS: "readinessId",
            RESERVATIONS: "reservationId"}


class WmsRestConnector(RestConnector):
    SYSTEM = SYSTEM
    DEV_KEY = "wms-dev-key"

    def __init__(
        self,
        url: str,
        *,
        api_key: str,
        plant_config: PlantConfig,
        timeout: float = 15.0,
        transport: httpx.AsyncBaseTransport | None = None,
        locations: Mapping[str, str] | None = None,
        tls: TlsSettings | None = None,
    ) -> None:
        super().__init__(url, api_key=api_key, plant_config=plant_config, timeout=timeout, transport=transport,
                         tls=tls)
        configured: Mapping[str, str] = plant_config.xref.locations
        self.locations: dict[str, str] = {**DEFAULT_LOCATIONS, **configured, **(locations or {})}

    # --- mapping --------------------------------------------------------------------------

    def unit(self, unece: str) -> str:
        return local_unit(unece, plant=self.plant, system=SYSTEM, accepted=WMS_UNITS, builtin=WMS_UNIT_OF)

    def location(self, name: str) -> str:
        if name in self.locations:
            return self.locations[name]
        if name in WMS_LOCATIONS:
            return name
        raise BusinessRejection(
            f"no WMS location for {name}: add it to xref.locations in the plant file of plant {self.plant.plant} "
            f"(the WMS knows {', '.join(sorted(WMS_LOCATIONS))})",
            system=SYSTEM, code="XREF-LOCATION", details=[f"xref.locations: {name}: <WMS location>"],
        )

    def line_side(self, order: ProductionOrder) -> str:
        first = min(order.operations, key=lambda op: op.number)
        return self.location(first.work_center if first.work_center in self.locations else "LINE")

    def quantity(self, qty: Quantity) -> tuple[str, str]:
        return decimal_text(qty.quantity), self.unit(qty.uom)

    # --- requests by reference ------------------------------------------------------------

    async def by_reference(self, collection: str, reference: str) -> dict[str, Any] | None:
        found = await self.http.json("GET", f"{API}/{collection}", params={"reference": reference},
                                     doing=f"look up {collection} {reference}")
        items: list[dict[str, Any]] = found.get("items", [])
        return items[0] if items else None

    async def create(self, collection: str, body: dict[str, Any], *, key: str, retry: bool,
                     doing: str) -> tuple[dict[str, Any], bool]:
        """POST a request with reference = key; (document, replayed)."""
        reference = body["reference"]
        if retry:
            earlier = await self.by_reference(collection, reference)
            if earlier is not None:
                return earlier, True
        try:
            response = await self.http.call("POST", f"{API}/{collection}", json=body, idempotency_key=key,
                                            doing=doing)
        except BusinessRejection as err:
            if err.code != "DUPLICATE_REFERENCE":
                raise
            earlier = await self.by_reference(collection, reference)
            if earlier is None:
                raise
            return earlier, True
        return response.json(), response.headers.get("idempotent-replayed") == "true"

    async def for_order(self, collection: str, order: ProductionOrder) -> list[dict[str, Any]]:
        found = await self.http.json("GET", f"{API}/{collection}", doing=f"list {collection}")
        return [d for d in found.get("items", []) if d.get("orderRef") == order.number]

    @staticmethod
    def doc(collection: str, document: dict[str, Any]) -> str:
        return f"WMS {document[ID_FIELD[collection]]}"

    # --- the port -------------------------------------------------------------------------

    async def stage(self, order: ProductionOrder, cmd: Stage, *, key: str, retry: bool) -> StepResult:
        if cmd.release:
            if cmd.materials is not None:
                return await self.release_materials(order, cmd.materials, key=key)
            return await self.release_staging(order, key=key)
        wanted = [c for c in order.components if cmd.materials is None or c.material in cmd.materials]
        if not wanted:
            return StepResult(message=f"order {order.number} has no components to stage")
        items = []
        for comp in wanted:
            qty, unit = self.quantity(comp.quantity)
            item: dict[str, Any] = {"material": comp.material, "qty": qty, "unit": unit}
            if comp.storage_location and comp.storage_location in self.locations:
                item["fromLocation"] = self.locations[comp.storage_location]
            items.append(item)
        body = {"reference": key, "orderRef": order.number, "toLocation": self.line_side(order), "items": items}
        doc, replayed = await self.create(STAGING, body, key=key, retry=retry,
                                          doing=f"stage the components of order {order.number}")
        return StepResult(documents=[self.doc(STAGING, doc)], replayed=replayed,
                          message=f"staging {doc['stagingId']} {doc['status']} to {doc['toLocation']}, "
                                  f"{len(doc.get('tasks', []))} task(s)")

    async def release_materials(self, order: ProductionOrder, materials: list[str], *, key: str) -> StepResult:
        """An ERP change took components off the order: cancel their open staging tasks, return staged ones."""
        documents: list[str] = []
        for stg in await self.for_order(STAGING, order):
            if stg["status"] == "CANCELLED":
                continue
            for task in stg.get("tasks", []):
                if task["material"] not in materials or task["status"] == "CANCELLED":
                    continue
                if task["status"] == "CONFIRMED":
                    back = {"reference": f"{key}-{task['taskId']}", "material": task["material"], "qty": task["qty"],
                            "unit": task["unit"], "fromLocation": task["toLocation"],
                            "toLocation": task["fromLocation"], "orderRef": order.number}
                    trf, _ = await self.create(TRANSFERS, back, key=back["reference"], retry=True,
                                               doing=f"return staged {task['material']} of {stg['stagingId']}")
                    documents.append(self.doc(TRANSFERS, trf))
                else:
                    await self.http.call("POST", f"{API}/{STAGING}/{stg['stagingId']}/tasks/{task['taskId']}/cancel",
                                         idempotency_key=f"{key}-{task['taskId']}",
                                         doing=f"cancel staging task {task['taskId']}")
                    documents.append(f"WMS {stg['stagingId']}/{task['taskId']}")
        return StepResult(documents=documents, message=f"staging of {', '.join(materials)} released"
                          if documents else f"nothing staged of {', '.join(materials)}")

    async def release_staging(self, order: ProductionOrder, *, key: str) -> StepResult:
        documents: list[str] = []
        acted = False
        for stg in await self.for_order(STAGING, order):
            stg_id = stg["stagingId"]
            documents.append(f"WMS {stg_id}")
            if stg["status"] == "CANCELLED":
                continue
            if stg["status"] != "STAGED":
                await self.http.call("POST", f"{API}/{STAGING}/{stg_id}/cancel", idempotency_key=f"{key}-{stg_id}",
                                     doing=f"cancel staging {stg_id}")
                acted = True
            for task in stg.get("tasks", []):
                if task["status"] != "CONFIRMED":
                    continue
                back = {"reference": f"{key}-{task['taskId']}", "material": task["material"], "qty": task["qty"],
                        "unit": task["unit"], "fromLocation": task["toLocation"],
                        "toLocation": task["fromLocation"], "orderRef": order.number}
                trf, replayed = await self.create(TRANSFERS, back, key=back["reference"], retry=True,
                                                  doing=f"return staged {task['material']} of {stg_id}")
                documents.append(self.doc(TRANSFERS, trf))
                acted = acted or not replayed
        if not documents:
            return StepResult(message=f"nothing staged for order {order.number}", replayed=True)
        return StepResult(documents=documents, replayed=not acted,
                          message="staging released" if acted else "staging already released")

    async def stock_block(self, order: ProductionOrder, cmd: StockBlock, *, key: str, retry: bool) -> StepResult:
        if not cmd.blocked:
            return await self.unblock(order, cmd, key=key)
        body: dict[str, Any] = {
            "reference": key, "material": order.material, "location": self.location("PROD-OUT"),
            "reasonCode": BLOCK_REASON, "orderRef": order.number, "text": (cmd.reason or "")[:200],
        }
        doc, replayed = await self.create(BLOCKS, body, key=key, retry=retry,
                                          doing=f"block the output of order {order.number}")
        return StepResult(documents=[self.doc(BLOCKS, doc)], replayed=replayed,
                          message=f"{order.material} blocked at {doc['location']} ({doc['blockId']}, {doc['status']})")

    async def unblock(self, order: ProductionOrder, cmd: StockBlock, *, key: str) -> StepResult:
        blocks = [b for b in await self.for_order(BLOCKS, order) if b.get("material") == order.material]
        active = [b for b in blocks if b["status"] == "ACTIVE"]
        if not active:
            return StepResult(documents=[self.doc(BLOCKS, b) for b in blocks[-1:]], replayed=True,
                              message=f"no active block on {order.material} for order {order.number}")
        for block in active:
            try:
                await self.http.call("POST", f"{API}/{BLOCKS}/{block['blockId']}/release",
                                     json={"text": (cmd.reason or "")[:200]},
                                     idempotency_key=f"{key}-{block['blockId']}",
                                     doing=f"release block {block['blockId']}")
            except BusinessRejection as err:
                if err.code != "BLOCK_NOT_ACTIVE":  # released meanwhile: already done
                    raise
        return StepResult(documents=[self.doc(BLOCKS, b) for b in active],
                          message=f"{len(active)} block(s) on {order.material} released")

    async def transfer(self, order: ProductionOrder, cmd: Transfer, *, key: str, retry: bool) -> StepResult:
        qty, unit = self.quantity(cmd.quantity)
        body: dict[str, Any] = {
            "reference": key, "material": order.material, "qty": qty, "unit": unit,
            "fromLocation": self.location("PROD-OUT"), "toLocation": self.location(cmd.to_location),
            "orderRef": order.number,
        }
        if order.batch:
            body["batch"] = order.batch
        doc, replayed = await self.create(TRANSFERS, body, key=key, retry=retry,
                                          doing=f"transfer the output of order {order.number}")
        return StepResult(documents=[self.doc(TRANSFERS, doc)], replayed=replayed,
                          message=f"{doc['qty']} {doc['unit']} {doc['fromLocation']} -> {doc['toLocation']}")

    async def reserve(self, order: ProductionOrder, cmd: Reservation, *, key: str, retry: bool) -> StepResult:
        """Spare parts for a maintenance job: one reservation per material, at the spare-parts location."""
        documents: list[str] = []
        replayed_all = True
        for i, item in enumerate(cmd.items):
            qty, unit = self.quantity(item.quantity)
            body = {"reference": key if len(cmd.items) == 1 else f"{key}-{i + 1}", "material": item.material,
                    "qty": qty, "unit": unit, "location": self.location("SPARES"), "equipment": cmd.equipment,
                    "orderRef": order.number}
            doc, replayed = await self.create(RESERVATIONS, body, key=str(body["reference"]), retry=retry,
                                              doing=f"reserve {item.material} for {cmd.equipment}")
            documents.append(self.doc(RESERVATIONS, doc))
            replayed_all = replayed_all and replayed
        return StepResult(documents=documents, replayed=replayed_all,
                          message=f"{len(documents)} spare part reservation(s) for {cmd.equipment}")

    async def shipment_ready(self, order: ProductionOrder, cmd: ShipmentReady, *, key: str, retry: bool) -> StepResult:
        # The answer's status (READY, BLOCKED, SHORT) is reported, not raised: the check is recorded
        # in the WMS either way, and shipping is the WMS's and logistics' decision.
        qty, unit = self.quantity(cmd.quantity)
        body = {"reference": key, "orderRef": order.number, "material": order.material, "qty": qty, "unit": unit,
                "location": self.location("FG")}
        doc, replayed = await self.create(READINESS, body, key=key, retry=retry,
                                          doing=f"report shipment readiness of order {order.number}")
        return StepResult(documents=[self.doc(READINESS, doc)], replayed=replayed,
                          message=f"shipment readiness {doc['status']}: {doc['availableQty']} of {doc['qty']} "
                                  f"{doc['unit']} available at {doc['location']}")
