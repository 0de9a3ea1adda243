"""The per-plant Odoo release poller: `odoo-poller:{plant}`.

Odoo's automation webhook is at-most-once (1 s timeout, never retried), so this small long-running
workflow asks Odoo, every `interval_s`, for the manufacturing orders confirmed (or in progress) and
written since its cursor, and starts any saga not yet started (starts are idempotent: a running saga
is kept, a finished one is never started again). The cursor (Odoo's `write_date`) lives in the
workflow's state and is carried over `continue_as_new` every `ROUNDS_PER_RUN` polls.
Names are constants here; the lead folds them into plantbridge/contract.py.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, Field
from temporalio import workflow
from temporalio.common import RetryPolicy

POLLER_WORKFLOW = "OdooReleasePoller"
POLL_ACTIVITY = "odoo_poll_releases"
ROUNDS_PER_RUN = 200


def poller_id(plant: str) -> str:
    return f"odoo-poller:{plant}"


class PollerInput(BaseModel):
    plant: str
    interval_s: float = Field(default=30.0, gt=0)
    cursor: str | None = None  # Odoo write_date, "YYYY-MM-DD HH:MM:SS" (UTC)


class PollRequest(BaseModel):
    plant: str
    cursor: str | None = None


class PollResult(BaseModel):
    cursor: str | None = None
    started: list[str] = Field(default_factory=list)
    seen: int = 0


@workflow.defn(name=POLLER_WORKFLOW)
class OdooReleasePollerWorkflow:
    def __init__(self) -> None:
        self.cursor: str | None = None
        self.started: list[str] = []
        self.polls = 0

    @workflow.run
    async def run(self, args: PollerInput) -> None:
        self.cursor = args.cursor
        for _ in range(ROUNDS_PER_RUN):
            result = await workflow.execute_activity(
                POLL_ACTIVITY, PollRequest(plant=args.plant, cursor=self.cursor), result_type=PollResult,
                start_to_close_timeout=timedelta(seconds=120),
                retry_policy=RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(
                    seconds=max(args.interval_s, 1.0))))
            self.cursor = result.cursor
            self.started = (self.started + result.started)[-50:]
            self.polls += 1
            await workflow.sleep(timedelta(seconds=args.interval_s))
        workflow.continue_as_new(args.model_copy(update={"cursor": self.cursor}))

    @workflow.query(name="poller_state")
    def state(self) -> PollResult:
        return PollResult(cursor=self.cursor, started=list(self.started), seen=self.polls)
