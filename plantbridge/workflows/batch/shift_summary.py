"""The `ShiftSummary` workflow: one shift of one plant summarised, exported as B2MML + JSON.

Started by the plant's schedule `shift-summary:{plant}` at each shift end plus the grace period
(or by `plantbridge batch run` / a backfill; by hand without a shift, the activity also summarises the
running shift so far, see `activities/batch.pick_windows`). The work is one idempotent activity: it computes the
summary from what the sagas accepted, renders and validates the B2MML document and writes both
files named by their content hash, so a retry, a re-run or a backfill of the same shift never
exports twice. A document that fails MESA's schema fails the run (non-retryable `InvalidB2MML`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey

with workflow.unsafe.imports_passed_through():
    from plantbridge.canonical.batch_jobs import (
        INVALID_B2MML,
        SCHEDULED_START_ATTRIBUTE,
        SHIFT_SUMMARY_ACTIVITY,
        SHIFT_SUMMARY_WORKFLOW,
        ShiftSummaryJob,
        ShiftSummaryRequest,
        ShiftSummaryResult,
    )

SCHEDULED_START = SearchAttributeKey.for_datetime(SCHEDULED_START_ATTRIBUTE)


@workflow.defn(name=SHIFT_SUMMARY_WORKFLOW)
class ShiftSummaryWorkflow:
    """Summarise one shift; the result names the files written (and which of them are new)."""

    @workflow.run
    async def run(self, req: ShiftSummaryRequest) -> ShiftSummaryResult:
        scheduled: datetime | None = None
        if req.shift is None and req.day is None:
            scheduled = workflow.info().typed_search_attributes.get(SCHEDULED_START)
        job = ShiftSummaryJob(plant=req.plant, shift=req.shift, day=req.day, grace=req.grace,
                              scheduled_at=scheduled)
        result: ShiftSummaryResult = await workflow.execute_activity(
            SHIFT_SUMMARY_ACTIVITY,
            job,
            result_type=ShiftSummaryResult,
            start_to_close_timeout=timedelta(minutes=10),
            # The activity heartbeats every few seconds: a killed worker's run moves on quickly.
            heartbeat_timeout=timedelta(seconds=15),
            retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1),
                                     non_retryable_error_types=[INVALID_B2MML, "ConfigurationError"]),
        )
        return result
