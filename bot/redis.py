"""Redis connections: where the URL comes from and how a client is made, in one place.

``$BOT_REDIS_URL`` (:func:`redis_url`) selects Redis for everything several workers share (rate
limits, ``message_id`` retries, conversation locks, the handoff bus, WeChat claims and
tokens); every key starts with :data:`REDIS_PREFIX`. :func:`redis_client` makes a client
(``redis`` is imported here only, when a client is made); :func:`shared_client` hands out one
client per URL, options and event loop, closed together by :func:`close_shared_clients`.

:class:`RedisOutage` is how every user of Redis degrades instead of failing: after a failed
call it skips Redis for a short pause (the caller uses its in-process state), logs the
outage once when it starts and once when Redis answers again. What degrades and what
answers 503 instead is listed in docs/deployment.md ("What degrades").
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from redis.asyncio import Redis

REDIS_URL_ENV = "BOT_REDIS_URL"
REDIS_PREFIX = "bankbot:"  # the start of every key bankbot writes
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
# Fail fast: a Redis outage costs a turn milliseconds, not the client's default backoff.
FAST_TIMEOUT = 0.5
# Connections a client may have in use at once (redis-py's default is 100): every waiting
# turn polls its conversation's lock, so a busy worker needs more; beyond it a call fails
# (MaxConnectionsError) and the caller degrades as if Redis were down.
MAX_CONNECTIONS = 1024

_logger = logging.getLogger(__name__)

_SHARED: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple[Any, ...], Redis]] = (
    weakref.WeakKeyDictionary()
)


def redis_url(env: Mapping[str, str] | None = None) -> str | None:
    """``$BOT_REDIS_URL`` (of ``env``, default the process environment), None when unset or
    empty."""
    value = (os.environ if env is None else env).get(REDIS_URL_ENV, "")
    return value or None


def redis_client(
    url: str,
    *,
    timeout: float | None = FAST_TIMEOUT,
    retries: int | None = 1,
    decode_responses: bool = True,
) -> Redis:
    """A new asyncio client of ``url``, owned (and closed) by the caller.

    ``timeout``: seconds to connect and for each reply (None: wait as long as it takes);
    ``retries``: retries of a failed command without backoff (None: redis-py's default)."""
    import redis.asyncio as redis

    options: dict[str, Any] = {
        "decode_responses": decode_responses,
        "max_connections": MAX_CONNECTIONS,
    }
    if timeout is not None:
        options.update(socket_timeout=timeout, socket_connect_timeout=timeout)
    if retries is not None:
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        options["retry"] = Retry(NoBackoff(), retries)
    client: Redis = redis.from_url(url, **options)
    return client


def shared_client(
    url: str,
    *,
    timeout: float | None = FAST_TIMEOUT,
    retries: int | None = 1,
    decode_responses: bool = True,
) -> Redis:
    """The client of ``url`` with these options for the running event loop: made once, then
    the same for every caller on that loop. Callers do not close it; the server does, with
    :func:`close_shared_clients`. Without a running loop this is :func:`redis_client` (a
    client is bound to the loop that first uses it)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return redis_client(
            url, timeout=timeout, retries=retries, decode_responses=decode_responses
        )
    clients = _SHARED.setdefault(loop, {})
    key = (url, timeout, retries, decode_responses)
    client = clients.get(key)
    if client is None:
        client = clients[key] = redis_client(
            url, timeout=timeout, retries=retries, decode_responses=decode_responses
        )
    return client


async def close_shared_clients() -> int:
    """Close the running loop's shared clients (the next :func:`shared_client` makes new
    ones); how many were closed."""
    clients = _SHARED.pop(asyncio.get_running_loop(), {})
    for client in clients.values():
        await client.aclose()
    return len(clients)


def is_outage(exc: BaseException) -> bool:
    """Whether ``exc`` means Redis did not answer (connection refused, cut, timed out, a
    replica that cannot write...), as opposed to a bug in a command."""
    if isinstance(exc, OSError | TimeoutError):
        return True
    try:
        from redis import exceptions
    except ImportError:  # pragma: no cover - redis is a dependency
        return False
    return isinstance(
        exc,
        exceptions.ConnectionError
        | exceptions.TimeoutError
        | exceptions.BusyLoadingError
        | exceptions.ReadOnlyError
        | exceptions.ClusterDownError
        | exceptions.TryAgainError,
    )


class RedisOutage:
    """One use's view of Redis being down (``what`` degrades, e.g. "conversation locks are
    per process").

    :meth:`failed` after a failed call: for ``pause`` seconds :attr:`usable` is False, so
    callers go straight to their in-process state instead of waiting on Redis each time.
    The first failure of an outage is logged (ERROR, one line), again at most every
    ``log_every`` seconds while it lasts; :meth:`answered` after a call that worked ends the
    outage (one INFO line)."""

    def __init__(
        self,
        what: str = "shared state is per process",
        *,
        pause: float = 5.0,
        log_every: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        log: logging.Logger | None = None,
    ) -> None:
        self.what = what
        self.pause = pause
        self.log_every = log_every
        self.clock = clock
        self.log = log or _logger
        self._down_until = -math.inf
        self._logged = -math.inf
        self.down = False  # between a failure and the next call that worked
        self.failures = 0
        self.outages = 0

    @property
    def usable(self) -> bool:
        return self.clock() >= self._down_until

    def failed(self, exc: BaseException) -> None:
        now = self.clock()
        self.failures += 1
        self._down_until = now + self.pause
        if not self.down:
            self.down = True
            self.outages += 1
        if now - self._logged >= self.log_every:
            self._logged = now
            self.log.error(
                "Redis unavailable (%s: %s); %s until it answers again (%d failure(s) so far)",
                type(exc).__name__,
                exc,
                self.what,
                self.failures,
            )

    def answered(self) -> None:
        if self.down:
            self.down = False
            self._logged = -math.inf  # the next outage is logged at once
            self.log.info(
                "Redis answers again after %d failure(s); shared state again (%s until now)",
                self.failures,
                self.what,
            )
