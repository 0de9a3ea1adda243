"""Every name that crosses a process boundary, defined once.

Workflow types, the task queue, signal/update/query names, activity names, `ApplicationError`
type names, and the builders of step ids and idempotency keys. Workers, the gateway, the CLI and
the workflows import these; client code refers to handlers as methods
(`handle.signal(ProductionOrderWorkflow.cancel_order, ...)`), and the method's name is the one
defined here.

Step ids become idempotency keys (`{workflow id}:{step id}`) and external keys in the ERP: a
running order that is replayed or retried must build the same ids. Changing a format here breaks
exactly-once for orders already running; `tests/test_contract.py` pins each one byte for byte.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

# A leaf module: it imports nothing of plantbridge, so every layer (canonical included) may use it.

# -- workflows and task queue ---------------------------------------------------------------------
PRODUCTION_ORDER_WORKFLOW: Final = "ProductionOrder"
MAINTENANCE_WORKFLOW: Final = "MaintenanceRequest"
TASK_QUEUE: Final = "plantbridge-orders"

# -- ProductionOrder messages ---------------------------------------------------------------------
UPDATE_SUBMIT_EVENT: Final = "submit_event"
SIGNAL_PLANT_EVENT: Final = "plant_event"
SIGNAL_ORDER_RELEASED: Final = "order_released"
# The ERP changed the order (S/4HANA `Changed`, a repeated LOIPRO IDoc): carries the key and the
# version only; the saga reads the order itself through `erp.read_order` (issue 14).
SIGNAL_ORDER_CHANGED: Final = "order_changed"
SIGNAL_RESOLVE_EXCEPTION: Final = "resolve_exception"
SIGNAL_RELEASE_HOLD: Final = "release_hold"
SIGNAL_CANCEL_ORDER: Final = "cancel_order"
# The actor recorded for a cancellation requested through Temporal itself (the UI's "Request
# Cancellation", RequestCancelWorkflowExecution): the request carries no user the workflow can read.
TEMPORAL_UI_ACTOR: Final = "temporal-ui"
# The actor recorded for a `plant_event` signal refused by the saga (anyone with Temporal access).
SIGNAL_ACTOR: Final = "temporal-signal"
QUERY_STATE: Final = "state"
QUERY_SUMMARY: Final = "summary"

# -- MaintenanceRequest messages ------------------------------------------------------------------
SIGNAL_COMPLETE_MAINTENANCE: Final = "complete_maintenance"
SIGNAL_RETRY_STEP: Final = "retry_step"
SIGNAL_SKIP_STEP: Final = "skip_step"
SIGNAL_OVERRIDE_STEP: Final = "override_step"
QUERY_MAINTENANCE_SUMMARY: Final = "summary"

# -- activities -----------------------------------------------------------------------------------
AUDIT_ACTIVITY: Final = "store.audit"
# The notes waiting when the saga's audit pump runs, written in one (local) activity.
AUDIT_BATCH_ACTIVITY: Final = "store.audit_batch"
# One activity per step kind, named `<system>.<action>`: `canonical.commands.StepKind` takes its
# values from here and activities/*.py register `@activity.defn(name=StepKind.X.value)`.
ERP_CONFIRM_OPERATION: Final = "erp.confirm_operation"
ERP_GOODS_MOVEMENT: Final = "erp.goods_movement"
ERP_GOODS_RECEIPT: Final = "erp.goods_receipt"
ERP_COMPLETE_ORDER: Final = "erp.complete_order"
ERP_USAGE_DECISION: Final = "erp.usage_decision"
ERP_MAINTENANCE_NOTIFICATION: Final = "erp.maintenance_notification"
# Not a step: the saga reads the order from its ERP after `order_changed` (no idempotency key).
ERP_READ_ORDER: Final = "erp.read_order"
MES_DISPATCH: Final = "mes.dispatch"
MES_CHANGE_ORDER: Final = "mes.change_order"
MES_RECALL: Final = "mes.recall"
MES_HOLD: Final = "mes.hold"
MES_RELEASE_HOLD: Final = "mes.release_hold"
MES_ACKNOWLEDGE: Final = "mes.acknowledge"
QMS_INSPECTION: Final = "qms.inspection"
WMS_STAGE: Final = "wms.stage"
WMS_RELEASE_STAGING: Final = "wms.release_staging"
WMS_BLOCK: Final = "wms.block"
WMS_UNBLOCK: Final = "wms.unblock"
WMS_TRANSFER: Final = "wms.transfer"
WMS_SHIPMENT_READY: Final = "wms.shipment_ready"
WMS_RESERVE: Final = "wms.reserve"
NOTIFY_ALERT: Final = "notify.alert"
STEP_ACTIVITIES: Final[tuple[str, ...]] = (
    ERP_CONFIRM_OPERATION,
    ERP_GOODS_MOVEMENT,
    ERP_GOODS_RECEIPT,
    ERP_COMPLETE_ORDER,
    ERP_USAGE_DECISION,
    ERP_MAINTENANCE_NOTIFICATION,
    MES_DISPATCH,
    MES_CHANGE_ORDER,
    MES_RECALL,
    MES_HOLD,
    MES_RELEASE_HOLD,
    MES_ACKNOWLEDGE,
    QMS_INSPECTION,
    WMS_STAGE,
    WMS_RELEASE_STAGING,
    WMS_BLOCK,
    WMS_UNBLOCK,
    WMS_TRANSFER,
    WMS_SHIPMENT_READY,
    WMS_RESERVE,
    NOTIFY_ALERT,
)

# -- ApplicationError types -----------------------------------------------------------------------
BUSINESS_REJECTION: Final = "BusinessRejection"  # the target system refused the call (an activity)
IDEMPOTENCY_CONFLICT: Final = "IdempotencyConflict"  # the same key came with a different request
# Neither transient nor a business rejection, and still failing after a bounded number of attempts.
UNEXPECTED_ERROR: Final = "UnexpectedError"
# An earlier attempt's call to the same system is still in flight (its ledger lease): retried.
POSTING_IN_FLIGHT: Final = "PostingInFlight"
DUPLICATE_EVENT: Final = "DuplicateEvent"  # `submit_event` validator: seen before
EVENT_REJECTED: Final = "EventRejected"  # `submit_event` validator: not valid for the order now
SAGA_BUSY: Final = "SagaBusy"  # `submit_event` validator: rolling over (continue-as-new)
# An activity failing with one of these is not retried by Temporal: the saga parks the step as an
# open supervisor exception.
NON_RETRYABLE_STEP_ERRORS: Final[tuple[str, ...]] = (BUSINESS_REJECTION, IDEMPOTENCY_CONFLICT, UNEXPECTED_ERROR)


# -- workflow ids ---------------------------------------------------------------------------------
def production_order_id(plant: str, normalized_order: str) -> str:
    """``production-order:{plant}:{order}``; `canonical.order.workflow_id` strips leading zeros first."""
    return f"production-order:{plant}:{normalized_order}"


def maintenance_workflow_id(plant: str, order: str, request_id: str) -> str:
    """``maintenance:{plant}:{order}:{request id}`` (the order's number as the saga holds it)."""
    return f"maintenance:{plant}:{order}:{request_id}"


# -- step ids (idempotency keys of running orders: never change a format) --------------------------
def idempotency_key(workflow_id: str, step_id: str) -> str:
    """The ledger key of a step: ``{workflow id}:{step id}``."""
    return f"{workflow_id}:{step_id}"


def audit_key(workflow_id: str, key: str) -> str:
    """The audit trail's dedup key: ``{workflow id}:{key}``."""
    return f"{workflow_id}:{key}"


def event_step(key: str, action: str) -> str:
    """A step planned by a plant event (or a supervisor's lever keyed like one): ``{key}:{action}``.

    Actions: confirm, goods_issue, inspection, notification, block, mes_hold, usage_decision,
    scrap, unblock, mes_release; the audit uses hold, disposition, maintenance, supervisor.
    """
    return f"{key}:{action}"


def release_step(action: str) -> str:
    """``release:{action}`` (dispatch, stage)."""
    return f"release:{action}"


def change_step(counter: int, action: str) -> str:
    """``change-{counter}:{action}``: what the n-th applied ERP order change asks of the plant
    (mes_change, stage, unstage, recall)."""
    return f"change-{counter}:{action}"


def completion_step(action: str) -> str:
    """``completion:{action}`` (goods_receipt, complete_order, transfer, shipment_ready)."""
    return f"completion:{action}"


def alert_step(key: str) -> str:
    """``{key}:alert``."""
    return f"{key}:alert"


def compensation_step(step_id: str) -> str:
    """``cancel:{undone step id}``."""
    return f"cancel:{step_id}"


def aggregate_confirm_step(counter: int, operation: str) -> str:
    """``agg-{counter}:confirm-{operation}``: buffered partial confirmations posted together."""
    return f"agg-{counter}:confirm-{operation}"


def aggregate_goods_issue_step(counter: int) -> str:
    """``agg-{counter}:goods_issue``: buffered consumption posted together."""
    return f"agg-{counter}:goods_issue"


def ack_step(step_id: str, status: str, attempt: int) -> str:
    """``{step id}:ack-{status}-{attempt}``: the business acknowledgement of a posting."""
    return f"{step_id}:ack-{status}-{attempt}"


def release_hold_key(counter: int) -> str:
    """``release_hold-{counter}``: a supervisor's `release_hold`, keyed like an event."""
    return f"release_hold-{counter}"


def time_key(at: datetime) -> str:
    """A moment as a key: ``%Y%m%d%H%M%S%f``."""
    return f"{at:%Y%m%d%H%M%S%f}"


def downtime_key(work_center: str, since: datetime) -> str:
    """``downtime-{work center}-{since}``: a long downtime's alert and maintenance request."""
    return f"downtime-{work_center}-{time_key(since)}"


def sla_alert_key(topic: str, key: str, level: int) -> str:
    """``sla-{topic}-{key}-{level}``."""
    return f"sla-{topic}-{key}-{level}"


def exception_id(number: int) -> str:
    """``EXC-{n}``, numbered per order from 1."""
    return f"EXC-{number}"


def exception_alert_key(exc_id: str, attempts: int) -> str:
    """``{exception id}-{attempts}``: the alert of each time a step is refused."""
    return f"{exc_id}-{attempts}"


# The audit key of a maintenance request's completion (one per request workflow).
MAINTENANCE_COMPLETED_AUDIT: Final = "maintenance-completed"


def exception_audit_key(exc_id: str, what: str, attempts: int) -> str:
    """``{exception id}:{opened|retry|skip|override}:{attempts}``."""
    return f"{exc_id}:{what}:{attempts}"


def maintenance_step_id(request_id: str, key: str) -> str:
    """A maintenance child's step id: ``{request id}:{step kind or alert key}``."""
    return f"{request_id}:{key}"


def maintenance_alert_key(level: int) -> str:
    """``alert-{level}``: the child's downtime alert and its SLA escalations."""
    return f"alert-{level}"


def maintenance_rejection_alert_key(kind: str, attempt: int) -> str:
    """``{step kind}-{attempt}``: the child's alert when a step is refused."""
    return f"{kind}-{attempt}"
