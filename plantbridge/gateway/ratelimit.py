"""Rate limits at the door: a token bucket per API key (rate and burst per role, configurable), answered
429 with `Retry-After` (the edge agent honours it), and a bucket for key look-ups that miss the cache, so
a flood of random keys costs the store a bounded number of reads (failed look-ups are remembered in
`ApiKeys`' bounded negative cache).

The buckets live in the gateway process: with N gateways a key may send N times its rate in total.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Rate:
    """`per_second` requests on average, bursts of up to `burst`."""

    per_second: float
    burst: int


# Per role: plant systems and edge agents send streams (and catch up after an outage in batches of 500).
DEFAULT_RATES: dict[str, Rate] = {
    "plant-system": Rate(50.0, 200),
    "edge": Rate(50.0, 200),
    "erp": Rate(20.0, 100),
    "supervisor": Rate(10.0, 50),
}
# Look-ups of keys the gateway has not seen (or not recently): all callers together.
LOOKUP_RATE = Rate(50.0, 100)


@dataclass
class Bucket:
    rate: Rate
    tokens: float
    at: float

    def take(self, now: float) -> float:
        """0 when a token was taken; else the seconds until one is there."""
        self.tokens = min(float(self.rate.burst), self.tokens + (now - self.at) * self.rate.per_second)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate.per_second if self.rate.per_second > 0 else 3600.0


@dataclass
class RateLimiter:
    """Token buckets by name (an API key id, or the look-up bucket), at most `max_buckets` kept (LRU)."""

    rates: dict[str, Rate] = field(default_factory=lambda: dict(DEFAULT_RATES))
    lookup: Rate = LOOKUP_RATE
    max_buckets: int = 10_000
    clock: object = time.monotonic
    _buckets: OrderedDict[str, Bucket] = field(default_factory=OrderedDict)

    def _take(self, name: str, rate: Rate) -> float:
        now: float = self.clock()  # type: ignore[operator]
        bucket = self._buckets.get(name)
        if bucket is None or bucket.rate != rate:
            bucket = Bucket(rate, float(rate.burst), now)
            self._buckets[name] = bucket
            if len(self._buckets) > self.max_buckets:
                self._buckets.popitem(last=False)
        self._buckets.move_to_end(name)
        return bucket.take(now)

    def for_key(self, key_id: str, role: str) -> int:
        """0 when the key may call now; else the whole seconds for `Retry-After`."""
        rate = self.rates.get(role)
        if rate is None:
            return 0
        return _whole(self._take(f"key:{key_id}", rate))

    def for_lookup(self) -> int:
        return _whole(self._take("lookup", self.lookup))


def _whole(wait: float) -> int:
    return 0 if wait <= 0 else max(1, math.ceil(wait))


def parse_rates(spec: str) -> dict[str, Rate]:
    """`role=rate/burst,...` (e.g. `edge=100/400,erp=5/20`) over the defaults."""
    rates = dict(DEFAULT_RATES)
    for part in filter(None, (p.strip() for p in spec.split(","))):
        role, _, value = part.partition("=")
        per_second, _, burst = value.partition("/")
        rates[role.strip()] = Rate(float(per_second), int(burst or max(1, int(float(per_second)))))
    return rates
