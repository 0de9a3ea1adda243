"""The `AuditArchive` workflow: the store's old audit and inbox rows to compressed archives.

Started daily by the schedule `audit-archive` (or `plantbridge batch run audit-archive`). One
idempotent activity: `waiting` inbox rows past the TTL become dead letters (with an alert), then
audit and finished inbox rows older than the retention move to JSON Lines + gzip archives with a
manifest and checksum under the export root (`archive/{table}/`). The cutoffs derive from `as_of`
(the scheduled time), so a retry archives exactly the same rows.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey

with workflow.unsafe.imports_passed_through():
    from plantbridge.canonical.batch_jobs import (
        AUDIT_ARCHIVE_ACTIVITY,
        AUDIT_ARCHIVE_WORKFLOW,
        SCHEDULED_START_ATTRIBUTE,
        AuditArchiveJob,
        AuditArchiveRequest,
        AuditArchiveResult,
    )

SCHEDULED_START = SearchAttributeKey.for_datetime(SCHEDULED_START_ATTRIBUTE)


@workflow.defn(name=AUDIT_ARCHIVE_WORKFLOW)
class AuditArchiveWorkflow:
    """Archive and dead-letter as of the scheduled time; the result names the files written."""

    @workflow.run
    async def run(self, req: AuditArchiveRequest) -> AuditArchiveResult:
        as_of: datetime | None = req.as_of or workflow.info().typed_search_attributes.get(SCHEDULED_START)
        result: AuditArchiveResult = await workflow.execute_activity(
            AUDIT_ARCHIVE_ACTIVITY,
            AuditArchiveJob(as_of=as_of or workflow.now()),
            result_type=AuditArchiveResult,
            start_to_close_timeout=timedelta(hours=1),
            heartbeat_timeout=timedelta(seconds=15),
            retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1)),
        )
        return result
