"""The bench's summary table on the console (the JSON holds every figure)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def print_summary(r: dict[str, Any], console: Console) -> None:
    table = Table(title=f"plantbridge bench ({r['mode']}) on {r['machine']['cpus']} CPUs")
    table.add_column("measure")
    table.add_column("value", justify="right")
    rows = [
        ("plant events/s through the gateway", r["events_per_s"]),
        ("bare engine updates/s", r["bare_engine"]["updates_per_s"]),
        ("ratio events / bare updates", r["ratio_events_to_bare_updates"]),
        ("bare engine signals/s", r["bare_engine"]["signals_per_s"]),
        ("bare engine workflows/s", r["bare_engine"]["workflows_per_s"]),
        ("orders/s", r["orders_per_s"]),
        ("ack latency p50 / p99 ms", f"{r['ack_latency_ms']['p50']} / {r['ack_latency_ms']['p99']}"),
        ("ack p99 at 100 events/s ms", r["ack_latency_at_100_per_s"]["p99_ms"]),
        (f"ack p50 / p99 at {r['ack_latency_at_40pct_of_bare']['rate_target']} events/s (40 % of bare) ms, achieved",
         f"{r['ack_latency_at_40pct_of_bare']['p50_ms']} / {r['ack_latency_at_40pct_of_bare']['p99_ms']}, "
         f"{r['ack_latency_at_40pct_of_bare']['rate_achieved']}/s"),
        ("per plant event: workflow tasks / activities / history events",
         f"{r['per_plant_event']['workflow_tasks']} / {r['per_plant_event']['activities']} / "
         f"{r['per_plant_event']['history_events']}"),
        ("per plant event: CPU ms worker / gateway / server",
         " / ".join(str(r["per_plant_event"]["cpu_ms"].get(k, "-")) for k in ("worker", "gateway", "server"))),
        ("bare update: CPU ms server / client and worker",
         " / ".join(str(r["bare_engine"].get("update_cpu_ms", {}).get(k, "-"))
                    for k in ("server", "client_and_worker"))),
        ("per order: history KB max / largest payload KB",
         f"{round(r['per_order']['history_bytes_max'] / 1024, 1)} / "
         f"{round(r['per_order']['largest_payload_bytes'] / 1024, 1)}"),
        ("critical event to ERP p99 ms", r["critical_event_to_erp_posting_ms"]["p99"]),
        ("ERP calls per plant event", r["erp_calls_per_event"]),
        ("postings per order", r["postings_per_order"]),
        (f"worker RSS with {r['open_orders']['open_orders']} open orders MB", r["open_orders"]["worker_rss_mb"]),
        ("peak RSS worker / gateway / server MB",
         " / ".join(str(r["peak_rss_mb"].get(k, "-")) for k in ("worker", "gateway", "server"))),
    ]
    if r.get("edge"):
        e = r["edge"]
        rows.append((f"edge: {e['machines']} machines x {e['nodes_per_machine']} nodes, notifications/s",
                     f"{e['notifications_per_s']} of {e['offered_changes_per_s']}"))
        rows.append(("edge CPU s per s / event lag p95 s", f"{e['agent_cpu_s_per_s']} / {e['event_lag_p95_s']}"))
    for name, value in rows:
        table.add_row(name, str(value))
    console.print(table)
