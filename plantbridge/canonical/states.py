"""Order states of the production-order saga and the transitions between them."""

from __future__ import annotations

from enum import StrEnum


class OrderState(StrEnum):
    PLANNED = "planned"
    RELEASED = "released"
    IN_PROGRESS = "in_progress"
    PARTIALLY_CONFIRMED = "partially_confirmed"
    QUALITY_HOLD = "quality_hold"
    COMPLETED = "completed"
    POSTED = "posted"
    CANCELLED = "cancelled"


ACTIVE_STATES: frozenset[OrderState] = frozenset(
    {
        OrderState.RELEASED,
        OrderState.IN_PROGRESS,
        OrderState.PARTIALLY_CONFIRMED,
    }
)
END_STATES: frozenset[OrderState] = frozenset({OrderState.POSTED, OrderState.CANCELLED})

# Which state may follow which. quality_hold is entered from any active state (and from
# completed, when the final inspection fails before posting) and left only by a disposition.
TRANSITIONS: dict[OrderState, frozenset[OrderState]] = {
    OrderState.PLANNED: frozenset({OrderState.RELEASED, OrderState.CANCELLED}),
    OrderState.RELEASED: frozenset(
        {
            OrderState.IN_PROGRESS,
            OrderState.PARTIALLY_CONFIRMED,
            OrderState.QUALITY_HOLD,
            OrderState.COMPLETED,
            OrderState.CANCELLED,
        }
    ),
    OrderState.IN_PROGRESS: frozenset(
        {OrderState.PARTIALLY_CONFIRMED, OrderState.QUALITY_HOLD, OrderState.COMPLETED, OrderState.CANCELLED}
    ),
    OrderState.PARTIALLY_CONFIRMED: frozenset(
        {
            OrderState.IN_PROGRESS,
            OrderState.PARTIALLY_CONFIRMED,
            OrderState.QUALITY_HOLD,
            OrderState.COMPLETED,
            OrderState.CANCELLED,
        }
    ),
    OrderState.QUALITY_HOLD: frozenset(
        {
            OrderState.RELEASED,
            OrderState.IN_PROGRESS,
            OrderState.PARTIALLY_CONFIRMED,
            OrderState.COMPLETED,
            OrderState.CANCELLED,
        }
    ),
    OrderState.COMPLETED: frozenset({OrderState.POSTED, OrderState.QUALITY_HOLD}),
    OrderState.POSTED: frozenset(),
    OrderState.CANCELLED: frozenset(),
}


def can_transition(current: OrderState, target: OrderState) -> bool:
    return current == target or target in TRANSITIONS[current]
