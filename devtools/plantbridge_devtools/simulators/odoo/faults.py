"""Fault injection for the RPC endpoints (never for ``/admin``).

Per request: a ratio of 502 answers from the proxy in front of Odoo, of hangs (``hang_seconds``,
then 504), of lock errors (19.0 ``LockError``/409; 17/18 psycopg2's lock failure after Odoo's own
retries), and of lost answers: the call is committed, then the answer is replaced by a 502 or a hang.
``models`` limits faults to calls on those models (XML-RPC/JSON-RPC: the service or ``jsonrpc``).
With a ``seed`` the decisions repeat.
"""

from __future__ import annotations

import random
import threading
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, Field


@dataclass
class FaultConfig:
    error_5xx_ratio: float = 0.0
    hang_ratio: float = 0.0
    hang_seconds: float = 30.0
    lock_ratio: float = 0.0
    lost_answer_ratio: float = 0.0
    lost_mode: Literal["502", "hang"] = "502"
    models: list[str] | None = None
    seed: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class FaultsIn(BaseModel):
    error_5xx_ratio: float = Field(default=0.0, ge=0, le=1)
    hang_ratio: float = Field(default=0.0, ge=0, le=1)
    hang_seconds: float = Field(default=30.0, ge=0, le=600)
    lock_ratio: float = Field(default=0.0, ge=0, le=1)
    lost_answer_ratio: float = Field(default=0.0, ge=0, le=1)
    lost_mode: Literal["502", "hang"] = "502"
    models: list[str] | None = None
    seed: int | None = None


@dataclass
class Decision:
    fail_5xx: bool = False
    hang: bool = False
    lock: bool = False


@dataclass
class OdooFaults:
    config: FaultConfig = field(default_factory=FaultConfig)
    _rng: random.Random = field(default_factory=random.Random)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def configure(self, config: FaultConfig) -> FaultConfig:
        with self._lock:
            self.config = config
            self._rng = random.Random(config.seed)
        return config

    def _applies(self, model: str) -> bool:
        return self.config.models is None or model in self.config.models

    def before(self, model: str) -> Decision:
        with self._lock:
            cfg = self.config
            if not self._applies(model):
                return Decision()
            fail = self._rng.random() < cfg.error_5xx_ratio
            hang = not fail and self._rng.random() < cfg.hang_ratio
            lock = not (fail or hang) and model != "common" and self._rng.random() < cfg.lock_ratio
            return Decision(fail, hang, lock)

    def after_commit(self, model: str) -> bool:
        with self._lock:
            return self._applies(model) and self._rng.random() < self.config.lost_answer_ratio

    @staticmethod
    def lock_name(version: str) -> str:
        return "odoo.exceptions.LockError" if version == "19.0" else "psycopg2.errors.LockNotAvailable"

    @staticmethod
    def lock_error(version: str) -> Exception:
        if version == "19.0":
            return RuntimeError("Cannot obtain lock on the record; another transaction is using it. Try again later.")
        return RuntimeError('could not obtain lock on row in relation "mrp_production"')
