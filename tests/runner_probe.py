"""A workflow and activity for tests/test_workflow_runner.py: reports whether it ran in the sandbox."""

from __future__ import annotations

from datetime import timedelta

from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    from pydantic import BaseModel


class Echo(BaseModel):
    text: str
    seen_by: list[str] = []


@activity.defn
async def stamp(echo: Echo) -> Echo:
    return echo.model_copy(update={"seen_by": [*echo.seen_by, "activity"]})


@workflow.defn(sandboxed=True)
class RunnerProbe:
    @workflow.run
    async def run(self, echo: Echo) -> tuple[Echo, bool]:
        done = await workflow.execute_activity(stamp, echo, start_to_close_timeout=timedelta(seconds=10))
        return done, workflow.unsafe.in_sandbox()
