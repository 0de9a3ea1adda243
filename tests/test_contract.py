"""The names and ids that cross process boundaries, pinned byte for byte.

Step ids become idempotency keys (and the ERP's external keys) of orders already running: a changed
format would post again what was posted. Do not edit an expected value here; add a new builder.
"""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from pathlib import Path

from plantbridge import contract
from plantbridge.canonical.commands import StepKind
from plantbridge.canonical.order import workflow_id
from plantbridge.workflows.maintenance import MaintenanceRequestWorkflow
from plantbridge.workflows.production_order import ProductionOrderWorkflow

SINCE = datetime(2026, 3, 2, 7, 5, 9, 120000, tzinfo=UTC)
PACKAGE = Path(contract.__file__).parent


def test_step_id_formats_are_unchanged() -> None:
    assert contract.idempotency_key("production-order:1000:1895938", "ev-1:confirm") == (
        "production-order:1000:1895938:ev-1:confirm"
    )
    assert contract.audit_key("production-order:1000:1895938", "ev-1:hold") == "production-order:1000:1895938:ev-1:hold"
    assert contract.event_step("ev-1", "confirm") == "ev-1:confirm"
    assert contract.event_step("release_hold-7", "usage_decision") == "release_hold-7:usage_decision"
    assert contract.release_step("dispatch") == "release:dispatch"
    assert contract.release_step("stage") == "release:stage"
    assert contract.completion_step("goods_receipt") == "completion:goods_receipt"
    assert contract.change_step(2, "mes_change") == "change-2:mes_change"
    assert contract.completion_step("shipment_ready") == "completion:shipment_ready"
    assert contract.alert_step("EXC-1-2") == "EXC-1-2:alert"
    assert contract.compensation_step("release:dispatch") == "cancel:release:dispatch"
    assert contract.aggregate_confirm_step(12, "0010") == "agg-12:confirm-0010"
    assert contract.aggregate_goods_issue_step(13) == "agg-13:goods_issue"
    assert contract.ack_step("ev-1:confirm", "posted", 1) == "ev-1:confirm:ack-posted-1"
    assert contract.release_hold_key(4) == "release_hold-4"
    assert contract.time_key(SINCE) == "20260302070509120000"
    assert contract.downtime_key("ASSY-01", SINCE) == "downtime-ASSY-01-20260302070509120000"
    assert contract.sla_alert_key("posting_overdue", "ev-1:confirm", 2) == "sla-posting_overdue-ev-1:confirm-2"
    assert contract.sla_alert_key("hold_unresolved", contract.time_key(SINCE), 1) == (
        "sla-hold_unresolved-20260302070509120000-1"
    )
    assert contract.exception_id(3) == "EXC-3"
    assert contract.exception_alert_key("EXC-3", 2) == "EXC-3-2"
    assert contract.exception_audit_key("EXC-3", "opened", 2) == "EXC-3:opened:2"
    assert contract.exception_audit_key("EXC-3", "retry", 1) == "EXC-3:retry:1"


def test_workflow_ids_are_unchanged() -> None:
    assert workflow_id("1000", "001895938") == "production-order:1000:1895938"
    assert contract.maintenance_workflow_id("1000", "1895938", "ev-9") == "maintenance:1000:1895938:ev-9"
    assert contract.maintenance_step_id("ev-9", "erp.maintenance_notification") == "ev-9:erp.maintenance_notification"
    assert contract.maintenance_alert_key(2) == "alert-2"
    assert contract.maintenance_rejection_alert_key("wms.reserve", 3) == "wms.reserve-3"


def test_names_are_unchanged() -> None:
    assert (contract.PRODUCTION_ORDER_WORKFLOW, contract.MAINTENANCE_WORKFLOW, contract.TASK_QUEUE) == (
        "ProductionOrder", "MaintenanceRequest", "plantbridge-orders")
    assert (contract.BUSINESS_REJECTION, contract.IDEMPOTENCY_CONFLICT, contract.UNEXPECTED_ERROR,
            contract.DUPLICATE_EVENT, contract.EVENT_REJECTED, contract.SAGA_BUSY) == (
        "BusinessRejection", "IdempotencyConflict", "UnexpectedError", "DuplicateEvent", "EventRejected", "SagaBusy")
    assert contract.AUDIT_ACTIVITY == "store.audit"
    assert set(contract.STEP_ACTIVITIES) == {k.value for k in StepKind}
    assert StepKind.ERP_CONFIRM_OPERATION.value == "erp.confirm_operation"


def test_handlers_carry_the_contract_names() -> None:
    defn = ProductionOrderWorkflow.__temporal_workflow_definition  # type: ignore[attr-defined]
    assert defn.name == contract.PRODUCTION_ORDER_WORKFLOW
    assert set(defn.signals) == {contract.SIGNAL_PLANT_EVENT, contract.SIGNAL_ORDER_RELEASED,
                                 contract.SIGNAL_ORDER_CHANGED,
                                 contract.SIGNAL_RESOLVE_EXCEPTION, contract.SIGNAL_RELEASE_HOLD,
                                 contract.SIGNAL_CANCEL_ORDER}
    assert set(defn.updates) == {contract.UPDATE_SUBMIT_EVENT}
    assert {contract.QUERY_STATE, contract.QUERY_SUMMARY} <= set(defn.queries)
    child = MaintenanceRequestWorkflow.__temporal_workflow_definition  # type: ignore[attr-defined]
    assert child.name == contract.MAINTENANCE_WORKFLOW
    assert set(child.signals) == {contract.SIGNAL_COMPLETE_MAINTENANCE, contract.SIGNAL_RETRY_STEP,
                                  contract.SIGNAL_SKIP_STEP, contract.SIGNAL_OVERRIDE_STEP}


def test_public_handlers_say_who_sends_them() -> None:
    for cls in (ProductionOrderWorkflow, MaintenanceRequestWorkflow):
        defn = cls.__temporal_workflow_definition  # type: ignore[attr-defined]
        handlers = [*defn.signals.values(), *defn.updates.values(), *defn.queries.values()]
        for h in handlers:
            fn = getattr(h, "fn", None)
            if fn is not None and not h.name.startswith("__"):
                assert fn.__doc__, f"{cls.__name__}.{fn.__name__} has no docstring"


def test_cross_process_names_are_spelled_only_in_the_contract() -> None:
    """`"plantbridge-orders"` and `"MaintenanceRequest"` appear as literals in contract.py only."""
    spelled = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "contract.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in ("plantbridge-orders", "MaintenanceRequest"):
                spelled.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    assert not spelled
