"""The saga's current details: one markdown screen that tells a supervisor what is going on."""

from __future__ import annotations

import json

from plantbridge.canonical.saga import SagaState


def current_details(s: SagaState) -> str:
    order = s.order
    lines = [
        f"## Order {order.number} · plant {order.plant} · **{s.state.value}**",
        f"{order.material} {order.description} — {order.quantity.quantity} {order.quantity.uom}",
        "",
    ]
    if s.hold is not None:
        lines += [
            f"**Quality hold** since {s.hold.since:%Y-%m-%d %H:%M} UTC: {s.hold.reason}",
            'Release with signal `release_hold` `{"by": "<your name>"}` or a `quality_disposition` event.',
            "",
        ]
    open_exc = s.open_exceptions
    if open_exc:
        lines.append(f"### {len(open_exc)} open exception(s)")
        for exc in open_exc:
            code = f" ({exc.erp_code})" if exc.erp_code else ""
            lines.append(f"- `{exc.id}` {exc.step_kind} on {exc.system}{code}: {exc.message}")
        example = {"exception_id": open_exc[0].id, "action": "retry", "by": "<your name>"}
        lines += [
            "",
            "Fix the cause, then send signal `resolve_exception` with:",
            "```json",
            json.dumps(example),
            "```",
            '(`action`: `retry`, `skip`, or `override` with `"document"`)',
            "",
        ]
    lines += ["| op | work center | planned | yield | scrap | final |", "|---|---|---|---|---|---|"]
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
    if s.alerts:
        last = s.alerts[-1]
        lines.append(f"Last alert: {last.topic} (level {last.level}) at {last.at:%H:%M} — {last.message}")
    if s.timeline:
        lines += ["", "Recent:"] + [f"- {t.at:%H:%M:%S} {t.text}" for t in s.timeline[-5:]]
    return "\n".join(lines)
