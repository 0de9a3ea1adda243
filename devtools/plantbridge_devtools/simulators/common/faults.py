"""Fault injection for a simulator's business API (never for ``/admin``).

A :class:`FaultConfig` sets, per request: added latency (plus random jitter) and a ratio of 503
answers, optionally only for paths starting with one of ``paths``. With a ``seed`` the sequence of
decisions is repeatable: configuring the same seed again restarts the same sequence.
"""

from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

from pydantic import BaseModel, Field


@dataclass
class FaultConfig:
    latency_ms: int = 0
    latency_jitter_ms: int = 0
    error_503_ratio: float = 0.0
    paths: list[str] | None = None
    seed: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class FaultsIn(BaseModel):
    """Body of ``PUT /admin/faults``."""

    latency_ms: int = Field(default=0, ge=0, le=120_000)
    latency_jitter_ms: int = Field(default=0, ge=0, le=120_000)
    error_503_ratio: float = Field(default=0.0, ge=0, le=1)
    paths: list[str] | None = Field(default=None, description="only requests whose path starts with one of these")
    seed: int | None = None

    def to_config(self) -> FaultConfig:
        return FaultConfig(**self.model_dump())


@dataclass
class Decision:
    delay_s: float = 0.0
    fail_503: bool = False


@dataclass
class FaultInjector:
    config: FaultConfig = field(default_factory=FaultConfig)
    _rng: random.Random = field(default_factory=random.Random)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def configure(self, config: FaultConfig) -> FaultConfig:
        with self._lock:
            self.config = config
            self._rng = random.Random(config.seed)
        return config

    def clear(self) -> FaultConfig:
        return self.configure(FaultConfig())

    def decide(self, path: str) -> Decision:
        with self._lock:
            cfg = self.config
            if cfg.paths is not None and not any(path.startswith(p) for p in cfg.paths):
                return Decision()
            delay = cfg.latency_ms / 1000
            if cfg.latency_jitter_ms:
                delay += self._rng.uniform(0, cfg.latency_jitter_ms) / 1000
            fail = cfg.error_503_ratio > 0 and self._rng.random() < cfg.error_503_ratio
            return Decision(delay_s=delay, fail_503=fail)
