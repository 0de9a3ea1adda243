"""Telemetry rollups as they leave the plant: the edge's per-machine, per-interval aggregates.

The edge agent (plantbridge/edge/rollups.py) writes one row per machine and interval to its local
SQLite; its uploader sends them in batches to `POST /v1/plant/telemetry` (gzip), and the gateway
archives them as Parquet (plantbridge/batch/telemetry_archive.py). Never to the ERP.

A rollup is identified by its key, `{machine_id}@{bucket_start}` (UTC, ISO 8601): the edge's own
primary key. A rollup whose key the archive already holds is not stored again, so a re-sent batch
(the answer was lost, the edge restarted) costs nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from plantbridge.canonical.fields import PlantCode

CODE = r"^[0-9A-Za-z][0-9A-Za-z_\-./]{0,39}$"
MAX_ROLLUPS = 5000


class Stat(BaseModel):
    """min/avg/max over the interval's samples of one telemetry value."""

    model_config = ConfigDict(extra="forbid")

    min: float
    avg: float
    max: float
    n: int = Field(ge=1)


class TelemetryRollup(BaseModel):
    """One machine over one interval: seconds per state, counts, cycle time, extra telemetry."""

    model_config = ConfigDict(extra="forbid")

    machine_id: str = Field(pattern=CODE)
    work_center: str = Field(pattern=CODE)
    bucket_start: AwareDatetime
    bucket_end: AwareDatetime
    running_s: float = Field(ge=0, le=86400 * 7)
    idle_s: float = Field(ge=0, le=86400 * 7)
    stopped_s: float = Field(ge=0, le=86400 * 7)
    down_s: float = Field(ge=0, le=86400 * 7)
    unavailable_s: float = Field(ge=0, le=86400 * 7)
    good: int = Field(ge=0, le=2**53)
    scrap: int = Field(ge=0, le=2**53)
    cycle_min: float | None = Field(default=None, ge=0, description="cycle time (the machine's unit, e.g. ms)")
    cycle_avg: float | None = Field(default=None, ge=0)
    cycle_max: float | None = Field(default=None, ge=0)
    cycle_n: int = Field(default=0, ge=0)
    telemetry: dict[str, Stat] = Field(default_factory=dict, max_length=200)

    @field_validator("bucket_start", "bucket_end")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    @model_validator(mode="after")
    def _interval(self) -> TelemetryRollup:
        if self.bucket_end <= self.bucket_start:
            raise ValueError("bucket_end must be after bucket_start")
        return self

    @property
    def key(self) -> str:
        return rollup_key(self.machine_id, self.bucket_start)


class TelemetryBatch(BaseModel):
    """The body of `POST /v1/plant/telemetry` (before gzip)."""

    model_config = ConfigDict(extra="forbid")

    plant: PlantCode
    source: str = Field(min_length=1, max_length=64, description="the edge agent's name (its `source`)")
    rollups: list[TelemetryRollup] = Field(min_length=1, max_length=MAX_ROLLUPS)


def rollup_key(machine_id: str, bucket_start: datetime) -> str:
    """``{machine_id}@{bucket_start in UTC, ISO 8601}``: the idempotency key of a rollup."""
    return f"{machine_id}@{bucket_start.astimezone(UTC).isoformat()}"
