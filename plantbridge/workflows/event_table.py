"""What each plant event may do: in which order states it is accepted, which state change it makes,
which steps it plans. The planner (`order_logic.py`) validates and moves by this table, and
`tests/test_order_logic.py` checks the planner against every row.

Steps are named by their action: the step id is `{event id}:{action}` (`contract.event_step`).
Aggregated postings (`agg-…`) and the completion steps (`completion:…`) an event may also
trigger are not keyed by the event and are listed in `also`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from plantbridge.canonical.events import EventType
from plantbridge.canonical.states import OrderState

_S = OrderState
ACTIVE = frozenset({_S.RELEASED, _S.IN_PROGRESS, _S.PARTIALLY_CONFIRMED})
ON_HOLD = frozenset({_S.QUALITY_HOLD})
DONE = frozenset({_S.COMPLETED})
HOLD_STEPS = frozenset({"block", "mes_hold", "alert"})


class EventRule(NamedTuple):
    accepted_in: frozenset[OrderState]
    # The state change the event makes by itself (`OrderLogic.advance`), by current state.
    moves: Mapping[OrderState, OrderState]
    # States the event can lead to under conditions (a failed inspection, the last final
    # confirmation, a disposition returning to the state the hold interrupted).
    may_reach: frozenset[OrderState]
    # Actions of the steps keyed by the event id that the event may plan.
    steps: frozenset[str]
    also: str = ""


EVENT_TABLE: dict[EventType, EventRule] = {
    EventType.OPERATION_STARTED: EventRule(ACTIVE, {_S.RELEASED: _S.IN_PROGRESS}, frozenset(), frozenset()),
    EventType.OPERATION_CONFIRMED: EventRule(
        ACTIVE | ON_HOLD,
        {_S.RELEASED: _S.PARTIALLY_CONFIRMED, _S.IN_PROGRESS: _S.PARTIALLY_CONFIRMED},
        frozenset({_S.COMPLETED}),
        frozenset({"confirm"}),
        "aggregated partials are buffered (no step); the last final confirmation plans completion:* "
        "and posts buffered consumption (agg-n:goods_issue)",
    ),
    EventType.MATERIAL_CONSUMED: EventRule(
        ACTIVE | ON_HOLD, {}, frozenset(), frozenset({"goods_issue"}), "aggregated consumption is buffered"
    ),
    EventType.DOWNTIME_STARTED: EventRule(ACTIVE | ON_HOLD | DONE, {}, frozenset(), frozenset()),
    EventType.DOWNTIME_ENDED: EventRule(
        ACTIVE | ON_HOLD | DONE,
        {},
        frozenset(),
        frozenset({"alert"}),
        "alert only for a long downtime the downtime watch did not alert already",
    ),
    EventType.QUALITY_RESULT: EventRule(
        ACTIVE | ON_HOLD | DONE,
        {},
        frozenset({_S.QUALITY_HOLD}),
        frozenset({"inspection"}) | HOLD_STEPS,
        "a failed inspection puts the order on hold",
    ),
    EventType.QUALITY_HOLD: EventRule(
        ACTIVE | DONE, {s: _S.QUALITY_HOLD for s in ACTIVE | DONE}, frozenset(), HOLD_STEPS
    ),
    EventType.QUALITY_DISPOSITION: EventRule(
        ON_HOLD,
        {},
        ACTIVE | DONE,
        frozenset({"usage_decision", "scrap", "unblock", "mes_release"}),
        "returns to the state the hold interrupted (completed if every operation became final)",
    ),
    EventType.MAINTENANCE_REQUESTED: EventRule(
        ACTIVE | ON_HOLD | DONE,
        {},
        frozenset(),
        frozenset({"notification", "alert"}),
        "with the maintenance child workflow: no step, a MaintenanceRequest child instead",
    ),
}

# Which event types each state accepts (the table read by state).
ALLOWED: dict[OrderState, frozenset[EventType]] = {
    state: frozenset(t for t, rule in EVENT_TABLE.items() if state in rule.accepted_in) for state in OrderState
}
