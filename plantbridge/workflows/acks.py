"""What the saga answers a plant event about its ERP postings (pure: no workflow calls).

An update in flight counts against Temporal's per-workflow limit (10 in-flight updates): the
`submit_event` handler must never wait on work it does not control (issue 10). It waits for the
event's postings at most the plant's `ack_wait`, and not at all when a parked posting (an open
exception) holds them in their lane; the later outcome travels as the business acknowledgement.
"""

from __future__ import annotations

from collections.abc import Callable

from plantbridge.canonical.ack import ErpOutcome
from plantbridge.canonical.exceptions import OrderException
from plantbridge.canonical.saga import Step

FindException = Callable[[str | None], OrderException | None]


def settled(erp_steps: list[Step]) -> bool:
    """Every posting of the event is done (or skipped, overridden) or parked as an exception."""
    return all(st.finished or st.status == "parked" for st in erp_steps)


def queued_behind_parked(steps: list[Step], erp_steps: list[Step]) -> Step | None:
    """The parked step (an open exception) that holds one of these pending steps in its lane, if any."""
    waiting = {st.lane for st in erp_steps if st.status == "pending"}
    for step in steps:
        if step.status == "parked" and step.lane in waiting and all(step is not st for st in erp_steps):
            return step
    return None


def erp_outcome(steps: list[Step], erp_steps: list[Step], find: FindException) -> ErpOutcome:
    """The ERP outcome of an event's postings as known now: posted, rejected (parked) or pending (and why)."""
    if not erp_steps:
        return ErpOutcome(status="not_required")
    docs = [d for st in erp_steps if st.result for d in st.result.documents]
    parked = [st for st in erp_steps if st.status == "parked"]
    if parked:
        exc = find(parked[0].exception_id)
        return ErpOutcome(status="rejected", documents=docs, message=exc.message if exc else None)
    if all(st.finished for st in erp_steps):
        return ErpOutcome(status="posted", documents=docs)
    blocker = queued_behind_parked(steps, erp_steps)
    held = find(blocker.exception_id) if blocker is not None else None
    if held is not None:
        why = f"queued behind open exception {held.id} ({held.step_kind}): {held.message}"
        return ErpOutcome(status="pending", documents=docs, message=why[:500])
    return ErpOutcome(status="pending", documents=docs)
