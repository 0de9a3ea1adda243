"""The `MasterDataCheck` workflow: a plant's cross-references against what the MES and ERP know.

Started daily by the plant's schedule `masterdata-check:{plant}` (or `plantbridge batch run
masterdata-check --plant P`). One activity reads the MES's code lists and the work centers of the
plant's running orders and reports unmapped and stale codes; `plantbridge status` shows the last
report (this workflow's result).
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from plantbridge.batch.masterdata import MasterDataReport
    from plantbridge.canonical.batch_jobs import (
        MASTERDATA_CHECK_ACTIVITY,
        MASTERDATA_CHECK_WORKFLOW,
        MasterDataCheckRequest,
    )


@workflow.defn(name=MASTERDATA_CHECK_WORKFLOW)
class MasterDataCheckWorkflow:
    """Check one plant's master data; the result is the report."""

    @workflow.run
    async def run(self, req: MasterDataCheckRequest) -> MasterDataReport:
        report: MasterDataReport = await workflow.execute_activity(
            MASTERDATA_CHECK_ACTIVITY,
            req,
            result_type=MasterDataReport,
            start_to_close_timeout=timedelta(minutes=5),
            retry_policy=RetryPolicy(initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=1),
                                     maximum_attempts=5, non_retryable_error_types=["ConfigurationError"]),
        )
        return report
