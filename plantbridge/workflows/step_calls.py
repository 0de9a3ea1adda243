"""What running a step and waiting for a supervisor share between the order saga and the
`MaintenanceRequest` child: the activity's retry policy, reading a failure, opening an exception,
and applying a supervisor's resolution to it. Deterministic; no Temporal calls but `workflow.now`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

from plantbridge import contract
from plantbridge.canonical.commands import StepKind
from plantbridge.canonical.exceptions import ExceptionResolution, OrderException
from plantbridge.canonical.order import ProductionOrder
from plantbridge.canonical.policy import PlantPolicy

Category = Literal["business_rejection", "unexpected_error", "sla", "compensation", "order_change", "unknown_material"]
RESOLVED_STATUS = {"retry": "retrying", "skip": "skipped", "override": "overridden"}


# The steps whose systems read the order's components (the MES work order's BOM, WMS staging); every
# other step's connector reads the header and operations only (goods movements carry their items).
NEEDS_COMPONENTS: frozenset[StepKind] = frozenset({
    StepKind.MES_DISPATCH, StepKind.MES_CHANGE_ORDER, StepKind.WMS_STAGE, StepKind.WMS_RELEASE_STAGING,
})


def order_for_step(order: ProductionOrder, kind: StepKind | None) -> ProductionOrder:
    """What an activity's input carries of the order: without its components unless the step needs them
    (issue 17: a 40 x 8 order made every input ~100 KB; 3,000 components would near Temporal's limit)."""
    if kind in NEEDS_COMPONENTS or not order.components:
        return order
    return order.model_copy(update={"components": []})


def step_retry_policy(policy: PlantPolicy) -> RetryPolicy:
    """Transient failures retry with backoff; business rejections and the like do not (they park)."""
    return RetryPolicy(
        initial_interval=policy.retry_initial,
        backoff_coefficient=2.0,
        maximum_interval=policy.retry_max_interval,
        non_retryable_error_types=list(contract.NON_RETRYABLE_STEP_ERRORS),
    )


def step_heartbeat_timeout(policy: PlantPolicy) -> timedelta:
    """An attempt whose heartbeats stop (its worker died) is retried after this, not after the
    whole start-to-close; the activity heartbeats three times per timeout (activities/base.py)."""
    return min(policy.activity_timeout, timedelta(seconds=30))


# A failed step: a regular activity's `ActivityError` (the activity's own error as its cause), or a local
# activity's error itself (temporalio 1.35 raises a local activity's `ApplicationError` unwrapped, and
# only its timeouts as an `ActivityError`).
StepFailure = ActivityError | ApplicationError


def _cause(err: StepFailure) -> BaseException | None:
    return err.cause if isinstance(err, ActivityError) else err


def failure_info(err: StepFailure) -> tuple[str, str | None, list[str]]:
    """The system's message, its code and details from a failed step's activity error."""
    cause = _cause(err)
    message, code, details = str(cause or err), None, []
    if isinstance(cause, ApplicationError):
        message = cause.message
        if cause.details and isinstance(cause.details[0], dict):
            info = cause.details[0]
            code = info.get("code")
            details = [str(d) for d in info.get("details") or []]
    return message, code, details


def failure_category(err: StepFailure, *, compensation: bool = False) -> Category:
    """How a parked step is filed: a compensation, an unexpected error, or a business rejection."""
    if compensation:
        return "compensation"
    cause = _cause(err)
    if isinstance(cause, ApplicationError) and cause.type == contract.UNEXPECTED_ERROR:
        return "unexpected_error"
    return "business_rejection"


def open_exception(
    exceptions: list[OrderException],
    existing: OrderException | None,
    *,
    step_id: str,
    step_kind: str,
    system: str,
    event_id: str | None,
    failure: tuple[str, str | None, list[str]],
    now: datetime,
    category: Category = "business_rejection",
) -> OrderException:
    """A new open exception (numbered `EXC-n`), or `existing` opened again when a retry was refused."""
    message, code, details = failure
    if existing is None:
        exc = OrderException(
            id=contract.exception_id(len(exceptions) + 1),
            step_id=step_id,
            step_kind=step_kind,
            system=system,
            event_id=event_id,
            message=message,
            erp_code=code,
            details=details,
            opened_at=now,
            category=category,
        )
        exceptions.append(exc)
        return exc
    existing.status, existing.message, existing.erp_code, existing.details = "open", message, code, details
    existing.attempts += 1
    return existing


def refusal(exc: OrderException | None, resolution: ExceptionResolution) -> str | None:
    """Why a resolution cannot be applied (then it is noted and ignored), or None."""
    if exc is None or exc.status != "open":
        state = exc.status if exc else "unknown"
        return f"{resolution.action} of exception {resolution.exception_id} ignored: it is {state}"
    if resolution.action == "override" and not resolution.document:
        return f"override of {exc.id} ignored: it needs the document posted by hand"
    return None


def apply_resolution(exc: OrderException, resolution: ExceptionResolution) -> None:
    """Record a supervisor's retry, skip or override on an open exception."""
    exc.status = RESOLVED_STATUS[resolution.action]  # type: ignore[assignment]
    exc.resolved_by = resolution.by
    exc.resolution_comment = resolution.comment
    if resolution.action == "override":
        exc.resolution_comment = f"{resolution.comment or ''} document {resolution.document}".strip()
    exc.override_document = resolution.document
