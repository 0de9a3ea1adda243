"""What the saga keeps of its finished steps while it runs (issue 17: memory per cached order).

Every step stays in `SagaState.steps` until continue-as-new (which keeps the newest 100 finished
non-posting steps). An order with many events grows by a finished step or two per event (a posting, its
acknowledgement, an alert) — about 5 KB each in a worker's memory and 0.9 KB in the carried state.
Finished steps that nothing reads again are dropped as soon as more than `keep` of them exist: not ERP
postings (the order's record of postings: `postings`, the posted audit, the cancellation's count), not
steps a cancellation undoes (dispatch, staging, a stock block and its unblock), not compensations.
Pure: no Temporal calls.
"""

from __future__ import annotations

from plantbridge.canonical.commands import StepKind
from plantbridge.canonical.saga import Step

KEEP_FINISHED_STEPS = 100
# What a cancellation reads among finished steps (order_logic.COMPENSATIONS and the unblocks it counts).
KEPT_KINDS: frozenset[StepKind] = frozenset({
    StepKind.MES_DISPATCH, StepKind.WMS_STAGE, StepKind.WMS_BLOCK, StepKind.WMS_UNBLOCK,
})


def prunable(steps: list[Step]) -> list[Step]:
    """Finished steps nothing reads again, oldest first."""
    return [st for st in steps
            if st.finished and not st.kind.posts_to_erp and st.kind not in KEPT_KINDS and not st.compensation]


def without_oldest_finished(steps: list[Step], keep: int = KEEP_FINISHED_STEPS) -> list[Step] | None:
    """`steps` without the oldest prunable finished steps beyond `keep`; None when nothing is to drop."""
    candidates = prunable(steps)
    excess = len(candidates) - keep
    if excess <= 0:
        return None
    drop = {id(st) for st in candidates[:excess]}
    return [st for st in steps if id(st) not in drop]
