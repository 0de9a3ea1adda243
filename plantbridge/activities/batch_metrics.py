"""Metrics of the batch lane, on the worker's Prometheus endpoint (the Temporal runtime's meter, as the
saga's business metrics in `activities/base.py`).

Per job and plant (`plant` is `-` for the store's audit archive):
- `plantbridge_batch_runs_total{job, plant, outcome}` — activity executions of a batch job, by outcome:
  `ok` (documents written), `skipped` (nothing to do: a day off), `failed` (an error; Temporal retries a
  transient one, so a run that failed once and then succeeded counts `failed` 1 and `ok` 1);
- `plantbridge_batch_run_seconds{job, plant, outcome}` (histogram) — how long each execution took;
- `plantbridge_batch_documents_total{job, plant, new}` — documents (files or HTTP documents) written,
  `new="true"` for a document the target did not hold yet, `"false"` for one it already had (a re-run);
- `plantbridge_batch_dead_letters_total{plant}` — inbox messages the audit archive made dead letters.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from temporalio import activity


@dataclass
class RunOutcome:
    """Filled in by the job while it runs: what it wrote, or that it had nothing to do."""

    written: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)
    skipped: bool = False


@asynccontextmanager
async def metered(job: str, plant: str | None) -> AsyncIterator[RunOutcome]:
    """Count one execution of `job` for `plant`, its duration and what it wrote."""
    outcome = RunOutcome()
    started = time.monotonic()
    result = "failed"
    try:
        yield outcome
        result = "skipped" if outcome.skipped else "ok"
    finally:
        meter = activity.metric_meter()
        attrs = {"job": job, "plant": plant or "-"}
        meter.create_counter("plantbridge_batch_runs", "batch job executions by outcome").add(
            1, {**attrs, "outcome": result})
        meter.create_histogram_float("plantbridge_batch_run_seconds", "duration of a batch job execution", "s").record(
            time.monotonic() - started, {**attrs, "outcome": result})
        documents = meter.create_counter("plantbridge_batch_documents", "documents a batch job wrote")
        new = len(outcome.new)
        if new:
            documents.add(new, {**attrs, "new": "true"})
        if len(outcome.written) > new:
            documents.add(len(outcome.written) - new, {**attrs, "new": "false"})


def count_dead_letters(plants: list[str | None]) -> None:
    counter = activity.metric_meter().create_counter(
        "plantbridge_batch_dead_letters", "inbox messages that waited past the TTL and became dead letters")
    for plant in plants:
        counter.add(1, {"plant": plant or "-"})
