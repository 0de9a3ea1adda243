"""A plant's batch lane: which scheduled jobs it runs and where their documents go.

In the plant file:

```yaml
exports: {kind: directory, path: /var/lib/plantbridge/exports/1000}
# or   {kind: http, url: https://mes.example.com/b2mml, api_key_env: ..., retries: 5}
batch:
  jobs: [shift-summary, masterdata-check]
  grace: PT15M           # a shift summary runs this long after the shift's end
  catchup_window: P1D    # missed runs (server down) are caught up within this window
```

A job that leaves `jobs` has its Temporal Schedule removed when the worker next starts.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

JobName = Literal["shift-summary", "masterdata-check"]
JOBS: tuple[JobName, ...] = ("shift-summary", "masterdata-check")


class DirectoryExport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["directory"] = "directory"
    path: str = Field(min_length=1)


class HttpExport(BaseModel):
    """POSTs each document; the content hash travels as the `Idempotency-Key` header."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["http"] = "http"
    url: str = Field(pattern=r"^https?://")
    api_key_env: str | None = None
    timeout_s: float = Field(default=30.0, gt=0, le=600)
    retries: int = Field(default=5, ge=0, le=50)


ExportTarget = Annotated[DirectoryExport | HttpExport, Field(discriminator="kind")]


class BatchConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    jobs: list[JobName] = Field(default_factory=list)
    grace: timedelta = Field(default=timedelta(minutes=15))
    catchup_window: timedelta = Field(default=timedelta(days=1))

    @model_validator(mode="after")
    def _sane(self) -> BatchConfig:
        if self.grace < timedelta(0) or self.grace > timedelta(hours=12):
            raise ValueError("batch.grace must be between 0 and 12 hours")
        if self.catchup_window < timedelta(minutes=1):
            raise ValueError("batch.catchup_window must be at least one minute (Temporal's minimum)")
        return self


# The shift summary reads inbox rows received up to this long after their shift (edge buffering,
# see batch/sources.py LATE_ARRIVAL) plus one catch-up window of a day: retention must exceed it.
SHIFT_SUMMARY_LOOK_BACK = timedelta(days=3)


class RetentionPolicy(BaseModel):
    """How long the store keeps audit and inbox rows before `audit-archive` moves them to archives,
    and how long an inbox event may wait for its order's saga before it becomes a dead letter.
    Settings: PLANTBRIDGE_AUDIT_RETENTION, PLANTBRIDGE_INBOX_RETENTION, PLANTBRIDGE_WAITING_TTL
    (ISO 8601 durations such as P90D)."""

    model_config = ConfigDict(extra="forbid")

    audit_retention: timedelta = timedelta(days=90)
    inbox_retention: timedelta = timedelta(days=30)
    waiting_ttl: timedelta = timedelta(days=7)

    @model_validator(mode="after")
    def _keeps_what_the_shift_summary_reads(self) -> RetentionPolicy:
        for name in ("audit_retention", "inbox_retention"):
            if getattr(self, name) <= SHIFT_SUMMARY_LOOK_BACK:
                raise ValueError(f"{name} must be longer than the shift summary's look-back of "
                                 f"{SHIFT_SUMMARY_LOOK_BACK.days} days (late arrivals + catch-up)")
        if self.waiting_ttl < timedelta(hours=1):
            raise ValueError("waiting_ttl must be at least one hour")
        if self.waiting_ttl >= self.inbox_retention:
            raise ValueError("waiting_ttl must be shorter than inbox_retention (a waiting row is "
                             "dead-lettered before it is archived)")
        return self
