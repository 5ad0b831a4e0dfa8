"""Redis connections: where the URL comes from and how a client is made, in one place.

``$BOT_REDIS_URL`` (:func:`redis_url`) selects Redis for everything several workers share (rate
limits, ``message_id`` retries, conversation locks, the handoff bus, WeChat claims and
tokens); every key starts with :data:`REDIS_PREFIX`. :func:`redis_client` makes a client
(``redis`` is imported here only, when a client is made); :func:`shared_client` hands out one
client per URL, options and event loop, closed together by :func:`close_shared_clients`.
"""

from __future__ import annotations

import asyncio
import os
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from redis.asyncio import Redis

REDIS_URL_ENV = "BOT_REDIS_URL"
REDIS_PREFIX = "bankbot:"  # the start of every key bankbot writes
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
# Fail fast: a Redis outage costs a turn milliseconds, not the client's default backoff.
FAST_TIMEOUT = 0.5

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

    options: dict[str, Any] = {"decode_responses": decode_responses}
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
