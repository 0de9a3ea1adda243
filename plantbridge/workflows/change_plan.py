"""How the saga acts on an ERP order change: plain deterministic code over the planner (no Temporal).

`apply_order_change` takes the order as the ERP now holds it, computes the difference
(`order_changes.diff_orders`) and, per kind:

- quantity / tolerance: the order and each operation's planned quantity follow, so the
  over-confirmation limit is the new one; a cut below a quantity already confirmed opens an
  `order_change` exception for a supervisor (nothing is clamped);
- dates: the order follows; the workflow re-arms the due-date watch;
- operations added / changed / removed: progress follows; a removed operation's later events are
  refused with the reason; one removed after confirmations opens an exception;
- components added / changed / removed: the WMS stages the new and gives back the removed
  (`wms.stage` with `materials`);
- the MES hears every plant-relevant change as a change order (`mes.change_order`);
- ERP status TECO: no more ERP postings (pending ones cancelled, buffered aggregates reported, not
  posted), the MES work order closed, the order `completed`;
- deletion flag, lock, CLSD, release revoked: returned as a cancellation by the ERP, which the
  workflow runs like a supervisor's cancel (MES recall, WMS release) with the ERP as the actor.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from plantbridge import contract
from plantbridge.canonical import commands as c
from plantbridge.canonical.exceptions import OrderException
from plantbridge.canonical.order import ProductionOrder
from plantbridge.canonical.saga import OperationProgress
from plantbridge.canonical.states import END_STATES, OrderState
from plantbridge.workflows.order_changes import OrderDiff, diff_orders, is_newer
from plantbridge.workflows.order_logic import OrderLogic

ERP_ACTOR = "erp"
_STOPPING = {"marked_for_deletion": "deletion flag set in the ERP", "locked": "order locked in the ERP",
             "closed": "order closed (CLSD) in the ERP"}


@dataclass
class ChangeOutcome:
    """What the workflow does next: nothing more, re-arm the due date, or cancel with the ERP as actor."""

    applied: bool
    diff: OrderDiff | None = None
    cancel_reason: str | None = None
    note: str = ""


def _exception(logic: OrderLogic, now: datetime, key: str, message: str) -> OrderException:
    s = logic.s
    exc = OrderException(id=contract.exception_id(len(s.exceptions) + 1), step_id=key, step_kind="erp.order_change",
                         system="erp", category="order_change", message=message, opened_at=now)
    s.exceptions.append(exc)
    logic.note(now, "exception", f"{exc.id} order change needs a supervisor: {message}")
    logic.audit(contract.exception_audit_key(exc.id, "opened", 1), ERP_ACTOR, "exception_opened",
                exception_id=exc.id, step=key, message=message[:500], code="ORDER_CHANGE")
    logic.alert(now, contract.exception_alert_key(exc.id, 1), "critical", "order_change",
                f"order {s.order.number}: {message[:300]}")
    return exc


def _step_done_or_running(logic: OrderLogic, kind: c.StepKind) -> bool:
    return any(st.kind is kind and not st.compensation and st.status in ("running", "done", "parked")
               for st in logic.s.steps)


def apply_order_change(logic: OrderLogic, new: ProductionOrder, now: datetime) -> ChangeOutcome:
    s = logic.s
    old = s.order
    if new.plant != old.plant or new.number != old.number:
        return ChangeOutcome(False, note=f"ignored: order {new.plant}/{new.number} is not this saga's")
    if s.state in END_STATES:
        return ChangeOutcome(False, note=f"ignored: the order is {s.state.value}")
    if s.erp_closed is not None:
        return ChangeOutcome(False, note=f"ignored: {s.erp_closed}")
    if not is_newer(new.version, old.version):
        return ChangeOutcome(False, note=f"ignored: version {new.version} is not newer than {old.version}")
    diff = diff_orders(old, new)
    if diff.empty:
        s.order = new  # the version moves on; nothing the saga acts on changed
        return ChangeOutcome(False, diff, note=f"version {new.version}: nothing the saga acts on changed")
    s.order_changes += 1
    n = s.order_changes
    key = contract.change_step(n, "review")
    logic.note(now, "order_change", f"ERP change {n} (version {new.version}): {diff.summary()}")
    logic.audit(contract.change_step(n, "audit"), ERP_ACTOR, "order_changed", version=new.version,
                summary=diff.summary()[:900], kinds=",".join(diff.kinds))
    stop = next((why for name, why in _STOPPING.items() if name in diff.status_set), None)
    if stop is None and diff.release_revoked:
        stop = "release revoked in the ERP"
    if stop is not None:
        s.order = new
        return ChangeOutcome(True, diff, cancel_reason=stop)
    # Quantities and operations: checked against what the plant already confirmed.
    confirmed = max((p.yield_total for p in s.operations.values()), default=Decimal(0))
    if diff.quantity and diff.quantity.new < confirmed:
        _exception(logic, now, key, f"planned quantity cut to {diff.quantity.new} {diff.quantity.uom} in the ERP, "
                                    f"below the {confirmed} already confirmed: correct the order or reverse "
                                    "confirmations")
    for op in diff.operations_removed:
        progress = s.operations.get(op.number)
        why = f"operation {op.number} was removed from order {old.number} in the ERP (change {n})"
        s.removed_operations[op.number] = why
        if progress is not None and progress.confirmations > 0:
            _exception(logic, now, key, f"operation {op.number} was removed in the ERP after "
                                        f"{progress.confirmations} confirmation(s) ({progress.yield_total} confirmed)")
        else:
            s.operations.pop(op.number, None)
    for op in diff.operations_added:
        s.removed_operations.pop(op.number, None)
        s.operations[op.number] = OperationProgress(number=op.number, work_center=op.work_center,
                                                    planned=op.planned_qty.quantity, uom=op.planned_qty.uom)
    for _, op in diff.operations_changed:
        progress = s.operations[op.number]
        progress.planned, progress.uom = op.planned_qty.quantity, op.planned_qty.uom
        progress.work_center = op.work_center
    s.order = new
    if diff.plant_relevant and _step_done_or_running(logic, c.StepKind.MES_DISPATCH):
        cmd = c.ChangeOrder(version=new.version, summary=diff.summary()[:900],
                            operations_removed=[op.number for op in diff.operations_removed])
        logic.add_step(now, contract.change_step(n, "mes_change"), cmd, c.StepKind.MES_CHANGE_ORDER,
                       event_id=f"change-{n}")
    if _step_done_or_running(logic, c.StepKind.WMS_STAGE):  # a pending staging stages the order as it is now
        changed = diff.components_changed
        release = [comp.material for comp in diff.components_removed] + [o.material for o, _ in changed]
        stage = [comp.material for comp in diff.components_added] + [nw.material for _, nw in changed]
        if release:
            logic.add_step(now, contract.change_step(n, "unstage"), c.Stage(release=True, materials=release),
                           c.StepKind.WMS_STAGE, event_id=f"change-{n}")
        if stage:
            logic.add_step(now, contract.change_step(n, "stage"), c.Stage(materials=stage), c.StepKind.WMS_STAGE,
                           event_id=f"change-{n}")
    if "technically_completed" in diff.status_set:
        if _step_done_or_running(logic, c.StepKind.ERP_COMPLETE_ORDER):  # the saga's own completion set TECO
            logic.note(now, "order_change", "TECO in the ERP: the saga's own completion posting")
        else:
            technically_complete(logic, now, n)
    elif s.state in (OrderState.IN_PROGRESS, OrderState.PARTIALLY_CONFIRMED) and _all_final_now(logic):
        logic.complete(now, after=None)  # the last open operation was removed
    return ChangeOutcome(True, diff)


def _all_final_now(logic: OrderLogic) -> bool:
    s = logic.s
    return all(s.operations.get(op.number) is not None and s.operations[op.number].final for op in s.order.operations)


def technically_complete(logic: OrderLogic, now: datetime, n: int) -> None:
    """TECO in the ERP: no more postings; what waits to be posted is reported, the MES closes the work order."""
    s = logic.s
    s.erp_closed = f"order {s.order.number} was technically completed (TECO) in the ERP; it takes no more postings"
    dropped = [st for st in s.steps if st.status in ("pending", "parked") and st.kind.posts_to_erp]
    for st in dropped:
        st.status = "cancelled"
        st.finished_at = now
    for exc in s.open_exceptions:
        if any(st.exception_id == exc.id for st in dropped) or exc.category == "order_change":
            exc.status, exc.closed_at, exc.resolved_by = "skipped", now, ERP_ACTOR
            exc.resolution_comment = "order technically completed in the ERP"
    unposted = [e for b in s.buffered_confirmations.values() for e in b.event_ids] + [
        e for b in s.buffered_consumption for e in b.event_ids]
    open_qty = {b.operation: str(b.yield_qty) for b in s.buffered_confirmations.values()}
    s.buffered_confirmations.clear()
    s.buffered_consumption.clear()
    report = (f"TECO: {len(dropped)} ERP posting(s) not made, {len(unposted)} aggregated event(s) not posted"
              + (f" (buffered yield per operation: {open_qty})" if open_qty else ""))
    logic.note(now, "order_change", report)
    logic.audit(contract.change_step(n, "teco"), ERP_ACTOR, "order_technically_completed",
                postings_dropped=len(dropped), aggregated_events_unposted=len(unposted),
                first_unposted=unposted[0] if unposted else None)
    if dropped or unposted:
        logic.alert(now, contract.change_step(n, "teco"), "warning", "teco_unposted",
                    f"order {s.order.number} TECO in the ERP: {report}")
    if _step_done_or_running(logic, c.StepKind.MES_DISPATCH):
        logic.add_step(now, contract.change_step(n, "mes_close"),
                       c.ChangeOrder(version=s.order.version, summary="technically completed in the ERP", close=True),
                       c.StepKind.MES_CHANGE_ORDER, event_id=f"change-{n}")
    if s.hold is not None:
        logic.note(now, "order_change", f"quality hold ({s.hold.reason}) ends with TECO; the stock block stays "
                                        "in the WMS for the quality team")
        s.hold = None
    s.completed_at = now
    logic.transition(OrderState.COMPLETED, now, "technically completed (TECO) in the ERP")
