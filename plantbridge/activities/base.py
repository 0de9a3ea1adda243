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

No two attempts post side by side. When Temporal times an attempt out while its connector call is
still in flight (an ERP slower than `policy.activity_timeout`), the next attempt must not look the
posting up (not there yet) and post a second document. So:

- the attempt that calls the system holds a **lease** on the ledger row (`ledger.acquire`), renewed
  by a background **heartbeat** task (which also heartbeats to Temporal, so a dead worker's attempt
  is retried after the heartbeat timeout instead of the whole start-to-close; a local activity has
  no heartbeat: its short start-to-close bounds it);
- another attempt that finds a live lease **waits** (bounded by its own start-to-close) until the
  row is finished or the lease lapses, then reads the ledger (succeeded: the stored documents) or
  looks the posting up as before; still held at the bound, it fails retryably (`PostingInFlight`);
- an attempt cancelled (Temporal's timeout, seen on the heartbeat) lets its in-flight call finish
  and records the outcome, so the waiting attempt finds it: cutting the HTTP call off would leave
  the outcome unknown while the system may still be posting.

The worker refuses to start when a plant's `activity_timeout` is shorter than its connectors' worst
case (`workers/timeouts.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

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
POSTING_IN_FLIGHT = contract.POSTING_IN_FLIGHT
UNEXPECTED_ERROR_ATTEMPTS = 5
# Without a heartbeat timeout from the caller, heartbeat (and renew the lease) this often.
HEARTBEAT_INTERVAL = timedelta(seconds=5)
# A cancelled attempt (timed out, or its worker stopping) lets its call in flight end for at least
# this long (the connector's own timeouts end it sooner: the worker checks them at start).
IN_FLIGHT_GRACE = timedelta(minutes=2)
# How often a waiting attempt looks at the ledger row again.
LEASE_POLL = 0.25

Call = Callable[[PlantSystems, str, bool], Awaitable[StepResult]]


class ActivityBase:
    def __init__(self, registry: ConnectorRegistry, ledger: Ledger) -> None:
        self.registry = registry
        self.ledger = ledger

    async def execute(self, req: StepRequest, call: Call) -> StepResult:
        digest = request_hash(command_hash_payload(req.command))
        info = activity.info()
        owner = f"{info.workflow_id}/{info.activity_id}/{info.attempt}"
        interval, ttl = _lease_timing(info.heartbeat_timeout)
        try:
            # A first attempt writes its row already leased (one statement); a known key is leased below.
            previous = await self.ledger.begin(
                req.idempotency_key,
                digest,
                workflow_id=req.workflow_id,
                step_kind=req.kind.value,
                system=req.kind.system,
                lease_owner=owner,
                lease_ttl=ttl,
            )
        except IdempotencyConflict as err:
            raise ApplicationError(str(err), type=IDEMPOTENCY_CONFLICT, non_retryable=True) from err
        if previous is not None and previous.status == "succeeded":
            return StepResult(documents=previous.documents, message=previous.message, replayed=True)
        keep_alive = asyncio.create_task(self._keep_alive(req.idempotency_key, owner, interval, ttl))
        finished = False  # ledger.finish ends the lease with the outcome: no release needed then
        try:
            if previous is not None:
                done = await self._wait_for_lease(req, owner, ttl, info.start_to_close_timeout)
                if done is not None:
                    return done
            # An earlier attempt may have reached the system: this one, a Temporal retry, or a
            # supervisor's retry after a rejection.
            retry = previous is not None or info.attempt > 1
            posting = asyncio.create_task(self._post(req, call, retry))
            try:
                result = await asyncio.shield(posting)
                finished = True
                return result
            except asyncio.CancelledError:
                # Timed out (or the worker stops): let the call in flight end and record its
                # outcome, holding the lease meanwhile, so the next attempt finds it.
                await _let_finish(posting, max(info.start_to_close_timeout or IN_FLIGHT_GRACE, IN_FLIGHT_GRACE))
                raise
        finally:
            keep_alive.cancel()
            if not finished:
                with contextlib.suppress(Exception):
                    await self.ledger.release(req.idempotency_key, owner)

    async def _keep_alive(self, key: str, owner: str, interval: timedelta, ttl: timedelta) -> None:
        """Heartbeat to Temporal and renew this attempt's lease while it runs.

        A local activity (the plant-system steps: workflows/local_steps.py) has no heartbeat: the SDK's
        core refuses one ("Activity heartbeat failed ... UnknownActivity", a warning per beat), and its
        start-to-close bounds the attempt. It renews its lease all the same."""
        beats = not activity.info().is_local
        while True:
            await asyncio.sleep(interval.total_seconds())
            if beats:
                activity.heartbeat()
            try:
                await self.ledger.renew(key, owner, ttl)
            except Exception as err:  # the store hiccups: the lease may lapse, the look-up still guards
                activity.logger.warning("cannot renew the lease of %s: %s", key, err)

    async def _wait_for_lease(
        self, req: StepRequest, owner: str, ttl: timedelta, start_to_close: timedelta | None
    ) -> StepResult | None:
        """Take the row's lease, waiting while another attempt's call is in flight.

        Returns the stored result when that attempt succeeded meanwhile, else None (lease held).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 0.8 * (start_to_close or timedelta(seconds=60)).total_seconds()
        waited = False
        while not await self.ledger.acquire(req.idempotency_key, owner, ttl):
            state = await self.ledger.get(req.idempotency_key)
            if state is not None and state.status == "succeeded":
                activity.logger.info("%s: the earlier attempt posted it while this one waited", req.step_id)
                return StepResult(documents=state.documents, message=state.message, replayed=True)
            if not waited:
                activity.logger.info("%s: an earlier attempt's call is in flight; waiting for it", req.step_id)
                waited = True
            if loop.time() > deadline:
                raise ApplicationError(
                    f"{req.step_id}: an earlier attempt's call to {req.kind.system} is still in flight",
                    {"system": req.kind.system, "code": POSTING_IN_FLIGHT, "details": []},
                    type=POSTING_IN_FLIGHT,
                )
            await asyncio.sleep(LEASE_POLL)
        return None

    async def _post(self, req: StepRequest, call: Call, retry: bool) -> StepResult:
        """The connector call, classified, its outcome recorded in the ledger."""
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
        except asyncio.CancelledError:
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


async def _let_finish(posting: asyncio.Task[StepResult], bound: timedelta) -> None:
    """Wait up to `bound` for a call in flight, through further cancellations."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + bound.total_seconds()
    while not posting.done():
        remaining = deadline - loop.time()
        if remaining <= 0:
            posting.cancel()
            return
        with contextlib.suppress(asyncio.CancelledError):  # cancelled again: the call still ends first
            await asyncio.wait({posting}, timeout=remaining)
    if not posting.cancelled():
        posting.exception()  # retrieved: its outcome is in the ledger


def _lease_timing(heartbeat_timeout: timedelta | None) -> tuple[timedelta, timedelta]:
    """Heartbeat interval and lease time: three beats per heartbeat timeout; the lease outlives
    two missed beats, so it lapses soon after the worker holding it dies."""
    timeout = heartbeat_timeout or 3 * HEARTBEAT_INTERVAL
    interval = min(timeout / 3, HEARTBEAT_INTERVAL)
    return interval, max(timeout, 3 * interval)


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
