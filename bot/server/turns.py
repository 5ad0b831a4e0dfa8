"""Running customer turns for the channels: limits, metrics, retried messages, and in-flight
bookkeeping so that a stopping server lets the turns it has started finish (graceful shutdown).

With ``$BOT_REDIS_URL`` the rate limiter and the memory of ``metadata.message_id`` are shared
by every worker through Redis; without it (or while Redis fails) they are per worker.

Exactly once: a message's claim lives a few seconds (``CLAIM_SECONDS``) and is renewed by a
heartbeat while its turn runs, so the claim of a worker that died expires quickly; the
retry that takes it over (and every retry while Redis is down) first looks in the tracker
store, under the conversation's lock, for the message: a turn that was stored is answered
with its stored replies, never run twice."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from bot.agent import Agent
from bot.core.actions.responses import bot_message
from bot.core.messages import UserMessage
from bot.redis import REDIS_PREFIX, redis_client
from bot.redis import redis_url as redis_url_of_env
from bot.server.errors import ApiError
from bot.server.metrics import BotMetrics
from bot.server.ratelimit import RateLimiter, RedisFallback, RedisRateLimiter
from bot.server.settings import ServerSettings

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from bot.handoff.service import HandoffService

logger = logging.getLogger(__name__)
SEEN_MESSAGE_IDS = 10_000  # replies kept for retried messages (per process)
REPLIES_SECONDS = 600.0  # how long Redis keeps a message's replies for retries
CLAIM_SECONDS = 6.0  # a running turn's claim, renewed every third of it while the turn runs
WAIT_SECONDS = 30.0  # a retry waits this long for a live first attempt, then gets a 503
Replies = list[dict[str, Any]]
Replay = Callable[[], Awaitable[Replies | None]]


# KEYS[1]: a message's key, KEYS[2]: its "tried" marker. ARGV: claim token, claim lifetime in
# ms, marker lifetime in ms -> nil when this caller has just claimed a new message, "!" when
# it has claimed a message that an earlier attempt had claimed (it failed or its worker
# died), else the key's value (another claim, or the stored replies).
_CLAIM = """
local value = redis.call('GET', KEYS[1])
if value then return value end
local tried = redis.call('EXISTS', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SET', KEYS[2], '1', 'PX', ARGV[3])
if tried == 1 then return '!' end
return false
"""

# KEYS[1]: a message's key. ARGV: claim token, claim lifetime in ms -> 1 renewed, 0 not ours.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

# KEYS[1]: a message's key. ARGV: claim token -> 1 when the claim was still ours and is gone.
_FORGET = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

CLAIMED = "~"  # claims start with it; stored replies are a JSON list ("[...")


class SharedReplies:
    """The memory of ``metadata.message_id`` across workers: the first worker to see a
    (conversation, message_id) claims it in Redis (``claim`` seconds, renewed while the turn
    runs, so a crashed worker's claim frees itself within seconds) and stores its replies
    (JSON, ``keep`` seconds); a retry on any worker waits for them (at most ``wait``
    seconds, then a 503). A failed attempt drops its claim, so the next attempt runs the turn;
    an attempt that takes over a claim asks ``replay`` first (the stored turn's replies)."""

    def __init__(
        self,
        client: Redis,
        *,
        prefix: str = REDIS_PREFIX,
        fallback: RedisFallback | None = None,
        keep: float = REPLIES_SECONDS,
        claim: float = CLAIM_SECONDS,
        wait: float = WAIT_SECONDS,
    ) -> None:
        self.client = client
        self.prefix = f"{prefix}message:"
        self.fallback = fallback or RedisFallback()
        self.keep_ms = max(1, round(keep * 1000))
        self.claim_ms = max(1, round(claim * 1000))
        self.wait = wait
        self._claim: Any = client.register_script(_CLAIM)
        self._renew: Any = client.register_script(_RENEW)
        self._forget: Any = client.register_script(_FORGET)
        self.takeovers = 0  # claims taken over from an earlier attempt

    def key(self, conversation_id: str, message_id: str) -> str:
        return f"{self.prefix}{len(conversation_id)}:{conversation_id}:{message_id}"

    async def run_once(
        self,
        conversation_id: str,
        message_id: str,
        turn: Callable[[], Awaitable[Replies]],
        replay: Replay | None = None,
    ) -> Replies:
        """``turn()``'s replies, or those of whichever worker ran this message first. Without
        Redis, ``replay()`` (when given) and then the turn (the caller's per-worker memory
        still applies)."""
        if not self.fallback.usable:
            return await _replayed_or_run(replay, turn)
        key = self.key(conversation_id, message_id)
        token = CLAIMED + uuid.uuid4().hex
        try:
            stored, taken_over = await self._claim_or_wait(key, token, conversation_id, message_id)
        except ApiError:
            raise
        except Exception as exc:  # Redis down: run it here, remembered per worker
            self.fallback.failed(exc)
            return await _replayed_or_run(replay, turn)
        self.fallback.answered()
        if stored is not None:
            return stored
        heartbeat = asyncio.create_task(self._keep_claim(key, token))
        try:
            if taken_over:
                self.takeovers += 1
                replies = await _replayed_or_run(replay, turn)
            else:
                replies = await turn()
        except BaseException:
            heartbeat.cancel()
            try:  # the retry runs the turn again (else it waits until the claim expires)
                await asyncio.shield(self._forget(keys=[key], args=[token]))
            except Exception as exc:
                self.fallback.failed(exc)
            raise
        heartbeat.cancel()
        try:
            await self.client.set(key, json.dumps(replies, ensure_ascii=False), px=self.keep_ms)
        except Exception as exc:  # the customer has the replies; a retry replays the store
            self.fallback.failed(exc)
        return replies

    async def _keep_claim(self, key: str, token: str) -> None:
        """The heartbeat of a running turn's claim."""
        while True:
            await asyncio.sleep(self.claim_ms / 3000)
            try:
                if not await self._renew(keys=[key], args=[token, self.claim_ms]):
                    logger.warning("claim %s expired while its turn ran", key)
                    return
            except Exception as exc:  # a blip: the next beat tries again
                self.fallback.failed(exc)

    async def _claim_or_wait(
        self, key: str, token: str, conversation_id: str, message_id: str
    ) -> tuple[Replies | None, bool]:
        """(None, taken_over) once this worker holds the claim (``taken_over``: an earlier
        attempt had it); (replies, False) when the first attempt (on any worker) finished; a
        503 when it still runs after ``wait`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait
        pause = 0.01
        tried = f"{key}:tried"
        while True:
            value = await self._claim(keys=[key, tried], args=[token, self.claim_ms, self.keep_ms])
            if value is None:
                return None, False
            if isinstance(value, bytes):
                value = value.decode("utf-8")
            if value == "!":
                return None, True
            if not value.startswith(CLAIMED):
                replies: Replies = json.loads(value)
                return replies, False
            if loop.time() >= deadline:
                raise ApiError(
                    503,
                    f"message {message_id!r} of conversation "
                    f"{conversation_id!r} is still being processed; "
                    "try again shortly",
                    {"Retry-After": "1"},
                )
            await asyncio.sleep(pause)
            pause = min(pause * 1.5, 0.25)


async def _replayed_or_run(
    replay: Replay | None, turn: Callable[[], Awaitable[Replies]]
) -> Replies:
    if replay is not None:
        replies = await replay()
        if replies is not None:
            return replies
    return await turn()


def _forget_task(tasks: set[asyncio.Task[Replies]]) -> Callable[[asyncio.Task[Replies]], None]:
    def forget(task: asyncio.Task[Replies]) -> None:
        tasks.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved: a hung-up client's failed turn is not "never retrieved"

    return forget


def stored_replies(events: list[dict[str, Any]], sender_id: str, message_id: str) -> Replies | None:
    """The replies of the stored turn of ``message_id`` (the bot messages after its user
    event, up to the next user event), None when the message is not stored."""
    found: Replies | None = None
    for event in events:
        kind = event.get("event")
        if kind == "user":
            if found is not None:
                break
            metadata = event.get("metadata") or {}
            if message_id in (event.get("message_id"), metadata.get("message_id")):
                found = []
        elif kind == "bot" and found is not None:
            found.append(bot_message(event, sender_id))
    return found


class TurnRunner:
    """Runs the channels' turns. ``redis_url`` (default ``$BOT_REDIS_URL``; ``""`` for none)
    shares the rate limiter and the retry memory between workers."""

    def __init__(
        self,
        agent: Agent,
        settings: ServerSettings,
        metrics: BotMetrics,
        handoff: HandoffService | None = None,
        *,
        redis_url: str | None = None,
        redis_prefix: str = REDIS_PREFIX,
    ) -> None:
        self.agent = agent
        self.settings = settings
        self.metrics = metrics
        self.handoff = handoff
        if handoff is not None:  # handing off is a stage of every customer turn
            agent.processor.add_stage(handoff.stage)
        # (conversation, metadata.message_id) -> its replies (None: it failed): a retried
        # message, even one arriving while the first attempt runs, is processed once.
        self._seen: OrderedDict[tuple[str, str], asyncio.Future[list[dict[str, Any]] | None]] = (
            OrderedDict()
        )
        self.limiter = RateLimiter(settings.rate_limit)
        url = (redis_url_of_env() or "") if redis_url is None else redis_url
        self.redis: Redis | None = redis_client(url) if url else None
        self.shared_limiter: RedisRateLimiter | None = None
        self.shared_replies: SharedReplies | None = None
        if self.redis is not None:
            fallback = RedisFallback()  # one outage, logged once, for both
            self.shared_limiter = RedisRateLimiter(
                settings.rate_limit,
                self.redis,
                prefix=redis_prefix,
                local=self.limiter,
                fallback=fallback,
            )
            self.shared_replies = SharedReplies(self.redis, prefix=redis_prefix, fallback=fallback)
        self.replays = 0  # retries answered from the tracker store
        self._detached: set[asyncio.Task[Replies]] = set()  # turns whose client hung up
        self.in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def check_rate(self, conversation_id: str) -> None:
        if self.shared_limiter is not None:
            wait = await self.shared_limiter.acquire(conversation_id)
        else:
            wait = self.limiter.acquire(conversation_id)
        if wait > 0:
            raise ApiError(
                429,
                f"too many messages in conversation {conversation_id!r}; wait {wait:.1f} s",
                {"Retry-After": str(max(1, math.ceil(wait)))},
            )

    async def run(
        self, message: UserMessage, parse: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """One turn; the bot messages in REST shape. A message over the length limit is not
        processed: the customer is told, and the tracker keeps a truncated copy. A message
        whose ``metadata.message_id`` was seen already gets the same replies again (by any
        worker, with Redis)."""
        message_id = message.metadata.get("message_id")
        if not (isinstance(message_id, str) and 0 < len(message_id) <= 128):
            return await self._run(message, parse)
        key = (message.sender_id, message_id)
        while key in self._seen:  # a retry, maybe while the first attempt still runs
            replies = await asyncio.shield(self._seen[key])
            if replies is not None:
                return replies
            # the first attempt failed and forgot the key: this one runs the turn
        done: asyncio.Future[list[dict[str, Any]] | None] = (
            asyncio.get_running_loop().create_future()
        )
        self._seen[key] = done
        while len(self._seen) > SEEN_MESSAGE_IDS:
            self._seen.popitem(last=False)
        # The turn is its own task: a client that hangs up (a timeout, a dropped connection)
        # cancels its request, not the turn, whose replies then wait for the client's retry
        # instead of being thrown away and computed again.
        task = asyncio.get_running_loop().create_task(
            self._remembered(message, parse, message_id, key, done)
        )
        self._detached.add(task)
        task.add_done_callback(_forget_task(self._detached))
        return await asyncio.shield(task)

    async def _remembered(
        self,
        message: UserMessage,
        parse: dict[str, Any] | None,
        message_id: str,
        key: tuple[str, str],
        done: asyncio.Future[list[dict[str, Any]] | None],
    ) -> list[dict[str, Any]]:
        try:
            if self.shared_replies is None:
                replies = await self._run(message, parse)
            else:
                replies = await self.shared_replies.run_once(
                    message.sender_id,
                    message_id,
                    lambda: self._run(message, parse),
                    lambda: self._replay(message.sender_id, message_id),
                )
        except BaseException:
            self._seen.pop(key, None)
            done.set_result(None)
            raise
        done.set_result(replies)
        return replies

    async def _replay(self, sender_id: str, message_id: str) -> Replies | None:
        """The stored turn's replies of a message an earlier attempt may have run (its worker
        died before it could answer, or Redis was down): read under the conversation's lock,
        so an attempt still running finishes first."""
        processor = self.agent.processor
        async with processor.lock(sender_id):
            events = await processor.tracker_store.events(sender_id)
        replies = stored_replies(events, sender_id, message_id)
        if replies is not None:
            self.replays += 1
            logger.info("message %r was stored already: its replies replayed", message_id)
        return replies

    @contextlib.asynccontextmanager
    async def in_flight_scope(self) -> AsyncIterator[None]:
        """Counts work that a stopping server waits for (turns, HTTP API actions)."""
        self.in_flight += 1
        self._idle.clear()
        try:
            yield
        finally:
            self.in_flight -= 1
            if self.in_flight == 0:
                self._idle.set()

    async def _run(
        self, message: UserMessage, parse: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        await self.check_rate(message.sender_id)
        async with self.in_flight_scope():
            if len(message.text) > self.settings.max_message_chars:
                return await self._too_long(message)
            started = time.perf_counter()
            if parse is None:
                result = await self.agent.handle(message)
            else:  # an intent triggered through the HTTP API
                result = await self.agent.processor.handle(message, parse)
            self.metrics.observe_turn(message.input_channel, time.perf_counter() - started, result)
            return result.messages

    async def _too_long(self, message: UserMessage) -> list[dict[str, Any]]:
        result = await self.agent.processor.refuse_too_long(
            message, self.settings.max_message_chars
        )
        self.metrics.errors.labels("message_too_long").inc()
        return result.messages

    async def drain(self, timeout: float) -> bool:
        """Wait until no turn is in flight; False when ``timeout`` ran out first."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        """Close the Redis client, if any."""
        if self.redis is not None:
            await self.redis.aclose()
