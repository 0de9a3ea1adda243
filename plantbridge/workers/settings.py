"""Process settings: where Temporal and the store are. Environment variables `PLANTBRIDGE_*`."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from plantbridge import contract


class Settings(BaseModel):
    temporal_address: str = "127.0.0.1:7233"
    namespace: str = "default"
    task_queue: str = contract.TASK_QUEUE
    # The store (ledger, audit): any SQLAlchemy async URL; SQLite file by default.
    store_url: str = "sqlite+aiosqlite:///.plantbridge/plantbridge.db"
    # The reference systems' records (systems a plant file names `kind: reference`, and the notifier).
    reference_url: str = "sqlite+aiosqlite:///.plantbridge/reference-systems.db"
    max_concurrent_activities: int = Field(default=100, ge=1)
    # Workflow activations handled at once (each on its own thread) and the long polls kept open for
    # workflow and activity tasks (the SDK's defaults: 100, 5 and 5).
    max_concurrent_workflow_tasks: int = Field(default=100, ge=1)
    workflow_task_pollers: int = Field(default=5, ge=2)
    activity_task_pollers: int = Field(default=5, ge=1)
    # Sagas kept in the worker's memory between events (each holds its own sandbox). Beyond this,
    # an order's next event replays its (short) history first: memory stays bounded with thousands
    # of open orders, at some CPU per evicted order's next event.
    max_cached_workflows: int = Field(default=400, ge=10)
    # `off`: workflows run without the SDK's sandbox (less worker CPU per event; the sandbox's run-time
    # guard against non-deterministic calls is gone, replay tests still guard the code). workers/runner.py.
    workflow_sandbox: Literal["on", "off"] = "on"
    # One file per plant (YAML or TOML); required: a plant without a file has no systems.
    plants_dir: Path | None = None
    # Retention of the store's audit and inbox rows (`audit-archive`), see canonical/batch_config.py.
    audit_retention: timedelta = timedelta(days=90)
    inbox_retention: timedelta = timedelta(days=30)
    waiting_ttl: timedelta = timedelta(days=7)

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        values: dict[str, object] = {}
        for name in cls.model_fields:
            env = os.environ.get(f"PLANTBRIDGE_{name.upper()}")
            if env is not None:
                values[name] = env
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls.model_validate(values)


def state_dir() -> Path:
    path = Path(os.environ.get("PLANTBRIDGE_STATE_DIR", ".plantbridge"))
    path.mkdir(parents=True, exist_ok=True)
    return path
