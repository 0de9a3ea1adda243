"""The `AuditArchive` workflow: the store's old audit and inbox rows to compressed archives.

Started daily by the schedule `audit-archive` (or `plantbridge batch run audit-archive`). One
idempotent activity: `waiting` inbox rows past the TTL become dead letters (with an alert), then
audit and finished inbox rows older than the retention move to JSON Lines + gzip archives with a
manifest and checksum under the export root (`archive/{table}/`). The cutoffs derive from `as_of`
(the scheduled time), so a retry archives exactly the same rows. Each dead letter of a known plant and
order is then alerted through the plant's notifier (`notify.alert`, idempotent per inbox row; patch
`dead-letter-notify`): an alert that cannot be sent is logged, it does not fail the archive.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from plantbridge import contract
    from plantbridge.canonical import commands as c
    from plantbridge.canonical.batch_jobs import (
        AUDIT_ARCHIVE_ACTIVITY,
        AUDIT_ARCHIVE_WORKFLOW,
        SCHEDULED_START_ATTRIBUTE,
        AuditArchiveJob,
        AuditArchiveRequest,
        AuditArchiveResult,
        DeadLetterAlert,
        dead_letter_order,
    )
    from plantbridge.workflows.patches import DEAD_LETTER_NOTIFY, NO_EPOCH

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
        if result.alerts and NO_EPOCH.on(DEAD_LETTER_NOTIFY):
            for alert in result.alerts:
                await self._alert(alert)
        return result

    async def _alert(self, alert: DeadLetterAlert) -> None:
        wf_id = workflow.info().workflow_id
        step = f"dead-letter:{alert.inbox_id}"
        try:
            await workflow.execute_activity(
                c.StepKind.NOTIFY_ALERT.value,
                c.StepRequest(idempotency_key=contract.idempotency_key(wf_id, step), workflow_id=wf_id, step_id=step,
                              kind=c.StepKind.NOTIFY_ALERT, order=dead_letter_order(alert),
                              command=c.Alert(severity="warning", topic="inbox_dead_letter", message=alert.message)),
                result_type=c.StepResult,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=1), maximum_attempts=10),
            )
        except ActivityError:
            workflow.logger.warning("dead-letter alert could not be sent: %s", alert.message)
