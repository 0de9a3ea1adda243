"""ERP intake: S/4HANA business events (CloudEvents) and LOIPRO IDocs start the order sagas."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from temporalio.service import RPCError, RPCStatusCode

from plantbridge.canonical.fields import normalize_order_number
from plantbridge.canonical.order import OrderChangeNotice, OrderReleaseNotice, ProductionOrder, workflow_id
from plantbridge.client import RPC_TIMEOUT, TemporalUnavailable, bounded, start_order
from plantbridge.connectors.errors import OrderNotFound, TransientError
from plantbridge.gateway.auth import Caller, forbidden_plant_reason
from plantbridge.gateway.bodies import parse_json
from plantbridge.gateway.errors import ApiError, error_body, invalid
from plantbridge.gateway.idoc_loipro import IdocError, parse_loipro
from plantbridge.gateway.outcome import Outcome
from plantbridge.workflows.production_order import ProductionOrderWorkflow

if TYPE_CHECKING:  # the inbox service drives this class and re-drives through it (inbox.py imports this module)
    from plantbridge.gateway.inbox import Intake

log = logging.getLogger("plantbridge.gateway")

EVENT_PREFIX = "sap.s4.beh.productionorder.v1.ProductionOrder."
# SAP's production-order event spec has exactly these two types (ORDER-FACTS 2.1): a release, a
# TECO, a lock or a deletion flag arrives as `Changed`; the order's status is read back through OData.
READS_ORDER = ("Created", "Changed")


class OrderEventData(BaseModel):
    model_config = ConfigDict(extra="allow")

    ManufacturingOrder: str = Field(pattern=r"^[0-9A-Za-z]{1,12}$", description="SAP's order number (AUFNR)")


class CloudEvent(BaseModel):
    """A CloudEvents 1.0 envelope in structured JSON mode, as S/4HANA's event mesh sends it."""

    model_config = ConfigDict(extra="allow")

    specversion: str = Field(pattern=r"^1\.0$")
    type: str = Field(pattern=r"^sap\.s4\.beh\.productionorder\.v1\.ProductionOrder\.[A-Za-z]+(\.v[0-9]+)?$",
                      max_length=200, description="`sap.s4.beh.productionorder.v1.ProductionOrder.<Kind>.v1`")
    source: str = Field(min_length=1, max_length=500)
    id: str = Field(min_length=1, max_length=200)
    subject: str | None = Field(default=None, max_length=500)
    time: str | None = Field(default=None, max_length=64)
    data: OrderEventData


class ErpIntake:
    def __init__(self, intake: Intake) -> None:
        self.intake = intake
        self.deps = intake.deps

    async def sap_event(self, msg_id: int, raw: bytes, caller: Caller) -> Outcome:
        try:
            data = parse_json(raw)
            event = CloudEvent.model_validate(data)
        except ApiError as err:
            return await self.intake.dead(msg_id, err)
        except ValidationError as err:
            return await self.intake.dead(msg_id, invalid(err, None, "CloudEvent"))
        if not event.type.startswith(EVENT_PREFIX):
            msg = f"type {event.type[:80]!r} is not a production order event ({EVENT_PREFIX}*)"
            return await self.intake.dead(msg_id, ApiError(422, "validation_error", msg,
                                                           [{"loc": ["type"], "message": msg}]))
        kind = event.type[len(EVENT_PREFIX):].split(".", 1)[0]
        try:
            number = normalize_order_number(event.data.ManufacturingOrder)
        except ValueError as err:
            return await self.intake.dead(msg_id, ApiError(
                422, "validation_error", str(err), [{"loc": ["data", "ManufacturingOrder"], "message": str(err)}]))
        if kind not in READS_ORDER:
            return await self._processed(msg_id, 200, {"order": number, "status": "ignored",
                                                       "reason": f"{kind} events do not change the saga"}, None)
        source = self.deps.order_source
        if source is None:
            return await self.intake.dead(msg_id, ApiError(
                503, "no_order_source", "the gateway has no ERP order source configured to read the order"))
        try:
            order = await source.read_order(number)
        except OrderNotFound as err:
            return await self.intake.dead(msg_id, ApiError(404, "erp_order_not_found",
                                                           f"the ERP does not know order {number}: {err}"[:300]))
        except TransientError as err:  # the ERP not now: kept and re-driven (503 + Retry-After), as for Temporal
            log.warning("reading order %s failed, deferred: %s", number, err)
            return await self.intake.defer(msg_id, "erp_unavailable", f"could not read order {number} from the ERP "
                                           f"now ({err})"[:300], retry_after=5, order=number)
        except Exception as err:
            log.warning("reading order %s failed: %s", number, err)
            return await self.intake.dead(msg_id, ApiError(502, "erp_unavailable",
                                                           f"could not read order {number} from the ERP: {err}"[:300]))
        if not caller.may(order.plant):
            return await self.intake.dead(msg_id, ApiError(403, "forbidden_plant",
                                                           forbidden_plant_reason(caller, order.plant)))
        try:
            result = await self.order_known(order)
        except (TemporalUnavailable, RPCError) as err:
            return await temporal_failure(self.intake, msg_id, err, order)
        return await self._processed(msg_id, 200, result, order)

    async def idoc(self, msg_id: int, raw: bytes, caller: Caller) -> Outcome:
        # SAP resends the whole order as LOIPRO on each change (ORDER-FACTS 3.1): a repeated IDoc is a
        # change notice for a running saga, which reads the order back itself.
        try:
            orders = parse_loipro(raw, self.deps.idoc_plant_map)
            if len(orders) > self.deps.max_orders_per_idoc:
                return await self.intake.dead(msg_id, ApiError(
                    413, "too_many_orders", f"the IDoc carries {len(orders)} orders; at most "
                    f"{self.deps.max_orders_per_idoc} per IDoc: send them in several IDocs"))
        except IdocError as err:
            return await self.intake.dead(msg_id, ApiError(422, "invalid_idoc", str(err)[:1000],
                                                           [{"loc": ["body"], "message": str(err)[:1000]}]))
        for order in orders:
            if not caller.may(order.plant):
                return await self.intake.dead(msg_id, ApiError(403, "forbidden_plant",
                                                               forbidden_plant_reason(caller, order.plant)))
        try:  # on a re-delivery the orders already started are released/changed again (idempotent)
            results = [await self.order_known(order, "idoc") for order in orders]
        except (TemporalUnavailable, RPCError) as err:
            return await temporal_failure(self.intake, msg_id, err, orders[0])
        first = orders[0]
        return await self._processed(msg_id, 200, {"orders": results}, first)

    async def _processed(self, msg_id: int, status: int, body: dict[str, Any],
                         order: ProductionOrder | None) -> Outcome:
        out = Outcome(status, body)
        await self.intake.inbox.finish(msg_id, "processed", answer=out.stored(), reason=body.get("reason"),
                                       plant=order.plant if order else None, order=order.number if order else None)
        return out

    async def order_known(self, order: ProductionOrder, source: str = "sap_event") -> dict[str, Any]:
        """Start (or release) the order's saga when the order is released; deliver what waited for it."""
        wf_id = workflow_id(order.plant, order.number)
        base: dict[str, Any] = {"order": order.number, "plant": order.plant, "workflow_id": wf_id}
        client = self.deps.client
        if not order.released:
            return await self._not_released(order, base)
        handle = client.get_workflow_handle(wf_id)
        try:
            desc = await bounded(handle.describe(rpc_timeout=RPC_TIMEOUT), f"describe({wf_id})")
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
            desc = None
        if desc is not None and desc.close_time is not None:
            ended = desc.status.name if desc.status else "closed"
            return {**base, "status": "finished", "reason": f"the order's saga ended ({ended})"}
        if desc is None:
            await bounded(start_order(client, order, self.deps.policy_for(order.plant), rpc_timeout=RPC_TIMEOUT),
                          f"start({wf_id})")
            status = "started"
        else:
            # A saga started in `planned` is released; a released saga ignores that signal and hears
            # the change instead. Both carry the key and version only: the saga reads the order from
            # the ERP itself (`erp.read_order`).
            release = OrderReleaseNotice(plant=order.plant, order=order.number, version=order.version, source=source)
            await bounded(handle.signal(ProductionOrderWorkflow.order_released, release, rpc_timeout=RPC_TIMEOUT),
                          f"order_released({wf_id})")
            notice = OrderChangeNotice(plant=order.plant, order=order.number, version=order.version, source=source)
            await bounded(handle.signal(ProductionOrderWorkflow.order_changed, notice, rpc_timeout=RPC_TIMEOUT),
                          f"order_changed({wf_id})")
            status = "released"  # (kept for callers: the saga was signalled release + change)
        if self.deps.uns is not None and status == "started":  # a released order starts in `released`
            self.deps.uns.state(order.plant, order.number, "released", cause={"erp": "released"})
        delivered = await self.intake.deliver_waiting(order.plant, order.number)
        return {**base, "status": status, "delivered_waiting": delivered, "reason": None}

    async def _not_released(self, order: ProductionOrder, base: dict[str, Any]) -> dict[str, Any]:
        """An order not (or no longer) released: recorded; a running saga hears it (release revoked)."""
        handle = self.deps.client.get_workflow_handle(base["workflow_id"])
        try:
            desc = await bounded(handle.describe(rpc_timeout=RPC_TIMEOUT), f"describe({base['workflow_id']})")
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
            return {**base, "status": "recorded", "reason": "order not released yet"}
        if desc.close_time is not None:
            return {**base, "status": "finished", "reason": "the order's saga ended"}
        notice = OrderChangeNotice(plant=order.plant, order=order.number, version=order.version, source="erp")
        await bounded(handle.signal(ProductionOrderWorkflow.order_changed, notice, rpc_timeout=RPC_TIMEOUT),
                      f"order_changed({base['workflow_id']})")
        return {**base, "status": "changed", "reason": "order not released in the ERP (any more)"}


async def temporal_failure(intake: Intake, msg_id: int, err: Exception, order: ProductionOrder) -> Outcome:
    """Temporal did not take an ERP message: "not now" keeps it `deferred` (503 + Retry-After, the gateway's
    re-driver delivers it again); a refusal for good is a dead letter for a person (503, structured)."""
    if isinstance(err, TemporalUnavailable):
        log.warning("ERP message %s for order %s deferred: %s", msg_id, order.number, err)
        return await intake.defer(msg_id, "saga_limit" if err.limit else "temporal_unavailable",
                                  f"the order's saga could not be started or told now ({err})"[:300],
                                  retry_after=1 if err.limit else 5, plant=order.plant, order=order.number)
    log.warning("ERP message %s for order %s refused by Temporal: %s", msg_id, order.number, err)
    out = Outcome(503, error_body(503, "temporal_refused", f"Temporal refused the call: {err}"[:500]))
    await intake.inbox.finish(msg_id, "dead", reason=f"Temporal refused the call: {err}"[:500], answer=out.stored(),
                              plant=order.plant, order=order.number)
    return out
