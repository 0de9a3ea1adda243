"""What the Temporal UI shows of a saga: search attributes, the current-details screen, and the
static summary and details an order's workflow is started with.

The current details are markdown the UI renders: every table stands after a blank line and has a
header separator row, and every list stands apart from the paragraph above it.
"""

from __future__ import annotations

import json
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate

from plantbridge.canonical.order import ProductionOrder
from plantbridge.canonical.saga import SagaState
from plantbridge.workflows import search_attributes as sa

SUMMARY_LIMIT = 200  # the UI's list shows the static summary on one line


def static_summary(order: ProductionOrder) -> str:
    """One line for the workflow list: "1895938 · plant 1000 · D2O_EVOGUARD… · 1 EA · sap_s4"."""
    material = order.material if len(order.material) <= 24 else order.material[:23] + "…"
    qty = f"{order.quantity.quantity.normalize():f} {order.quantity.uom}"
    return f"{order.number} · plant {order.plant} · {material} · {qty} · {order.erp_system}"[:SUMMARY_LIMIT]


def static_details(order: ProductionOrder) -> str:
    """The order as it was started (markdown, shown on the workflow page)."""
    lines = [
        f"**Order {order.number}** · plant {order.plant} · {order.erp_system}",
        "",
        f"{order.material} {order.description} — {order.quantity.quantity} {order.quantity.uom}",
        "",
        "| op | work center | planned |",
        "| --- | --- | --- |",
    ]
    lines += [
        f"| {op.number} | {op.work_center} | {op.planned_qty.quantity} {op.planned_qty.uom} |"
        for op in order.operations
    ]
    return "\n".join(lines)


def current_details(s: SagaState) -> str:
    order = s.order
    lines = [
        f"## Order {order.number} · plant {order.plant} · **{s.state.value}**",
        "",
        f"{order.material} {order.description} — {order.quantity.quantity} {order.quantity.uom}",
        "",
    ]
    if s.hold is not None:
        lines += [
            f"**Quality hold** since {s.hold.since:%Y-%m-%d %H:%M} UTC: {s.hold.reason}",
            "",
            'Release with signal `release_hold` `{"by": "<your name>"}` or a `quality_disposition` event.',
            "",
        ]
    open_exc = s.open_exceptions
    if open_exc:
        lines += [f"### {len(open_exc)} open exception(s)", ""]
        for exc in open_exc:
            code = f" ({exc.erp_code})" if exc.erp_code else ""
            lines.append(f"- `{exc.id}` {exc.step_kind} on {exc.system}{code}: {exc.message}")
        example = {"exception_id": open_exc[0].id, "action": "retry", "by": "<your name>"}
        lines += [
            "",
            "Fix the cause, then send signal `resolve_exception` with:",
            "",
            "```json",
            json.dumps(example),
            "```",
            "",
            '(`action`: `retry`, `skip`, or `override` with `"document"`)',
            "",
        ]
    lines += ["| op | work center | planned | yield | scrap | final |", "| --- | --- | --- | --- | --- | --- |"]
    for op in s.operations.values():
        lines.append(
            f"| {op.number} | {op.work_center} | {op.planned} {op.uom} | {op.yield_total} | "
            f"{op.scrap_total} | {'yes' if op.final else ''} |"
        )
    postings = s.postings
    pending = [st for st in s.steps if not st.finished]
    lines += [
        "",
        f"ERP postings: {len(postings)} · steps pending: {len(pending)} · events accepted: "
        f"{s.events_accepted}, rejected: {s.events_rejected}, duplicates: {s.duplicates}",
    ]
    running = [st for st in s.steps if st.status == "running" and st.started_at is not None]
    if running:
        # Plant-system steps run as local activities: the UI lists no pending activity for them, so a
        # step that keeps failing transiently (and is retried) shows here, in progress since it began.
        lines += ["", "In progress (a step long in progress is being retried; its errors are in the worker's log):", ""]
        lines += [f"- `{st.kind.value}` {st.id} since {st.started_at:%Y-%m-%d %H:%M:%S} UTC"
                  + (f", supervisor retry {st.attempts - 1}" if st.attempts > 1 else "")
                  for st in running[:10] if st.started_at is not None]
    if s.alerts:
        last = s.alerts[-1]
        lines += ["", f"Last alert: {last.topic} (level {last.level}) at {last.at:%H:%M} — {last.message}"]
    if s.timeline:
        lines += ["", "Recent:", ""] + [f"- {t.at:%H:%M:%S} {t.text}" for t in s.timeline[-5:]]
    return "\n".join(lines)


def publish_details(s: SagaState) -> None:
    """The current-details screen only (no search attributes: nothing enters the history)."""
    workflow.set_current_details(current_details(s))


def publish(s: SagaState, shown: tuple[object, ...]) -> tuple[object, ...]:
    """Search attributes (on change only) and the current-details screen; returns what is shown now."""
    values = (s.state.value, len(s.open_exceptions))
    if values != shown:
        updates: list[SearchAttributeUpdate[Any]] = [
            sa.ORDER_STATE.value_set(s.state.value),
            sa.OPEN_EXCEPTIONS.value_set(len(s.open_exceptions)),
        ]
        if not shown:
            updates += [
                sa.PLANT.value_set(s.order.plant),
                sa.ORDER_NUMBER.value_set(s.order.number),
                sa.MATERIAL.value_set(s.order.material),
                sa.ERP_SYSTEM.value_set(s.order.erp_system),
                sa.WORK_CENTER.value_set(sorted({op.work_center for op in s.order.operations})),
            ]
        workflow.upsert_search_attributes(updates)
    workflow.set_current_details(current_details(s))
    return values
