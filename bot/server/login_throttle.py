"""Throttling of agent logins, per account and per address.

After ``max_failures`` failed logins of one account (``address_failures`` from one address:
an office behind one NAT address has several agents) further attempts wait: a lockout of
``lockout_seconds``, doubled with every further failure, at most ``max_lockout_seconds``.
While locked, even the right password answers 429 with ``Retry-After``; a successful login
forgets the account's failures (not the address's). Failures are forgotten ``window_seconds``
after the last one.

With ``$BOT_REDIS_URL`` (the client of :func:`bot.redis.shared_client`) the counts are shared
by every process; when Redis cannot be reached the throttle counts in this process (one log
line, until Redis answers again), so an outage neither opens the door nor locks everyone out.
"""

from __future__ import annotations

import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.redis import REDIS_PREFIX, redis_url, shared_client

if TYPE_CHECKING:
    from redis.asyncio import Redis

logger = logging.getLogger(__name__)

KEY_PREFIX = f"{REDIS_PREFIX}login:"


@dataclass
class _Failures:
    count: int
    last: float


class LoginThrottle:
    def __init__(
        self,
        *,
        max_failures: int = 5,
        address_failures: int = 20,
        lockout_seconds: float = 30.0,
        max_lockout_seconds: float = 3600.0,
        window_seconds: float = 900.0,
        redis_url: str | None = None,
        clock: Callable[[], float] = time.time,
        max_keys: int = 100_000,
    ) -> None:
        self.max_failures = max_failures
        self.address_failures = address_failures
        self.lockout_seconds = lockout_seconds
        self.max_lockout_seconds = max_lockout_seconds
        self.window_seconds = window_seconds
        self.redis_url = redis_url
        self.clock = clock  # wall time: shared with other processes through Redis
        self.max_keys = max_keys
        self._local: OrderedDict[str, _Failures] = OrderedDict()
        self._redis_down = False

    @classmethod
    def from_env(cls) -> LoginThrottle:
        """The default throttle, in Redis when ``$BOT_REDIS_URL`` is set."""
        return cls(redis_url=redis_url())

    # -- the rule ----------------------------------------------------------------------------

    def _keys(self, username: str, address: str | None) -> list[tuple[str, int]]:
        keys = [(f"account:{username.strip().casefold()[:64]}", self.max_failures)]
        if address:
            keys.append((f"address:{address[:64]}", self.address_failures))
        return keys

    def _wait(self, failures: _Failures | None, limit: int, now: float) -> float:
        if failures is None or failures.count < limit:
            return 0.0
        lockout = self.lockout_seconds * 2.0 ** min(failures.count - limit, 32)
        return max(0.0, failures.last + min(lockout, self.max_lockout_seconds) - now)

    def _ttl(self) -> int:
        return math.ceil(max(self.window_seconds, self.max_lockout_seconds))

    # -- in this process ---------------------------------------------------------------------

    def _get_local(self, key: str, now: float) -> _Failures | None:
        found = self._local.get(key)
        if found is not None and now - found.last > self._ttl():
            del self._local[key]
            return None
        return found

    def retry_after_local(self, username: str, address: str | None) -> float:
        now = self.clock()
        return max(
            self._wait(self._get_local(key, now), limit, now)
            for key, limit in self._keys(username, address)
        )

    def failed_local(self, username: str, address: str | None) -> None:
        now = self.clock()
        for key, _limit in self._keys(username, address):
            found = self._get_local(key, now)
            self._local.pop(key, None)
            self._local[key] = _Failures((found.count if found else 0) + 1, now)
        while len(self._local) > self.max_keys:
            self._local.popitem(last=False)

    def succeeded_local(self, username: str) -> None:
        self._local.pop(self._keys(username, None)[0][0], None)

    # -- shared through Redis ----------------------------------------------------------------

    def _redis(self) -> Redis | None:
        return shared_client(self.redis_url) if self.redis_url else None

    def _fell_back(self, exc: Exception) -> None:
        if not self._redis_down:
            logger.warning(
                "login throttle: Redis unreachable (%s); counting failed logins in-process "
                "until it answers again",
                exc,
            )
        self._redis_down = True

    def _recovered(self) -> None:
        if self._redis_down:
            logger.info("login throttle: Redis answers again; failed logins are shared")
        self._redis_down = False

    async def retry_after(self, username: str, address: str | None) -> float:
        """Seconds until ``username`` may try again from ``address`` (0: now)."""
        client = self._redis()
        if client is None:
            return self.retry_after_local(username, address)
        keys = self._keys(username, address)
        try:
            values = await client.mget(
                [f"{KEY_PREFIX}{k}:{field}" for k, _ in keys for field in ("n", "t")]
            )
        except Exception as exc:  # redis.RedisError, OSError, timeouts
            self._fell_back(exc)
            return self.retry_after_local(username, address)
        self._recovered()
        now = self.clock()
        waits = [self.retry_after_local(username, address)]
        for i, (_key, limit) in enumerate(keys):
            count, last = values[2 * i], values[2 * i + 1]
            if count is not None and last is not None:
                waits.append(self._wait(_Failures(int(count), float(last)), limit, now))
        return max(waits)

    async def failed(self, username: str, address: str | None) -> None:
        client = self._redis()
        if client is None or self._redis_down:
            self.failed_local(username, address)
            if client is None:
                return
        assert client is not None
        now, ttl = self.clock(), self._ttl()
        try:
            async with client.pipeline(transaction=True) as pipe:
                for key, _limit in self._keys(username, address):
                    pipe.incr(f"{KEY_PREFIX}{key}:n")
                    pipe.expire(f"{KEY_PREFIX}{key}:n", ttl)
                    pipe.set(f"{KEY_PREFIX}{key}:t", repr(now), ex=ttl)
                await pipe.execute()
        except Exception as exc:
            if not self._redis_down:
                self.failed_local(username, address)
            self._fell_back(exc)
            return
        self._recovered()

    async def succeeded(self, username: str) -> None:
        self.succeeded_local(username)
        client = self._redis()
        if client is None:
            return
        key = self._keys(username, None)[0][0]
        try:
            await client.delete(f"{KEY_PREFIX}{key}:n", f"{KEY_PREFIX}{key}:t")
        except Exception as exc:
            self._fell_back(exc)
