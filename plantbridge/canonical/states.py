"""Order states of the production-order saga and the one table of moves between them.

The table is the law: every state change of the saga goes through `OrderLogic.transition`, which
calls `check_transition` and raises `IllegalTransition` for a move not listed here. The README's
state diagram is generated from this table (`python -m plantbridge.canonical.state_diagram`), and
a test fails when the two differ.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple


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


class Transition(NamedTuple):
    source: OrderState
    target: OrderState
    why: str  # what causes the move (the diagram's label; empty when the line above says it)


_S = OrderState

# Every move the saga makes, in the order the diagram draws them. A quality hold remembers the
# state it interrupted and a disposition (or `release_hold`) returns the order there; when the last
# operation is finally confirmed during a hold, the hold returns to `completed`.
TRANSITION_TABLE: tuple[Transition, ...] = (
    Transition(_S.PLANNED, _S.RELEASED, "released in the ERP"),
    Transition(_S.RELEASED, _S.IN_PROGRESS, "operation_started"),
    Transition(_S.RELEASED, _S.PARTIALLY_CONFIRMED, "operation_confirmed"),
    Transition(_S.IN_PROGRESS, _S.PARTIALLY_CONFIRMED, "operation_confirmed"),
    Transition(_S.PARTIALLY_CONFIRMED, _S.COMPLETED, "every operation finally confirmed"),
    # The ERP ends the order (TECO) before the plant did, or removes its last open operation.
    Transition(_S.RELEASED, _S.COMPLETED, "TECO in the ERP"),
    Transition(_S.IN_PROGRESS, _S.COMPLETED, "TECO in the ERP / last open operation removed"),
    Transition(_S.COMPLETED, _S.POSTED, "goods receipt, completion, WMS transfer and shipment readiness done"),
    Transition(_S.RELEASED, _S.QUALITY_HOLD, "quality_hold / failed quality_result"),
    Transition(_S.IN_PROGRESS, _S.QUALITY_HOLD, ""),
    Transition(_S.PARTIALLY_CONFIRMED, _S.QUALITY_HOLD, ""),
    Transition(_S.COMPLETED, _S.QUALITY_HOLD, ""),
    Transition(_S.QUALITY_HOLD, _S.RELEASED, "quality_disposition / release_hold (back to the state it interrupted)"),
    Transition(_S.QUALITY_HOLD, _S.IN_PROGRESS, ""),
    Transition(_S.QUALITY_HOLD, _S.PARTIALLY_CONFIRMED, ""),
    Transition(_S.QUALITY_HOLD, _S.COMPLETED, "disposition, when all operations were final"),
    Transition(_S.PLANNED, _S.CANCELLED, "cancel_order / deletion flag or lock in the ERP"),
    Transition(_S.RELEASED, _S.CANCELLED, "cancel_order (compensations in reverse)"),
    Transition(_S.IN_PROGRESS, _S.CANCELLED, ""),
    Transition(_S.PARTIALLY_CONFIRMED, _S.CANCELLED, ""),
    Transition(_S.QUALITY_HOLD, _S.CANCELLED, ""),
    # cancel_order is refused once completed, but a final confirmation accepted while a cancel
    # waits for running calls to finish completes the order before the cancellation lands.
    Transition(_S.COMPLETED, _S.CANCELLED, "cancel requested before the last confirmation"),
)

TRANSITIONS: dict[OrderState, frozenset[OrderState]] = {
    state: frozenset(t.target for t in TRANSITION_TABLE if t.source is state) for state in OrderState
}


class IllegalTransition(RuntimeError):
    """A move the transition table does not allow: a bug in the saga, never bad input."""


def check_transition(current: OrderState, target: OrderState) -> None:
    """Raise `IllegalTransition` unless the table allows `current → target` (staying is no move)."""
    if target is not current and target not in TRANSITIONS[current]:
        raise IllegalTransition(f"illegal order state change {current.value} → {target.value}")


def mermaid() -> str:
    """The state diagram of the table, as a mermaid `stateDiagram-v2` block (README.md shows it)."""
    lines = ["```mermaid", "stateDiagram-v2", f"    [*] --> {OrderState.PLANNED.value}"]
    for t in TRANSITION_TABLE:
        label = f": {t.why}" if t.why else ""
        lines.append(f"    {t.source.value} --> {t.target.value}{label}")
    lines += [f"    {state.value} --> [*]" for state in OrderState if state in END_STATES]
    lines.append("```")
    return "\n".join(lines)
