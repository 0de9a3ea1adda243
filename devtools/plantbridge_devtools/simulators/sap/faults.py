"""Fault injection for the OData endpoints (never for ``/admin``).

A :class:`FaultConfig` sets, per request: added latency (plus jitter), a ratio of 503 answers
(SAP-like HTML from the ICM, or a JSON Gateway body), a ratio of requests that hang for
``hang_seconds`` before answering 503 (to trigger client timeouts), and a ratio of changing
requests whose posting is *committed* but whose answer is replaced by a 503 or delayed by
``hang_seconds`` ("fault after commit"), so clients must look postings up by their external key
before retrying. With a ``seed`` the sequence of decisions is repeatable: setting the same
configuration again restarts the same sequence.
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

ICM_503_PAGE = """<html><head><title>Service cannot be reached</title></head>
<body><h2>503 Service cannot be reached</h2>
<p>What has happened?</p><p>URL call was terminated because the corresponding service is not available.</p>
<p>Note</p><ul><li>The termination occurred in system S4H with error code 503 and for the reason
Service cannot be reached.</li><li>The selected virtual host was 0.</li></ul>
<p>What can I do?</p><ul><li>Please select a valid URL.</li><li>If you do not yet have a user ID, contact
your system administrator.</li></ul><hr><p>SAP NetWeaver Application Server</p></body></html>
"""


@dataclass
class FaultConfig:
    latency_ms: int = 0
    latency_jitter_ms: int = 0
    error_503_ratio: float = 0.0
    error_503_format: Literal["html", "json"] = "html"
    hang_ratio: float = 0.0
    hang_seconds: float = 30.0
    after_commit_ratio: float = 0.0
    after_commit_mode: Literal["503", "hang"] = "503"
    services: list[str] | None = None
    seed: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class PreDecision:
    delay_s: float = 0.0
    fail_503: bool = False
    hang: bool = False


@dataclass
class FaultInjector:
    config: FaultConfig = field(default_factory=FaultConfig)
    _rng: random.Random = field(default_factory=random.Random)

    def configure(self, config: FaultConfig) -> None:
        self.config = config
        self._rng = random.Random(config.seed)

    def _applies(self, service: str) -> bool:
        return self.config.services is None or service in self.config.services

    def before(self, service: str) -> PreDecision:
        """Decide latency, 503 and hang for a request before it is processed."""
        cfg = self.config
        if not self._applies(service):
            return PreDecision()
        delay = cfg.latency_ms / 1000
        if cfg.latency_jitter_ms:
            delay += self._rng.uniform(0, cfg.latency_jitter_ms) / 1000
        fail = cfg.error_503_ratio > 0 and self._rng.random() < cfg.error_503_ratio
        hang = not fail and cfg.hang_ratio > 0 and self._rng.random() < cfg.hang_ratio
        return PreDecision(delay_s=delay, fail_503=fail, hang=hang)

    def after_commit(self, service: str) -> bool:
        """Decide whether a committed change loses its answer."""
        cfg = self.config
        return self._applies(service) and cfg.after_commit_ratio > 0 and self._rng.random() < cfg.after_commit_ratio
