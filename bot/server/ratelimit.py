"""Per-conversation token buckets, in process: ``burst`` messages at once, then
``per_minute``. With several workers each worker keeps its own buckets (a sender may get up to
``workers`` times the rate); put a shared limiter in front for a hard cap."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from bot.server.settings import RateLimit


class RateLimiter:
    def __init__(self, limit: RateLimit, clock: Callable[[], float] = time.monotonic,
                 max_keys: int = 100_000) -> None:
        self.limit = limit
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, stamp

    def acquire(self, key: str) -> float:
        """Take one token: 0.0 when allowed, else the seconds until a token is available."""
        if not self.limit.enabled:
            return 0.0
        now = self.clock()
        rate = self.limit.per_minute / 60.0
        tokens, stamp = self._buckets.pop(key, (float(self.limit.burst), now))
        tokens = min(float(self.limit.burst), tokens + (now - stamp) * rate)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / rate
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > self.max_keys:  # the least recently seen go first
            self._buckets.popitem(last=False)
        return wait
