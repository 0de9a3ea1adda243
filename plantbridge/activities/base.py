"""What every activity does around its connector call: the ledger, and error classification.

1. `ledger.begin` records the intent under the step's idempotency key; a key that succeeded before
   returns its stored documents without calling the system again.
2. The connector is called with the external key, and `retry=True` when an earlier attempt may have
   reached the system (it then looks the posting up before posting again).
3. `ledger.finish` records the outcome. A `BusinessRejection` becomes a non-retryable
   `ApplicationError` of type `BusinessRejection` carrying the system's message; a
   `TransientError` is retried by Temporal with backoff, for as long as it takes.
4. Any other exception is a defect (a `KeyError` on an unexpected answer, a wiring error): it is
   retried too, but only `unexpected_error_attempts` times (the order's policy, carried in the
   request; `UNEXPECTED_ERROR_ATTEMPTS` otherwise). Then it becomes a non-retryable
   `ApplicationError` of type `UnexpectedError` naming the exception's class and message, and the
   saga parks the step as an open exception for a supervisor (retry after the fix, skip, override).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from temporalio import activity
from temporalio.exceptions import ApplicationError

from plantbridge import contract
from plantbridge.canonical.commands import StepRequest, StepResult, command_hash_payload, external_key
from plantbridge.connectors.errors import BusinessRejection, TransientError
from plantbridge.connectors.ports import ConnectorRegistry, PlantSystems
from plantbridge.store.ledger import IdempotencyConflict, Ledger, request_hash

BUSINESS_REJECTION = contract.BUSINESS_REJECTION
IDEMPOTENCY_CONFLICT = contract.IDEMPOTENCY_CONFLICT
UNEXPECTED_ERROR = contract.UNEXPECTED_ERROR
UNEXPECTED_ERROR_ATTEMPTS = 5

Call = Callable[[PlantSystems, str, bool], Awaitable[StepResult]]


class ActivityBase:
    def __init__(self, registry: ConnectorRegistry, ledger: Ledger) -> None:
        self.registry = registry
        self.ledger = ledger

    async def execute(self, req: StepRequest, call: Call) -> StepResult:
        digest = request_hash(command_hash_payload(req.command))
        try:
            previous = await self.ledger.begin(
                req.idempotency_key,
                digest,
                workflow_id=req.workflow_id,
                step_kind=req.kind.value,
                system=req.kind.system,
            )
        except IdempotencyConflict as err:
            raise ApplicationError(str(err), type=IDEMPOTENCY_CONFLICT, non_retryable=True) from err
        if previous is not None and previous.status == "succeeded":
            return StepResult(documents=previous.documents, message=previous.message, replayed=True)
        # An earlier attempt may have reached the system: this one, a Temporal retry, or a
        # supervisor's retry after a rejection.
        retry = previous is not None or activity.info().attempt > 1
        systems = self.registry.for_plant(req.order.plant)
        try:
            result = await call(systems, external_key(req.idempotency_key), retry)
        except BusinessRejection as err:
            await self.ledger.finish(req.idempotency_key, "rejected", [], err.message)
            _metrics_rejection(req, err)
            raise ApplicationError(
                err.message,
                {"system": err.system, "code": err.code, "details": err.details},
                type=BUSINESS_REJECTION,
                non_retryable=True,
            ) from err
        except TransientError as err:
            activity.logger.warning("transient %s error on %s: %s", err.system, req.step_id, err.message)
            raise
        except Exception as err:
            attempt, cap = activity.info().attempt, req.unexpected_error_attempts or UNEXPECTED_ERROR_ATTEMPTS
            text = f"{type(err).__name__}: {err}"
            activity.logger.warning("unexpected error on %s (attempt %d of %d): %s", req.step_id, attempt, cap, text)
            if attempt < cap:
                raise
            await self.ledger.finish(req.idempotency_key, "rejected", [], text[:1000])
            raise ApplicationError(
                f"unexpected error after {attempt} attempts: {text}"[:2000],
                {"system": req.kind.system, "code": type(err).__name__, "details": []},
                type=UNEXPECTED_ERROR,
                non_retryable=True,
            ) from err
        await self.ledger.finish(req.idempotency_key, "succeeded", result.documents, result.message)
        _metrics_success(req, result)
        return result


def _metrics_success(req: StepRequest, result: StepResult) -> None:
    """Business metrics on the worker's Prometheus endpoint (Temporal runtime meter)."""
    meter = activity.metric_meter()
    attrs = {"plant": req.order.plant, "system": req.kind.system, "step": req.kind.value}
    meter.create_counter("plantbridge_postings", "calls that reached an outside system").add(1, attrs)
    if req.kind.posts_to_erp and req.event_at is not None and not result.replayed:
        latency = (datetime.now(UTC) - req.event_at).total_seconds()
        meter.create_histogram_float(
            "plantbridge_event_to_erp_posting", "seconds from the plant event to its ERP posting", "s"
        ).record(max(latency, 0.0), {"plant": req.order.plant, "step": req.kind.value})


def _metrics_rejection(req: StepRequest, err: BusinessRejection) -> None:
    activity.metric_meter().create_counter(
        "plantbridge_business_rejections", "postings refused by the target system, by its message code"
    ).add(1, {"plant": req.order.plant, "system": err.system, "code": err.code or "none", "step": req.kind.value})
