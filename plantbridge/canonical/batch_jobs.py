"""Names and messages of the batch lane (the lead folds the names into `plantbridge/contract.py`).

Schedules: one per plant and job, id `{job}:{plant}` (e.g. `shift-summary:1000`); the workflows
they start get the same id (Temporal appends the scheduled time). A run started by hand
(`plantbridge batch run`) has the id `{job}:{plant}:{day}:{shift}` (or `...:latest`).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from plantbridge.canonical.fields import Quantity
from plantbridge.canonical.order import Operation, ProductionOrder

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
    ended `grace` before the scheduled time. By hand: `shift` and `day`, or neither: the last shift
    that ended and the shift running now, so far (`in_progress`), so that what happened since the last
    shift change is in a document too."""

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


class ShiftExport(BaseModel):
    """One shift's documents: a finished shift, or the running one so far (`in_progress`)."""

    model_config = ConfigDict(extra="forbid")

    shift: str
    day: date
    in_progress: bool = False
    content_hash: str
    written: list[str] = Field(default_factory=list)
    new: list[str] = Field(default_factory=list)
    orders: list[str] = Field(default_factory=list)


class ShiftSummaryResult(BaseModel):
    """`shifts` lists each shift summarised (oldest first); the top-level `shift`, `day` and
    `content_hash` are the last one's, `written`, `new` and `orders` those of all."""

    model_config = ConfigDict(extra="forbid")

    plant: str
    shift: str | None = None
    day: date | None = None
    content_hash: str | None = None
    written: list[str] = Field(default_factory=list)
    new: list[str] = Field(default_factory=list)
    orders: list[str] = Field(default_factory=list)
    skipped: str | None = None
    shifts: list[ShiftExport] = Field(default_factory=list)


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


class DeadLetterAlert(BaseModel):
    """An inbox message that waited past the TTL for its order's saga: what the alert names."""

    model_config = ConfigDict(extra="forbid")

    inbox_id: int
    plant: str
    order: str
    event_id: str | None = None
    message: str


def dead_letter_order(alert: DeadLetterAlert) -> ProductionOrder:
    """The order an alert is about, as far as the message knows it: number and plant. A stand-in (the
    notifier's port takes an order): the saga never took the message, so nothing else is known."""
    unknown = Quantity(quantity=Decimal(0), uom="H87")
    return ProductionOrder(number=alert.order, plant=alert.plant, material="UNKNOWN", quantity=unknown,
                           description=f"dead letter: inbox message {alert.inbox_id}",
                           operations=[Operation(number="0010", work_center="UNKNOWN", planned_qty=unknown)])


class AuditArchiveResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    as_of: datetime
    audit_cutoff: datetime
    inbox_cutoff: datetime
    files: list[str] = Field(default_factory=list)
    new: list[str] = Field(default_factory=list)
    rows: dict[str, int] = Field(default_factory=dict)
    dead_letters: list[int] = Field(default_factory=list)
    # The dead letters of a known plant and order, for the workflow to alert (notify.alert).
    alerts: list[DeadLetterAlert] = Field(default_factory=list)


# The master-data check: one schedule per plant, daily.
MASTERDATA_CHECK_JOB = "masterdata-check"
MASTERDATA_CHECK_WORKFLOW = "MasterDataCheck"
MASTERDATA_CHECK_ACTIVITY = "batch.masterdata_check"
# The order saga's workflow type (plantbridge/client.py WORKFLOW_TYPE).
ORDER_WORKFLOW = "ProductionOrder"


class MasterDataCheckRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plant: str
