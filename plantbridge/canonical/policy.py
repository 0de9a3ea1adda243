"""A plant's rules for its orders: SLA durations, ERP posting policy, dedup and history limits.

Every duration the saga waits on comes from here, so a plant can tune them and tests can shorten
them.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from plantbridge import contract


class SparePart(BaseModel):
    model_config = ConfigDict(extra="forbid")

    material: str = Field(min_length=1, max_length=40)
    quantity: Decimal = Field(gt=0)
    uom: str = "H87"


class PlantPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # SLA timers: alert at the first deadline, escalate when still open `escalate_after` later.
    release_start_sla: timedelta = timedelta(hours=8)
    hold_sla: timedelta = timedelta(hours=4)
    posting_sla: timedelta = timedelta(minutes=30)
    escalate_after: timedelta = timedelta(hours=2)
    # How long `submit_event` waits for the ERP outcome before answering `pending`.
    ack_wait: timedelta = timedelta(seconds=2)
    # A downtime longer than this raises a downtime alert.
    long_downtime: timedelta = timedelta(minutes=30)
    # Activity timeouts and retries (transient errors are retried with backoff, forever: the
    # posting SLA alerts a supervisor when a system stays down). The start-to-close must exceed the
    # connectors' worst case from their configured timeouts (the worker checks it at start:
    # workers/timeouts.py); a dead worker's attempt is retried after the heartbeat timeout.
    activity_timeout: timedelta = timedelta(seconds=300)
    retry_initial: timedelta = timedelta(seconds=1)
    retry_max_interval: timedelta = timedelta(minutes=5)
    # Errors that are neither transient nor business rejections (a defect, e.g. a KeyError in a
    # connector) are retried this many times, then parked as an open exception for a supervisor.
    unexpected_error_attempts: int = Field(default=5, ge=1, le=100)
    # How many recent event ids are kept for deduplication (carried across continue-as-new).
    dedup_window: int = Field(default=20000, ge=100, le=1_000_000)
    # Continue-as-new after this many events in one run (or when Temporal suggests it).
    continue_as_new_after: int = Field(default=2000, ge=10, le=100_000)
    # How many timeline entries the saga keeps in its state (the audit trail keeps everything).
    timeline_limit: int = Field(default=200, ge=10, le=10_000)
    # ERP posting policy. Critical events (final confirmation, holds, usage decisions, maintenance)
    # always post at once; bulk data can be aggregated: partial confirmations summed per operation
    # and component consumption summed per material, posted at operation end or every
    # `aggregate_every`, whichever comes first.
    partial_confirmations: Literal["immediate", "aggregate"] = "immediate"
    consumption: Literal["immediate", "aggregate"] = "immediate"
    aggregate_every: timedelta = timedelta(minutes=15)
    # Consumption of a material that is not among the order's components: `allow` posts it as an
    # unplanned goods issue (the behaviour of every order started before this setting existed);
    # `exception` opens an exception naming the material instead of posting, and a supervisor decides:
    # retry (post it as sent), skip (not posted) or override (posted by hand). New plant files from
    # the templates say `exception`.
    unknown_material: Literal["allow", "exception"] = "allow"
    # Maintenance: how long a maintenance request may stay open before escalation, and the spare
    # parts reserved in the WMS per equipment.
    maintenance_sla: timedelta = timedelta(hours=8)
    spare_parts: dict[str, list[SparePart]] = Field(default_factory=dict)
    # Task queues per system; the order saga itself runs on `plantbridge-orders`.
    task_queue: str = contract.TASK_QUEUE
    # Whether the saga applies plant events sent as the `plant_event` signal. Off: plant events enter
    # only through the gateway (authenticated, owned per event type, validated) as `submit_event`;
    # a signal (e.g. typed into the Temporal UI) is refused, counted and audited. On only for a trusted
    # bulk sender inside the Temporal network (tests of the signal path).
    event_signals: bool = False
