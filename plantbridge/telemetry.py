"""Traces and metrics for every plantbridge process.

Traces (OpenTelemetry): the gateway request, the Temporal update/workflow/activity spans (Temporal's
`TracingInterceptor` carries the context through the server) and the connector's outgoing HTTP call
(httpx instrumentation) form one trace per plant event. Export: OTLP/HTTP when
`PLANTBRIDGE_OTLP_ENDPOINT` is set, JSON lines to `PLANTBRIDGE_TRACE_FILE` when that is set, else off.

Metrics: the Temporal runtime's own metrics and plantbridge's business metrics on one Prometheus
endpoint (`PLANTBRIDGE_METRICS_BIND`, e.g. `127.0.0.1:9464`), through the runtime's metric meter.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter, SpanExportResult
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

_configured: Any = None
_lock = threading.Lock()


class JsonLinesSpanExporter(SpanExporter):
    """Writes each finished span as one JSON line (for local runs and tests)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = []
        for span in spans:
            ctx = span.get_span_context()
            if ctx is None:
                continue
            lines.append(json.dumps({
                "trace_id": f"{ctx.trace_id:032x}",
                "span_id": f"{ctx.span_id:016x}",
                "parent_id": f"{span.parent.span_id:016x}" if span.parent else None,
                "name": span.name,
                "service": span.resource.attributes.get("service.name"),
                "start_ns": span.start_time,
                "end_ns": span.end_time,
                "attributes": {k: str(v) for k, v in (span.attributes or {}).items()},
            }))
        with self._lock, self.path.open("a", encoding="utf-8") as out:
            out.write("".join(line + "\n" for line in lines))
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def setup_tracing(service: str, *, otlp_endpoint: str | None = None, trace_file: str | None = None) -> bool:
    """Install the process's tracer provider once; True when tracing is on."""
    global _configured
    otlp_endpoint = otlp_endpoint or os.environ.get("PLANTBRIDGE_OTLP_ENDPOINT")
    trace_file = trace_file or os.environ.get("PLANTBRIDGE_TRACE_FILE")
    if not otlp_endpoint and not trace_file:
        return _configured is not None
    with _lock:
        if _configured is None:
            from temporalio.contrib.opentelemetry import create_tracer_provider

            # Replay-safe: spans made inside workflows are not emitted again when a worker replays.
            provider = create_tracer_provider(resource=Resource.create({"service.name": service}))
            if otlp_endpoint:
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

                provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=otlp_endpoint)))
            if trace_file:
                provider.add_span_processor(SimpleSpanProcessor(JsonLinesSpanExporter(Path(trace_file))))
            trace.set_tracer_provider(provider)
            from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

            HTTPXClientInstrumentor().instrument()
            _configured = provider
    return True


def tracing_enabled() -> bool:
    return _configured is not None


def temporal_plugins() -> list[Any]:
    """Temporal's OpenTelemetry plugin when tracing is on (the client's workers inherit it): the
    update's handler runs in the caller's trace, and the saga hands that context on to the event's
    activities (see `ProductionOrderWorkflow._run_step`)."""
    if not tracing_enabled():
        return []
    from temporalio.contrib.opentelemetry import OpenTelemetryPlugin

    return [OpenTelemetryPlugin(add_temporal_spans=True)]


def flush_traces() -> None:
    if _configured is not None:
        _configured.force_flush()


_runtime: Runtime | None = None


def metrics_runtime(bind: str | None = None) -> Runtime | None:
    """A Temporal runtime exporting Prometheus metrics on `bind` (once per process), else None."""
    global _runtime
    bind = bind or os.environ.get("PLANTBRIDGE_METRICS_BIND")
    if not bind:
        return _runtime
    with _lock:
        if _runtime is None:
            _runtime = Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(
                bind_address=bind, counters_total_suffix=True, durations_as_seconds=True)))
    return _runtime
