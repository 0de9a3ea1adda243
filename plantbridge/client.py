"""The Temporal side of plantbridge for callers: gateway, CLI, demo, tests.

Connects with the pydantic data converter, starts sagas idempotently, submits plant events as
updates and turns the saga's answer (or its validator's refusal) into an `Acknowledgement`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Sequence
from datetime import timedelta
from typing import Any, Literal, TypeVar

from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import (
    Client,
    HeaderCodecBehavior,
    Interceptor,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateHandle,
    WorkflowUpdateRPCTimeoutOrCancelledError,
    WorkflowUpdateStage,
)
from temporalio.common import (
    SearchAttributePair,
    TypedSearchAttributes,
    WorkflowIDConflictPolicy,
    WorkflowIDReusePolicy,
)
from temporalio.converter import PayloadCodec
from temporalio.exceptions import ApplicationError
from temporalio.runtime import Runtime
from temporalio.service import RPCError, RPCStatusCode, TLSConfig
from temporalio.workflow import _UpdateDefinition

from plantbridge import contract
from plantbridge.canonical.ack import Acknowledgement, ErpOutcome
from plantbridge.canonical.events import PlantEvent
from plantbridge.canonical.exceptions import ExceptionResolution, SupervisorAction
from plantbridge.canonical.order import ProductionOrder, workflow_id
from plantbridge.canonical.policy import PlantPolicy
from plantbridge.canonical.saga import OrderStatusView, SagaInput, SagaState
from plantbridge.workflows import search_attributes as sa
from plantbridge.workflows.details import static_details, static_summary
from plantbridge.workflows.production_order import ProductionOrderWorkflow

WORKFLOW_TYPE = contract.PRODUCTION_ORDER_WORKFLOW


class OrderNotFound(LookupError):
    """No saga runs for this plant and order."""


class SagaBusy(RuntimeError):
    """The saga is rolling over its history (continue-as-new); send the event again."""


class TemporalUnavailable(RuntimeError):
    """Temporal did not take the event now: unreachable, too slow, or over a per-workflow limit
    (e.g. the limit on in-flight updates). Transient: keep the event and deliver it again later."""

    def __init__(self, message: str, *, limit: bool = False) -> None:
        super().__init__(message)
        self.limit = limit


# RPC statuses that say "not now" rather than "never": the event is delivered again later.
TRANSIENT_RPC = {
    RPCStatusCode.RESOURCE_EXHAUSTED,
    RPCStatusCode.UNAVAILABLE,
    RPCStatusCode.DEADLINE_EXCEEDED,
    RPCStatusCode.CANCELLED,
    RPCStatusCode.ABORTED,
    RPCStatusCode.UNKNOWN,
    RPCStatusCode.INTERNAL,
}
# How long one call to Temporal may take before the gateway answers 503 and re-delivers later.
RPC_TIMEOUT = timedelta(seconds=5)

T = TypeVar("T")


async def bounded(call: Awaitable[T], what: str, timeout: timedelta = RPC_TIMEOUT) -> T:
    """One call to Temporal, bounded as a whole (the SDK retries some refusals on its own, and a frozen or
    partitioned server accepts the connection and never answers): `TemporalUnavailable` when it takes
    longer than `timeout` or Temporal says "not now"; any other refusal (e.g. NOT_FOUND) passes unchanged."""
    try:
        return await asyncio.wait_for(call, timeout.total_seconds())
    except TimeoutError as err:
        raise TemporalUnavailable(f"Temporal did not answer {what} within {timeout.total_seconds():.0f} s") from err
    except RPCError as err:
        if err.status in TRANSIENT_RPC:
            limit = err.status == RPCStatusCode.RESOURCE_EXHAUSTED
            raise TemporalUnavailable(f"{what}: {err.status.name}: {err.message}", limit=limit) from err
        raise


async def connect(address: str = "127.0.0.1:7233", namespace: str = "default", *, runtime: Runtime | None = None,
                  interceptors: Sequence[Interceptor] = (),
                  codec: PayloadCodec | Literal["env"] | None = "env",
                  tls: TLSConfig | bool | Literal["env"] = "env",
                  api_key: str | Literal["env"] | None = "env") -> Client:
    """A client with the pydantic converter, plus tracing and metrics when the process has them.

    `tls` / `api_key` = "env": TLS, mTLS and a Temporal Cloud API key from `PLANTBRIDGE_TEMPORAL_TLS*`
    and `PLANTBRIDGE_TEMPORAL_API_KEY` (plantbridge.security.temporal_tls); none set: plain gRPC.

    `codec="env"` (the default) encrypts payloads when `PLANTBRIDGE_CODEC_KEYS(_FILE)` is set
    (plantbridge.security.codec); `None` never does (e.g. to read a history as stored).
    """
    from plantbridge.security.codec import codec_from_env, data_converter
    from plantbridge.security.temporal_tls import api_key_from_env, tls_from_env
    from plantbridge.telemetry import metrics_runtime, temporal_plugins

    payload_codec = codec_from_env() if codec == "env" else codec
    return await Client.connect(
        address, namespace=namespace, data_converter=data_converter(payload_codec), interceptors=list(interceptors),
        plugins=temporal_plugins(), runtime=runtime or metrics_runtime(),
        tls=tls_from_env() if tls == "env" else tls, api_key=api_key_from_env() if api_key == "env" else api_key,
        # With a codec, headers (e.g. the trace context) are encrypted too: nothing of an order stays clear.
        header_codec_behavior=HeaderCodecBehavior.CODEC if payload_codec is not None else HeaderCodecBehavior.NO_CODEC,
    )


async def start_order(
    client: Client, order: ProductionOrder, policy: PlantPolicy | None = None, *, task_queue: str | None = None,
    rpc_timeout: timedelta | None = None,
) -> WorkflowHandle[ProductionOrderWorkflow, SagaState]:
    """Start the order's saga; a second start for the same order returns the running one."""
    policy = policy or PlantPolicy()
    return await client.start_workflow(
        ProductionOrderWorkflow.run,
        SagaInput(order=order, policy=policy),
        id=workflow_id(order.plant, order.number),
        task_queue=task_queue or policy.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        # A finished order is never started again by a late or repeated release message.
        id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
        search_attributes=sa_initial(order),
        # What the Temporal UI's workflow list and page show of the order without opening it.
        static_summary=static_summary(order),
        static_details=static_details(order),
        rpc_timeout=rpc_timeout,
    )


def sa_initial(order: ProductionOrder) -> TypedSearchAttributes:
    return TypedSearchAttributes(
        [
            SearchAttributePair(sa.PLANT, order.plant),
            SearchAttributePair(sa.ORDER_NUMBER, order.number),
            SearchAttributePair(sa.MATERIAL, order.material),
            SearchAttributePair(sa.ORDER_STATE, "planned"),
            SearchAttributePair(sa.OPEN_EXCEPTIONS, 0),
            SearchAttributePair(sa.ERP_SYSTEM, order.erp_system),
            SearchAttributePair(sa.WORK_CENTER, sorted({op.work_center for op in order.operations})),
        ]
    )


def order_handle(client: Client, plant: str, order: str) -> WorkflowHandle[ProductionOrderWorkflow, SagaState]:
    return client.get_workflow_handle_for(ProductionOrderWorkflow.run, workflow_id(plant, order))


# The `submit_event` update's name and result type, resolved once by the SDK's own resolver: handed the method,
# `start_update` resolves it on every call through a runtime Protocol check (~0.1 ms of the gateway's CPU per event).
SUBMIT_EVENT_UPDATE, _SUBMIT_EVENT_RESULT = _UpdateDefinition.get_name_and_result_type(
    ProductionOrderWorkflow.submit_event)


async def submit_event(
    client: Client, event: PlantEvent, *, ack_wait: timedelta = timedelta(seconds=2), to_workflow: str | None = None,
    rpc_timeout: timedelta | None = None,
) -> Acknowledgement:
    """Send one event as the `submit_event` update; answer within `ack_wait` (ERP pending after).

    The event goes to its own order's saga, or to `to_workflow` (a saga then checks plant and order).
    With `rpc_timeout` (the gateway's case), raises `TemporalUnavailable` when Temporal does not take
    it in that time (unreachable, frozen, no worker, or over a per-workflow limit): the caller keeps the
    event and delivers it later. Without it, waits until Temporal takes the event.
    """
    handle = client.get_workflow_handle_for(
        ProductionOrderWorkflow.run, to_workflow or workflow_id(event.plant, event.order)
    )
    try:
        # Bounded as a whole: the SDK retries some refusals (e.g. RESOURCE_EXHAUSTED) on its own.
        # The SDK types an async update's handle as returning a coroutine; its result is the Acknowledgement.
        update: WorkflowUpdateHandle[Any] = await asyncio.wait_for(
            handle.start_update(
                SUBMIT_EVENT_UPDATE,
                event,
                wait_for_stage=WorkflowUpdateStage.ACCEPTED,
                result_type=_SUBMIT_EVENT_RESULT,
                rpc_timeout=rpc_timeout,
            ),
            rpc_timeout.total_seconds() if rpc_timeout is not None else None,
        )
        result = asyncio.ensure_future(update.result())
        done, _ = await asyncio.wait({result}, timeout=ack_wait.total_seconds())
        if done:
            ack: Acknowledgement = result.result()
            return ack
        result.cancel()
        with contextlib.suppress(asyncio.CancelledError, WorkflowUpdateRPCTimeoutOrCancelledError):
            await result
        return Acknowledgement(event_id=event.event_id, status="accepted", erp=ErpOutcome(status="pending"))
    except WorkflowUpdateFailedError as err:
        return _refusal(event, err)
    except (WorkflowUpdateRPCTimeoutOrCancelledError, TimeoutError) as err:
        raise TemporalUnavailable(
            f"Temporal did not accept the event within {rpc_timeout} (unreachable, no worker, or the order is "
            "over a per-workflow limit such as in-flight updates)"
        ) from err
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            raise OrderNotFound(f"no saga for order {event.order} of plant {event.plant}") from err
        if err.status in TRANSIENT_RPC:
            limit = err.status == RPCStatusCode.RESOURCE_EXHAUSTED
            raise TemporalUnavailable(f"{err.status.name}: {err.message}", limit=limit) from err
        raise


def _refusal(event: PlantEvent, err: WorkflowUpdateFailedError) -> Acknowledgement:
    """The saga's validator refused the event: a duplicate, or a rejection with its reason."""
    cause = err.cause
    if isinstance(cause, ApplicationError):
        if cause.type == contract.DUPLICATE_EVENT:
            return Acknowledgement(event_id=event.event_id, status="duplicate", reason=cause.message)
        if cause.type == contract.SAGA_BUSY:
            raise SagaBusy(cause.message) from err
        return Acknowledgement(event_id=event.event_id, status="rejected", reason=cause.message)
    return Acknowledgement(event_id=event.event_id, status="rejected", reason=str(cause or err))


async def order_state(client: Client, plant: str, order: str, *, timeout: timedelta | None = None) -> OrderStatusView:
    view: OrderStatusView = await order_handle(client, plant, order).query(ProductionOrderWorkflow.state,
                                                                           rpc_timeout=timeout)
    return view


async def order_summary(client: Client, plant: str, order: str, *, timeout: timedelta | None = None) -> SagaState:
    """The saga's whole state (a query: it needs a worker polling the order's task queue)."""
    summary: SagaState = await order_handle(client, plant, order).query(
        ProductionOrderWorkflow.summary, rpc_timeout=timeout)
    return summary


async def resolve_exception(client: Client, plant: str, order: str, resolution: ExceptionResolution, *,
                            timeout: timedelta | None = None) -> None:
    await order_handle(client, plant, order).signal(ProductionOrderWorkflow.resolve_exception, resolution,
                                                    rpc_timeout=timeout)


async def release_hold(client: Client, plant: str, order: str, action: SupervisorAction, *,
                       timeout: timedelta | None = None) -> None:
    await order_handle(client, plant, order).signal(ProductionOrderWorkflow.release_hold, action, rpc_timeout=timeout)


async def cancel_order(client: Client, plant: str, order: str, action: SupervisorAction, *,
                       timeout: timedelta | None = None) -> None:
    await order_handle(client, plant, order).signal(ProductionOrderWorkflow.cancel_order, action, rpc_timeout=timeout)


async def list_orders(client: Client, query: str) -> list[str]:
    """Workflow ids of the sagas matching a visibility query, e.g. `Plant='1000' AND OrderState='quality_hold'`."""
    base = f"WorkflowType='{WORKFLOW_TYPE}'"
    ids = []
    async for wf in client.list_workflows(f"{base} AND ({query})" if query else base):
        ids.append(wf.id)
    return ids


async def current_details(client: Client, plant: str, order: str) -> str:
    """The markdown screen the saga shows in the Temporal UI (its current details)."""
    meta = await order_handle(client, plant, order).query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    return str(meta.current_details)
