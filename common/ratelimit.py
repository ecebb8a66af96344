"""A token bucket per key (a kiosk id, a client address): ``burst`` at once, then ``rate_per_s``.

In memory: a restart refills every bucket, which forgives each key once. The clock is the caller's
(``now`` in seconds), so tests move it. Not thread-safe: one owner thread (the allocator's worker, an
event loop) per limiter."""

from __future__ import annotations

from collections import OrderedDict


class RateLimiter:
    #: most keys tracked at once; the least recently seen are forgotten first (a flood of new keys
    #: cannot grow the table without bound)
    MAX_KEYS = 50_000

    def __init__(self, burst: int, rate_per_s: float) -> None:
        if burst < 1 or rate_per_s <= 0:
            raise ValueError("a rate limit needs burst >= 1 and rate > 0")
        self.burst = float(burst)
        self.rate_per_s = rate_per_s
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def allow(self, key: str, now: float) -> bool:
        tokens, last = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + max(0.0, now - last) * self.rate_per_s)
        allowed = tokens >= 1.0
        self._buckets[key] = (tokens - 1.0 if allowed else tokens, max(now, last))
        while len(self._buckets) > self.MAX_KEYS:
            self._buckets.popitem(last=False)
        return allowed
