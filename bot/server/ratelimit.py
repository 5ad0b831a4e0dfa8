"""Per-conversation token buckets: ``burst`` messages at once, then ``per_minute``.

:class:`RateLimiter` keeps its buckets in process (with several workers each worker has its
own, so a sender may get up to ``workers`` times the rate). :class:`RedisRateLimiter` keeps
them in Redis (``$BOT_REDIS_URL``, a client of :func:`bot.redis.redis_client`), shared by
every worker: one atomic script per message, and the in-process buckets whenever Redis fails
(see :class:`RedisFallback`)."""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bot.redis import REDIS_PREFIX, RedisOutage
from bot.server.settings import RateLimit

if TYPE_CHECKING:
    from redis.asyncio import Redis

logger = logging.getLogger(__name__)


class RateLimiter:
    def __init__(
        self, limit: RateLimit, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000
    ) -> None:
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


class RedisFallback(RedisOutage):
    """The outage of the rate limiter and the ``message_id`` memory (one per server
    process): for ``pause`` seconds after a failure callers skip Redis and use their
    per-worker state; logged once per outage (and at most every ``log_every`` seconds)."""

    def __init__(
        self,
        pause: float = 5.0,
        log_every: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            "rate limits and message_id retries are per worker",
            pause=pause,
            log_every=log_every,
            clock=clock,
            log=logger,
        )


# KEYS[1]: the bucket, a hash {t: tokens, s: stamp in seconds}.
# ARGV: burst, tokens per second, now in seconds ('' = Redis TIME), TTL in ms -> the wait in
# seconds as a string ("0" when allowed). The TTL is the time a bucket takes to fill up again,
# after which a missing bucket and a stored one mean the same: idle senders leave nothing.
_TAKE = """
local burst = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local state = redis.call('HMGET', KEYS[1], 't', 's')
local tokens = tonumber(state[1]) or burst
local stamp = tonumber(state[2]) or now
if now > stamp then
  tokens = math.min(burst, tokens + (now - stamp) * rate)
  stamp = now
end
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 't', string.format('%.17g', tokens), 's', string.format('%.17g', stamp))
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return string.format('%.17g', wait)
"""


class RedisRateLimiter:
    """The same buckets as :class:`RateLimiter`, in Redis and shared by every worker.

    ``clock``: seconds, passed to Redis (tests share a fake one between instances); ``None``
    uses the Redis server's clock, the same for every worker and host. When Redis fails the
    ``local`` limiter decides (per worker) and ``fallback`` logs it."""

    def __init__(
        self,
        limit: RateLimit,
        client: Redis,
        *,
        prefix: str = REDIS_PREFIX,
        local: RateLimiter | None = None,
        fallback: RedisFallback | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.limit = limit
        self.client = client
        self.prefix = f"{prefix}rate:"
        self.local = local or RateLimiter(limit)
        self.fallback = fallback or RedisFallback()
        self.clock = clock
        self._take: Any = client.register_script(_TAKE)
        rate = limit.per_minute / 60.0
        refill = limit.burst / rate if rate > 0 else 0.0
        self._args: tuple[str, str] = (repr(float(limit.burst)), repr(rate))
        self._ttl_ms = max(1000, math.ceil((refill + 1.0) * 1000))

    async def acquire(self, key: str) -> float:
        """Take one token: 0.0 when allowed, else the seconds until a token is available."""
        if not self.limit.enabled:
            return 0.0
        if self.fallback.usable:
            now = "" if self.clock is None else repr(float(self.clock()))
            try:
                wait = await self._take(
                    keys=[self.prefix + key], args=[*self._args, now, self._ttl_ms]
                )
                self.fallback.answered()
                return float(wait)
            except Exception as exc:  # never a 500 or a blocked customer because of Redis
                self.fallback.failed(exc)
        return self.local.acquire(key)
