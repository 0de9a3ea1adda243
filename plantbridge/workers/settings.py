"""Process settings: where Temporal and the store are. Environment variables `PLANTBRIDGE_*`."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, Field

from plantbridge import contract


class Settings(BaseModel):
    temporal_address: str = "127.0.0.1:7233"
    namespace: str = "default"
    task_queue: str = contract.TASK_QUEUE
    # The store (ledger, audit): any SQLAlchemy async URL; SQLite file by default.
    store_url: str = "sqlite+aiosqlite:///.plantbridge/plantbridge.db"
    # The reference systems' records (used for plants without a configured ERP/MES/QMS/WMS).
    reference_url: str = "sqlite+aiosqlite:///.plantbridge/reference-systems.db"
    max_concurrent_activities: int = Field(default=100, ge=1)
    # Sagas kept in the worker's memory between events (each holds its own sandbox). Beyond this,
    # an order's next event replays its (short) history first: memory stays bounded with thousands
    # of open orders, at some CPU per evicted order's next event.
    max_cached_workflows: int = Field(default=400, ge=10)
    # One file per plant (YAML or TOML); plants without a file use the reference systems.
    plants_dir: Path | None = None

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
