"""ERP order changes (issue 14) without Temporal: the difference, the version rule, and what the
planner does with each kind (`order_changes.diff_orders`, `change_plan.apply_order_change`)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from plantbridge.canonical import commands as c
from plantbridge.canonical.order import ProductionOrder
from plantbridge.canonical.policy import PlantPolicy
from plantbridge.canonical.saga import SagaState
from plantbridge.canonical.states import OrderState
from plantbridge.workflows.change_plan import apply_order_change
from plantbridge.workflows.order_changes import diff_orders, is_newer
from plantbridge.workflows.order_logic import OrderLogic
from tests.conftest import new_order, qty
from tests.test_order_logic import accept, ev

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def changed(order: ProductionOrder, version: str, **update: Any) -> ProductionOrder:
    data = order.model_dump(mode="json")
    data.update(version=version, **update)
    return ProductionOrder.model_validate(data)


def running(**kw: Any) -> OrderLogic:
    """A released order whose dispatch and staging are done, version 20260302080000."""
    logic = OrderLogic(SagaState(order=new_order(version="20260302080000", **kw), policy=PlantPolicy()), "wf")
    logic.release(NOW)
    for step in logic.s.steps:
        step.status = "done"
    return logic


def test_versions_order_by_sap_stamp_and_hashes_only_differ() -> None:
    assert is_newer("20260302080001", "20260302080000")
    assert not is_newer("20260302080000", "20260302080000")
    assert not is_newer("20260302075959", "20260302080000")
    assert is_newer("20260302080001123456", "20260302080000")  # an IDoc SERIAL beside LastChangeDateTime
    assert is_newer("sha:b", "sha:a") and not is_newer("sha:a", "sha:a")
    assert is_newer(None, "20260302080000") and is_newer("x", None)


def test_diff_names_every_kind() -> None:
    old = new_order(version="1")
    ops = [op.model_dump(mode="json") for op in old.operations]
    ops[1]["work_center"] = "TEST-02"
    ops.append({"number": "0030", "work_center": "PACK-01", "planned_qty": qty(100)})
    del ops[0]
    comps = [cp.model_dump(mode="json") for cp in old.components if cp.operation != "0010"]
    comps[0]["quantity"] = qty(120)
    comps.append({"item": "0030", "material": "RM-BOX", "quantity": qty(100), "operation": "0030"})
    new = changed(old, "2", quantity=qty(120), end_date="2026-03-09", operations=ops, components=comps,
                  erp_status={"technically_completed": True})
    d = diff_orders(old, new)
    assert d.quantity is not None and (d.quantity.old, d.quantity.new) == (Decimal(100), Decimal(120))
    assert d.dates is not None and d.dates.new_end == date(2026, 3, 9)
    assert [o.number for o in d.operations_added] == ["0030"]
    assert [o.number for o in d.operations_removed] == ["0010"]
    assert [n.number for _, n in d.operations_changed] == ["0020"]
    assert [cp.material for cp in d.components_added] == ["RM-BOX"]
    assert [cp.material for cp in d.components_removed] == ["RM-STEEL"]
    assert [n.material for _, n in d.components_changed] == ["RM-SEAL"]
    assert d.status_set == ["technically_completed"] and not d.release_revoked
    assert diff_orders(old, changed(old, "3")).empty


def test_raised_quantity_moves_the_over_confirmation_limit_and_tells_the_mes() -> None:
    logic = running()
    ops = [{**op.model_dump(mode="json"), "planned_qty": qty(150)} for op in logic.s.order.operations]
    too_many = ev(logic, "operation_confirmed", operation="0010", yield_qty=qty(120))
    assert "over-confirmation" in (logic.rejection_reason(too_many) or "")
    out = apply_order_change(logic, changed(logic.s.order, "20260302090000", quantity=qty(150), operations=ops), NOW)
    assert out.applied and out.cancel_reason is None
    assert logic.rejection_reason(too_many) is None
    [mes] = [st for st in logic.s.steps if st.kind is c.StepKind.MES_CHANGE_ORDER]
    assert mes.id == "change-1:mes_change" and "quantity 100 → 150" in mes.command.summary  # type: ignore[union-attr]
    assert logic.s.pending_audit[-1].action == "order_changed"


def test_older_or_repeated_version_is_ignored() -> None:
    logic = running()
    newer = changed(logic.s.order, "20260302090000", quantity=qty(150))
    assert apply_order_change(logic, newer, NOW).applied
    older = changed(logic.s.order, "20260302085959", quantity=qty(80))
    out = apply_order_change(logic, older, NOW)
    assert not out.applied and "not newer" in out.note
    assert not apply_order_change(logic, newer, NOW).applied
    assert logic.s.order.quantity.quantity == 150 and logic.s.order_changes == 1


def test_cut_below_confirmed_opens_an_exception_not_a_clamp() -> None:
    logic = running()
    accept(logic, "operation_confirmed", operation="0010", yield_qty=qty(60))
    apply_order_change(logic, changed(logic.s.order, "20260302090000", quantity=qty(50)), NOW)
    [exc] = logic.s.open_exceptions
    assert exc.category == "order_change" and "below the 60" in exc.message
    assert logic.s.order.quantity.quantity == 50  # the ERP's order, as it is; the supervisor decides


def test_removed_operation_refuses_its_events_and_with_confirmations_is_an_exception() -> None:
    logic = running()
    accept(logic, "operation_confirmed", operation="0010", yield_qty=qty(10))
    keep = [op.model_dump(mode="json") for op in logic.s.order.operations if op.number == "0020"]
    comps = [cp.model_dump(mode="json") for cp in logic.s.order.components if cp.operation == "0020"]
    apply_order_change(logic, changed(logic.s.order, "20260302090000", operations=keep, components=comps), NOW)
    reason = logic.rejection_reason(ev(logic, "operation_started", operation="0010")) or ""
    assert "removed from order" in reason
    assert [e.category for e in logic.s.open_exceptions] == ["order_change"]
    steps = {st.id: st for st in logic.s.steps}
    assert steps["change-1:unstage"].command == c.Stage(release=True, materials=["RM-STEEL"])


def test_added_component_is_staged() -> None:
    logic = running()
    comps = [cp.model_dump(mode="json") for cp in logic.s.order.components]
    comps.append({"item": "0030", "material": "RM-BOX", "quantity": qty(100), "operation": "0020"})
    apply_order_change(logic, changed(logic.s.order, "20260302090000", components=comps), NOW)
    steps = {st.id: st for st in logic.s.steps}
    assert steps["change-1:stage"].command == c.Stage(materials=["RM-BOX"])


def test_teco_completes_without_further_postings() -> None:
    logic = running()
    accept(logic, "operation_confirmed", operation="0010", yield_qty=qty(40))
    pending = [st for st in logic.s.steps if st.kind.posts_to_erp and st.status == "pending"]
    assert pending
    apply_order_change(logic, changed(logic.s.order, "20260302090000",
                                      erp_status={"technically_completed": True}), NOW)
    assert logic.s.state is OrderState.COMPLETED
    assert all(st.status == "cancelled" for st in pending)
    assert not any(st.kind.posts_to_erp and not st.finished for st in logic.s.steps)
    assert "TECO" in (logic.rejection_reason(ev(logic, "operation_confirmed", operation="0020",
                                                 yield_qty=qty(1))) or "")
    [close] = [st for st in logic.s.steps if st.kind is c.StepKind.MES_CHANGE_ORDER]
    assert close.command.close  # type: ignore[union-attr]


def test_deletion_flag_or_lock_is_a_cancellation_by_the_erp() -> None:
    for flag in ("marked_for_deletion", "locked"):
        logic = running()
        out = apply_order_change(logic, changed(logic.s.order, "20260302090000", erp_status={flag: True}), NOW)
        assert out.cancel_reason and "ERP" in out.cancel_reason
        assert logic.s.state is OrderState.RELEASED  # the workflow runs the cancellation (compensations)
    logic = running()
    out = apply_order_change(logic, changed(logic.s.order, "20260302090000", released=False), NOW)
    assert out.cancel_reason == "release revoked in the ERP"


def test_teco_from_the_sagas_own_completion_changes_nothing() -> None:
    logic = running()
    accept(logic, "operation_confirmed", operation="0010", yield_qty=qty(100), final=True)
    accept(logic, "operation_confirmed", operation="0020", yield_qty=qty(100), final=True)
    assert logic.s.state is OrderState.COMPLETED
    for st in logic.s.steps:
        if st.kind is c.StepKind.ERP_COMPLETE_ORDER or st.kind is c.StepKind.ERP_GOODS_RECEIPT:
            st.status = "done"
    pending = [st.id for st in logic.s.steps if st.status == "pending"]
    apply_order_change(logic, changed(logic.s.order, "20260302090000",
                                      erp_status={"technically_completed": True}), NOW)
    assert [st.id for st in logic.s.steps if st.status == "pending"] == pending  # WMS transfer etc. go on
    assert logic.s.erp_closed is None
