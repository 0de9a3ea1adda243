"""Names and messages of the batch lane (the lead folds the names into `plantbridge/contract.py`).

Schedules: one per plant and job, id `{job}:{plant}` (e.g. `shift-summary:1000`); the workflows
they start get the same id (Temporal appends the scheduled time). A run started by hand
(`plantbridge batch run`) has the id `{job}:{plant}:{day}:{shift}` (or `...:latest`).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

SHIFT_SUMMARY_JOB = "shift-summary"
SHIFT_SUMMARY_WORKFLOW = "ShiftSummary"
SHIFT_SUMMARY_ACTIVITY = "batch.shift_summary"
# Error type of a document that fails its schema: the run fails loudly, never retried.
INVALID_B2MML = "InvalidB2MML"
# A shift whose plant events were moved to the archive: the summary is refused, not written empty.
SHIFT_ARCHIVED = "ShiftArchived"
SCHEDULED_START_ATTRIBUTE = "TemporalScheduledStartTime"


def schedule_id(job: str, plant: str) -> str:
    return f"{job}:{plant}"


def manual_run_id(job: str, plant: str, day: date | None, shift: str | None) -> str:
    if day is None or shift is None:
        return f"{job}:{plant}:latest"
    return f"{job}:{plant}:{day.isoformat()}:{shift}"


class ShiftSummaryRequest(BaseModel):
    """The workflow's input. A schedule sets only `plant` (and `grace`): the shift is the one that
    ended `grace` before the scheduled time. By hand: `shift` and `day`, or neither (the last shift
    that ended)."""

    model_config = ConfigDict(extra="forbid")

    plant: str
    shift: str | None = None
    day: date | None = None
    grace: timedelta = timedelta(minutes=15)


class ShiftSummaryJob(BaseModel):
    """The activity's input: the request and the instant it is judged at."""

    model_config = ConfigDict(extra="forbid")

    plant: str
    shift: str | None = None
    day: date | None = None
    grace: timedelta = timedelta(minutes=15)
    # When a schedule fired (its TemporalScheduledStartTime): exactly the shift ending `grace` before.
    scheduled_at: datetime | None = None


class ShiftSummaryResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plant: str
    shift: str | None = None
    day: date | None = None
    content_hash: str | None = None
    written: list[str] = Field(default_factory=list)
    new: list[str] = Field(default_factory=list)
    orders: list[str] = Field(default_factory=list)
    skipped: str | None = None


# The audit archive: one schedule for the store (not per plant), daily.
AUDIT_ARCHIVE_JOB = "audit-archive"
AUDIT_ARCHIVE_SCHEDULE = AUDIT_ARCHIVE_JOB
AUDIT_ARCHIVE_WORKFLOW = "AuditArchive"
AUDIT_ARCHIVE_ACTIVITY = "batch.audit_archive"
DEAD_LETTER_ACTION = "inbox_dead_letter"


class AuditArchiveRequest(BaseModel):
    """The workflow's input; `as_of` defaults to the schedule's time (or now when run by hand)."""

    model_config = ConfigDict(extra="forbid")

    as_of: datetime | None = None


class AuditArchiveJob(BaseModel):
    model_config = ConfigDict(extra="forbid")

    as_of: datetime


class AuditArchiveResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    as_of: datetime
    audit_cutoff: datetime
    inbox_cutoff: datetime
    files: list[str] = Field(default_factory=list)
    new: list[str] = Field(default_factory=list)
    rows: dict[str, int] = Field(default_factory=dict)
    dead_letters: list[int] = Field(default_factory=list)


# The master-data check: one schedule per plant, daily.
MASTERDATA_CHECK_JOB = "masterdata-check"
MASTERDATA_CHECK_WORKFLOW = "MasterDataCheck"
MASTERDATA_CHECK_ACTIVITY = "batch.masterdata_check"
# The order saga's workflow type (plantbridge/client.py WORKFLOW_TYPE).
ORDER_WORKFLOW = "ProductionOrder"


class MasterDataCheckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plant: str
