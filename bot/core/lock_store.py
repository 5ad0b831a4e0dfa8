"""Per-conversation locks: one message of a conversation at a time, in arrival order (FIFO).

Different conversations never wait for each other. :class:`InMemoryLockStore` serves one
process; :class:`RedisLockStore` serves several processes with a ticket lock in the style of
Rasa's ``TicketLock``: each caller takes a numbered ticket (``INCR``) and waits until no live
ticket is ahead of it. Tickets carry a lifetime (10 s) that their holder keeps renewing, so a
process that crashes stops blocking the conversation once its tickets expire.

When Redis does not answer, :class:`RedisLockStore` degrades to in-process locks (one log
line per outage, :class:`~bot.redis.RedisOutage`): turns of one conversation stay in order
within each process, and the tracker store keeps appends of several processes dense.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any

from bot.errors import BotError, ConfigError
from bot.redis import DEFAULT_REDIS_URL, RedisOutage, is_outage, redis_client, redis_url

if TYPE_CHECKING:
    from redis.asyncio import Redis

logger = logging.getLogger(__name__)

DEFAULT_KEY_PREFIX = "bankbot:lock:"
LOCK_LIFETIME = 10.0  # seconds a dead process's ticket keeps blocking its conversation
REDIS_TIMEOUT = 2.0  # seconds to connect and per reply: a cut connection fails, never hangs


class LockTimeoutError(BotError):
    """Waited ``wait_timeout`` seconds for a conversation's lock without getting it."""

    def __init__(self, conversation_id: str, wait_timeout: float) -> None:
        super().__init__(
            f"conversation {conversation_id!r} is busy: no turn on its lock after "
            f"{wait_timeout:g} s (an earlier message is still being processed)"
        )
        self.conversation_id = conversation_id
        self.wait_timeout = wait_timeout


class LockStore(ABC):
    """Hands out per-conversation locks. Use as ``async with store.lock(sender_id): ...``."""

    @abstractmethod
    def lock(
        self, conversation_id: str, wait_timeout: float = 60.0
    ) -> AbstractAsyncContextManager[None]:
        """Wait (FIFO) for the conversation's turn; raise :class:`LockTimeoutError` after
        ``wait_timeout`` seconds."""

    @abstractmethod
    async def queue_length(self, conversation_id: str) -> int:
        """The holder plus the waiters of the conversation's lock (0 when idle)."""

    async def close(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Release connections."""


class _Queue:
    __slots__ = ("held", "waiters")

    def __init__(self) -> None:
        self.held = False
        self.waiters: deque[asyncio.Future[None]] = deque()


class InMemoryLockStore(LockStore):
    """Locks for one process (one event loop). The lock passes directly from the holder to the
    longest waiter, so nobody can overtake; a conversation's entry is dropped once idle."""

    def __init__(self) -> None:
        self._queues: dict[str, _Queue] = {}

    def __len__(self) -> int:
        """Conversations with a holder or waiters; idle ones take no memory."""
        return len(self._queues)

    async def queue_length(self, conversation_id: str) -> int:
        queue = self._queues.get(conversation_id)
        return 0 if queue is None else int(queue.held) + len(queue.waiters)

    def lock(
        self, conversation_id: str, wait_timeout: float = 60.0
    ) -> AbstractAsyncContextManager[None]:
        return self._lock(conversation_id, wait_timeout)

    @asynccontextmanager
    async def _lock(self, conversation_id: str, wait_timeout: float) -> AsyncIterator[None]:
        await self._acquire(conversation_id, wait_timeout)
        try:
            yield
        finally:
            self._release(conversation_id)

    async def _acquire(self, conversation_id: str, wait_timeout: float) -> None:
        queue = self._queues.setdefault(conversation_id, _Queue())
        if not queue.held and not queue.waiters:
            queue.held = True
            return
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        queue.waiters.append(turn)
        try:
            async with asyncio.timeout(wait_timeout):
                await turn
        except BaseException as exc:
            if turn.done() and not turn.cancelled():
                self._release(conversation_id)  # handed over just as we gave up: pass it on
            else:
                with contextlib.suppress(ValueError):  # a release may have skipped it already
                    queue.waiters.remove(turn)
                self._forget_if_idle(conversation_id, queue)
            if isinstance(exc, TimeoutError):
                raise LockTimeoutError(conversation_id, wait_timeout) from None
            raise

    def _release(self, conversation_id: str) -> None:
        queue = self._queues[conversation_id]
        while queue.waiters:
            turn = queue.waiters.popleft()
            if not turn.done():
                turn.set_result(None)  # ``held`` stays True: ownership moves to that waiter
                return
        queue.held = False
        self._forget_if_idle(conversation_id, queue)

    def _forget_if_idle(self, conversation_id: str, queue: _Queue) -> None:
        if not queue.held and not queue.waiters and self._queues.get(conversation_id) is queue:
            del self._queues[conversation_id]


# Redis keys of one conversation (KEYS[1..3]): the ticket counter, a sorted set of tickets
# (score = ticket number, member = "number:uuid") and a hash member -> expiry (server ms).
# All three carry a TTL of two lifetimes, so idle conversations leave nothing behind.
_LUA_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lifetime = tonumber(ARGV[2])
local function keep(member)
  redis.call('HSET', KEYS[3], member, now + lifetime)
  for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], 2 * lifetime) end
end
"""

# ARGV: token, lifetime_ms -> the new ticket's member.
_TAKE = (
    _LUA_NOW
    + """
local number = redis.call('INCR', KEYS[1])
local member = number .. ':' .. ARGV[1]
redis.call('ZADD', KEYS[2], number, member)
keep(member)
return member
"""
)

# ARGV: member, lifetime_ms -> 0 your turn, n > 0 still waiting, -1 ticket gone (expired).
# Renews the caller's ticket and drops expired tickets ahead of it.
_POLL = (
    _LUA_NOW
    + """
local rank = redis.call('ZRANK', KEYS[2], ARGV[1])
if not rank then return -1 end
keep(ARGV[1])
if rank == 0 then return 0 end
for _, member in ipairs(redis.call('ZRANGE', KEYS[2], 0, rank - 1)) do
  local expiry = tonumber(redis.call('HGET', KEYS[3], member) or '0')
  if expiry >= now then return rank end
  redis.call('ZREM', KEYS[2], member)
  redis.call('HDEL', KEYS[3], member)
end
return 0
"""
)

# ARGV: member, lifetime_ms -> 1 renewed, 0 the ticket had expired.
_RENEW = (
    _LUA_NOW
    + """
if not redis.call('ZSCORE', KEYS[2], ARGV[1]) then return 0 end
keep(ARGV[1])
return 1
"""
)

# ARGV: member -> 1 released, 0 the ticket had already expired.
_RELEASE = """
local removed = redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
if redis.call('ZCARD', KEYS[2]) == 0 then redis.call('DEL', KEYS[1], KEYS[2], KEYS[3]) end
return removed
"""


class RedisLockStore(LockStore):
    """FIFO ticket locks in Redis, shared by every server process using the same ``key_prefix``.

    ``lock_lifetime``: seconds after which a ticket that nobody renews (its process died) stops
    blocking; a live holder renews every third of it. ``poll_interval``: how often a waiter asks
    whether it is its turn. While Redis fails (``outage``), locks are in-process.
    """

    def __init__(
        self,
        url: str = DEFAULT_REDIS_URL,
        *,
        key_prefix: str = DEFAULT_KEY_PREFIX,
        lock_lifetime: float = LOCK_LIFETIME,
        poll_interval: float = 0.02,
        client: Redis | None = None,
        outage: RedisOutage | None = None,
    ) -> None:
        if lock_lifetime <= 0 or poll_interval <= 0:
            raise ConfigError("lock_lifetime and poll_interval must be positive")
        if poll_interval * 5 > lock_lifetime:
            raise ConfigError("poll_interval must be well below lock_lifetime (at most a fifth)")
        self.url = url
        self.key_prefix = key_prefix
        self.lock_lifetime = lock_lifetime
        self.poll_interval = poll_interval
        # a waiter polls, a holder renews in the background: each call may fail fast
        self._client: Redis = client or redis_client(url, timeout=REDIS_TIMEOUT, retries=1)
        self.local = InMemoryLockStore()  # while Redis is down
        self.outage = outage or RedisOutage(
            "conversation locks are per process", log=logger, pause=2.0
        )
        self._take = self._client.register_script(_TAKE)
        self._poll = self._client.register_script(_POLL)
        self._renew = self._client.register_script(_RENEW)
        self._release = self._client.register_script(_RELEASE)

    @property
    def client(self) -> Redis:
        return self._client

    def keys(self, conversation_id: str) -> list[str]:
        """Counter, queue and expiry keys; ``{id}`` keeps them in one Redis Cluster slot."""
        base = f"{self.key_prefix}{{{conversation_id}}}"
        return [f"{base}:ticket", f"{base}:queue", f"{base}:expiry"]

    @property
    def _lifetime_ms(self) -> int:
        return max(1, int(self.lock_lifetime * 1000))

    async def queue_length(self, conversation_id: str) -> int:
        local = await self.local.queue_length(conversation_id)
        if not self.outage.usable:
            return local
        try:
            shared = int(await self._client.zcard(self.keys(conversation_id)[1]))
        except Exception as exc:
            if not is_outage(exc):
                raise
            self.outage.failed(exc)
            return local
        return shared + local

    def lock(
        self, conversation_id: str, wait_timeout: float = 60.0
    ) -> AbstractAsyncContextManager[None]:
        return self._lock(conversation_id, wait_timeout)

    @asynccontextmanager
    async def _lock(self, conversation_id: str, wait_timeout: float) -> AsyncIterator[None]:
        keys = self.keys(conversation_id)
        member: str | None = None
        if self.outage.usable:
            try:
                member = await self._acquire(conversation_id, keys, wait_timeout)
                self.outage.answered()
            except Exception as exc:
                if not is_outage(exc):
                    raise
                self.outage.failed(exc)
        if member is None:  # Redis down: this process's own lock
            async with self.local.lock(conversation_id, wait_timeout):
                yield
            return
        renewal = asyncio.create_task(self._keep_alive(conversation_id, keys, member))
        try:
            yield
        finally:
            renewal.cancel()
            try:
                released = await asyncio.shield(self._release(keys=keys, args=[member]))
            except Exception as exc:  # the work is done; the ticket expires by itself
                if is_outage(exc):
                    self.outage.failed(exc)
                logger.debug(
                    "could not release lock on %r (%s); it frees itself within %g s",
                    conversation_id,
                    exc,
                    self.lock_lifetime,
                )
                released = 1
            if not released:
                logger.warning(
                    "lock on conversation %r expired while held (longer than %g s without "
                    "renewal); another process may have entered",
                    conversation_id,
                    self.lock_lifetime,
                )

    async def _acquire(self, conversation_id: str, keys: list[str], wait_timeout: float) -> str:
        member = str(await self._take(keys=keys, args=[uuid.uuid4().hex, self._lifetime_ms]))
        try:
            async with asyncio.timeout(wait_timeout):
                while True:
                    ahead = int(await self._poll(keys=keys, args=[member, self._lifetime_ms]))
                    if ahead == 0:
                        return member
                    if ahead < 0:  # we stalled longer than a lifetime: queue again
                        logger.warning("ticket for %r expired while waiting", conversation_id)
                        member = str(
                            await self._take(keys=keys, args=[uuid.uuid4().hex, self._lifetime_ms])
                        )
                        continue
                    await asyncio.sleep(self.poll_interval)
        except BaseException as exc:
            with contextlib.suppress(Exception):  # else the ticket simply expires
                await asyncio.shield(self._release(keys=keys, args=[member]))
            if isinstance(exc, TimeoutError):
                raise LockTimeoutError(conversation_id, wait_timeout) from None
            raise

    async def _keep_alive(self, conversation_id: str, keys: list[str], member: str) -> None:
        while True:
            await asyncio.sleep(self.lock_lifetime / 3)
            try:
                if not await self._renew(keys=keys, args=[member, self._lifetime_ms]):
                    logger.error("lock on conversation %r expired while held", conversation_id)
                    return
            except Exception as exc:  # Redis unreachable for a moment: try again next round
                if is_outage(exc):
                    self.outage.failed(exc)
                logger.debug("could not renew lock on %r: %s", conversation_id, exc)

    async def close(self) -> None:
        await self._client.aclose()


# --- configuration ------------------------------------------------------------------------

_REDIS_OPTIONS = {"key_prefix": str, "lock_lifetime": float, "poll_interval": float}
_REDIS_URL_KEYS = {"url", "host", "port", "db", "username", "password", "use_ssl"}


def _redis_url(cfg: Mapping[str, Any]) -> str:
    url = cfg.get("url") or cfg.get("host")
    if isinstance(url, str) and "://" in url:
        return url
    if not url:
        return DEFAULT_REDIS_URL
    # Rasa's form: url is the host, with port / db / username / password / use_ssl beside it.
    from urllib.parse import quote

    scheme = "rediss" if cfg.get("use_ssl") else "redis"
    auth = ""
    if cfg.get("password"):
        auth = f"{quote(str(cfg.get('username') or ''), safe='')}:"
        auth += f"{quote(str(cfg['password']), safe='')}@"
    return f"{scheme}://{auth}{url}:{int(cfg.get('port') or 6379)}/{int(cfg.get('db') or 0)}"


def create_lock_store(config: Mapping[str, Any] | None) -> LockStore:
    """The store of ``endpoints.yml``'s ``lock_store:`` section.

    ``{"type": "redis", "url": "redis://host:6379/0", "key_prefix": ...}`` or ``{"type":
    "memory"}``. ``$BOT_REDIS_URL`` overrides the URL; without a section, it selects Redis,
    else the in-memory store (one server process).
    """
    cfg = dict(config or {})
    env_url = redis_url()
    default = "redis" if env_url else "memory"
    kind = str(cfg.pop("type", default)).lower().replace("_", "")
    if kind in {"memory", "inmemory", "inmemorylockstore"}:
        return InMemoryLockStore()
    if kind not in {"redis", "redislockstore"}:
        raise ConfigError(f"lock_store type {kind!r} is unknown; use 'redis' or 'memory'")
    unknown = set(cfg) - set(_REDIS_OPTIONS) - _REDIS_URL_KEYS
    if unknown:
        raise ConfigError(
            f"lock_store: unknown option(s) {sorted(unknown)}; "
            f"known: {sorted(set(_REDIS_OPTIONS) | _REDIS_URL_KEYS)}"
        )
    options: dict[str, Any] = {}
    for key, kind_of in _REDIS_OPTIONS.items():
        if key in cfg:
            try:
                options[key] = kind_of(cfg[key])
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"lock_store.{key}: {exc}") from exc
    return RedisLockStore(env_url or _redis_url(cfg), **options)
