"""The planner (`OrderLogic`) against its tables, with no Temporal: milliseconds per case.

Every (event type, order state) pair is checked against `EVENT_TABLE`: accepted exactly where the
table says, the state it reaches is one the table names, the steps it plans (keyed by the event)
are among the table's, and every move it makes is in the transition table (`transition` raises
otherwise).
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from plantbridge.canonical.events import EventType, PlantEvent
from plantbridge.canonical.policy import PlantPolicy
from plantbridge.canonical.saga import SagaState
from plantbridge.canonical.states import TRANSITIONS, IllegalTransition, OrderState
from plantbridge.workflows.event_table import ALLOWED, EVENT_TABLE
from plantbridge.workflows.order_logic import OrderLogic
from plantbridge.workflows.retention import prunable, without_oldest_finished
from tests.conftest import new_order, qty

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
_ids = itertools.count(1)

EVENT_FIELDS: dict[EventType, dict[str, Any]] = {
    EventType.OPERATION_STARTED: {"operation": "0020"},
    EventType.OPERATION_CONFIRMED: {"operation": "0020", "yield_qty": qty(10)},
    EventType.MATERIAL_CONSUMED: {"material": "RM-SEAL", "quantity": qty(5)},
    EventType.DOWNTIME_STARTED: {"work_center": "TEST-01"},
    EventType.DOWNTIME_ENDED: {"work_center": "ASSY-01"},
    EventType.QUALITY_RESULT: {"passed": False, "characteristics": [{"name": "bore", "value": "12.4", "ok": False}]},
    EventType.QUALITY_HOLD: {"reason": "scratch on surface"},
    EventType.QUALITY_DISPOSITION: {"decision": "scrap", "quantity": qty(3)},
    EventType.MAINTENANCE_REQUESTED: {"equipment": "PRESS-2", "priority": 2, "description": "oil leak"},
}


def ev(logic: OrderLogic, event_type: EventType | str, **fields: Any) -> PlantEvent:
    order = logic.s.order
    return PlantEvent.model_validate(
        {"event_id": f"u-{next(_ids)}", "event_type": str(event_type), "source": "mes-test", "plant": order.plant,
         "order": order.number, "occurred_at": NOW.isoformat(), **fields}
    )


def accept(logic: OrderLogic, event_type: EventType | str, **fields: Any) -> PlantEvent:
    event = ev(logic, event_type, **fields)
    assert logic.rejection_reason(event) is None
    logic.apply(event, NOW)
    return event


def logic_in(state: OrderState, policy: PlantPolicy | None = None) -> OrderLogic:
    """A planner whose order reached `state` the way the saga gets there."""
    logic = OrderLogic(SagaState(order=new_order(), policy=policy or PlantPolicy()), "production-order:1000:1")
    if state is OrderState.PLANNED:
        return logic
    logic.release(NOW)
    if state is OrderState.IN_PROGRESS:
        accept(logic, "operation_started", operation="0010")
    elif state is OrderState.PARTIALLY_CONFIRMED:
        accept(logic, "operation_confirmed", operation="0010", yield_qty=qty(40))
    elif state is OrderState.QUALITY_HOLD:
        accept(logic, "quality_hold", reason="suspect batch")
    elif state in (OrderState.COMPLETED, OrderState.POSTED):
        accept(logic, "operation_confirmed", operation="0010", yield_qty=qty(100), final=True)
        accept(logic, "operation_confirmed", operation="0020", yield_qty=qty(100), final=True)
        if state is OrderState.POSTED:
            logic.transition(OrderState.POSTED, NOW, "every posting done")
    elif state is OrderState.CANCELLED:
        logic.transition(OrderState.CANCELLED, NOW, "cancelled by test")
    assert logic.s.state is state
    logic.s.downtime_open["ASSY-01"] = NOW - timedelta(minutes=5)
    return logic


CASES = [(t, s) for t in EventType for s in OrderState]


@pytest.mark.parametrize(("event_type", "state"), CASES, ids=[f"{t.value}-in-{s.value}" for t, s in CASES])
def test_event_against_the_table(event_type: EventType, state: OrderState) -> None:
    rule = EVENT_TABLE[event_type]
    logic = logic_in(state)
    event = ev(logic, event_type, **EVENT_FIELDS[event_type])
    reason = logic.rejection_reason(event)
    if state not in rule.accepted_in:
        assert reason is not None
        return
    assert reason is None
    steps_before = {st.id for st in logic.s.steps}
    planned = logic.apply(event, NOW)
    reached = logic.s.state
    expected = {state, *rule.may_reach} | ({rule.moves[state]} if state in rule.moves else set())
    assert reached in expected
    if state in rule.moves:
        assert reached is rule.moves[state]
    own = {st.id.split(":", 1)[1] for st in planned if st.id.startswith(f"{event.event_id}:")}
    assert own <= rule.steps, f"{event_type.value} planned {own - rule.steps} not in the table"
    assert all(st.id not in steps_before for st in planned)


def test_allowed_is_what_the_saga_always_accepted() -> None:
    """The table read by state equals the accept-list the saga ran with before the table existed."""
    everything = frozenset(EventType)
    assert ALLOWED == {
        OrderState.PLANNED: frozenset(),
        OrderState.RELEASED: everything - {EventType.QUALITY_DISPOSITION},
        OrderState.IN_PROGRESS: everything - {EventType.QUALITY_DISPOSITION},
        OrderState.PARTIALLY_CONFIRMED: everything - {EventType.QUALITY_DISPOSITION},
        OrderState.QUALITY_HOLD: everything - {EventType.QUALITY_HOLD, EventType.OPERATION_STARTED},
        OrderState.COMPLETED: frozenset({EventType.QUALITY_RESULT, EventType.QUALITY_HOLD, EventType.DOWNTIME_STARTED,
                                         EventType.DOWNTIME_ENDED, EventType.MAINTENANCE_REQUESTED}),
        OrderState.POSTED: frozenset(),
        OrderState.CANCELLED: frozenset(),
    }


@pytest.mark.parametrize("source", list(OrderState))
@pytest.mark.parametrize("target", list(OrderState))
def test_transition_enforces_the_table(source: OrderState, target: OrderState) -> None:
    logic = OrderLogic(SagaState(order=new_order(), policy=PlantPolicy(), state=source), "wf")
    if target is source or target in TRANSITIONS[source]:
        logic.transition(target, NOW, "test")
        assert logic.s.state is target
    else:
        with pytest.raises(IllegalTransition):
            logic.transition(target, NOW, "test")
        assert logic.s.state is source


@pytest.mark.parametrize("interrupted", [OrderState.RELEASED, OrderState.IN_PROGRESS, OrderState.PARTIALLY_CONFIRMED,
                                         OrderState.COMPLETED])
def test_a_hold_returns_to_the_state_it_interrupted(interrupted: OrderState) -> None:
    logic = logic_in(interrupted)
    hold = accept(logic, "quality_hold", reason="scratch")
    assert logic.s.state is OrderState.QUALITY_HOLD
    assert {st.id for st in logic.s.steps} >= {f"{hold.event_id}:block", f"{hold.event_id}:mes_hold",
                                               f"{hold.event_id}:alert"}
    accept(logic, "quality_disposition", decision="release")
    assert logic.s.state is interrupted and logic.s.hold is None


def test_last_final_confirmation_during_a_hold_completes_on_release() -> None:
    logic = logic_in(OrderState.PARTIALLY_CONFIRMED)
    accept(logic, "quality_hold", reason="scratch")
    accept(logic, "operation_confirmed", operation="0010", yield_qty=qty(60), final=True)
    accept(logic, "operation_confirmed", operation="0020", yield_qty=qty(100), final=True)
    assert logic.s.state is OrderState.QUALITY_HOLD and logic.s.hold is not None
    assert logic.s.hold.return_state is OrderState.COMPLETED
    completion = [st for st in logic.s.steps if st.id.startswith("completion:")]
    assert len(completion) == 4 and all(st.blocked_by_hold for st in completion)
    logic.dispose(NOW, "release", None, by="qa.lead", key="release_hold-1", reason=None)
    assert logic.s.state is OrderState.COMPLETED and logic.s.completed_at == NOW


def test_final_confirmations_plan_completion_in_order() -> None:
    logic = logic_in(OrderState.RELEASED)
    accept(logic, "operation_confirmed", operation="0010", yield_qty=qty(100), final=True)
    last = accept(logic, "operation_confirmed", operation="0020", yield_qty=qty(98), scrap_qty=qty(2), final=True)
    steps = {st.id: st for st in logic.s.steps}
    assert steps["completion:goods_receipt"].after == [f"{last.event_id}:confirm"]
    assert steps["completion:complete_order"].after == ["completion:goods_receipt"]
    assert steps["completion:shipment_ready"].after == ["completion:transfer"]
    assert logic.s.state is OrderState.COMPLETED
    assert [t.text.split(":")[0] for t in logic.s.timeline if t.kind == "state"] == [
        "planned → released", "released → partially_confirmed", "partially_confirmed → completed"]


def test_aggregated_partials_are_buffered_then_posted_with_the_final() -> None:
    logic = logic_in(OrderState.RELEASED, PlantPolicy(partial_confirmations="aggregate", consumption="aggregate"))
    first = accept(logic, "operation_confirmed", operation="0010", yield_qty=qty(30))
    assert logic.last_buffered and not [st for st in logic.s.steps if st.id.startswith(first.event_id)]
    assert logic.s.state is OrderState.PARTIALLY_CONFIRMED
    accept(logic, "material_consumed", material="RM-SEAL", quantity=qty(7))
    final = accept(logic, "operation_confirmed", operation="0010", yield_qty=qty(70), final=True)
    [confirm] = [st for st in logic.s.steps if st.id == f"{final.event_id}:confirm"]
    assert confirm.command.yield_qty.quantity == Decimal(100)  # type: ignore[union-attr]
    assert confirm.also_events == [first.event_id]
    [issue] = [st for st in logic.s.steps if st.id.endswith(":goods_issue")]
    assert issue.id.startswith("agg-")


def test_over_confirmation_is_refused_with_the_limit() -> None:
    logic = logic_in(OrderState.IN_PROGRESS)
    reason = logic.rejection_reason(ev(logic, "operation_confirmed", operation="0010", yield_qty=qty(106)))
    assert reason is not None and "limit 105" in reason


def test_cancellation_compensates_in_reverse_and_only_outstanding_blocks() -> None:
    logic = logic_in(OrderState.RELEASED)
    hold = accept(logic, "quality_hold", reason="scratch")
    for st in logic.s.steps:
        st.status, st.finished_at = "done", NOW
    undo = logic.plan_compensations(NOW)
    assert [(st.id, st.kind.value) for st in undo] == [
        (f"cancel:{hold.event_id}:block", "wms.unblock"),
        ("cancel:release:stage", "wms.release_staging"),
        ("cancel:release:dispatch", "mes.recall"),
    ]
    assert all(st.compensation for st in undo)


def test_finished_steps_beyond_the_bound_are_forgotten_but_not_postings_or_what_cancellation_undoes() -> None:
    logic = logic_in(OrderState.RELEASED, PlantPolicy(partial_confirmations="immediate"))
    accept(logic, "quality_hold", reason="scratch")  # a stock block: undone by a cancellation
    for _ in range(30):
        accept(logic, "quality_result", passed=True)
        accept(logic, "operation_confirmed", operation="0010", yield_qty=qty(1))
    for st in logic.s.steps:
        st.status, st.finished_at = "done", NOW
    assert without_oldest_finished(logic.s.steps, keep=40) is None  # 30 inspections, 2 alerts/holds: within
    kept = without_oldest_finished(logic.s.steps, keep=10)
    assert kept is not None
    assert len([st for st in kept if st in prunable(logic.s.steps)]) == 10  # the newest ten
    assert [st for st in kept if st.kind.posts_to_erp] == logic.s.postings  # every posting stays
    logic.s.steps = kept
    assert {st.kind.value for st in logic.plan_compensations(NOW)} == {"mes.recall", "wms.release_staging",
                                                                      "wms.unblock"}
