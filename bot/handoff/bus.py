"""Live updates for the agent console and the customer's page: publish/subscribe by topic
(``conversation:<id>``, ``agent:<username>``, ``group:<name>``, ``queue``).

:class:`LocalBus` serves one process. Several server processes share a :class:`RedisBus`
(Redis pub/sub, ``handoff.redis_url`` or ``$BOT_REDIS_URL``), so an agent connected to one
worker sees a customer who writes to another.

Redis down does not stop the server: the bus starts without its subscription and keeps
trying; meanwhile updates reach this process's subscribers only (one log line per outage).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
from collections.abc import AsyncIterator, Iterable
from typing import Any

from bot.privacy import PSEUDONYM_KEY_ENV, PrivacyPolicy
from bot.redis import REDIS_PREFIX, RedisOutage, redis_client

logger = logging.getLogger(__name__)
Event = tuple[str, dict[str, Any]]  # (kind, data)
QUEUE_SIZE = 256
RECONNECT_SECONDS = 1.0  # between attempts to subscribe again after Redis dropped us


@functools.lru_cache(maxsize=4)
def _pseudonyms(pepper: str) -> PrivacyPolicy:
    return PrivacyPolicy(pseudonym_key=pepper.encode("utf-8"))


def _topic(topic: str) -> str:
    """``conversation:<id>`` under the stored key of the id (the handoff tables hold it so),
    whichever form the publisher or subscriber has."""
    if not topic.startswith("conversation:"):
        return topic
    policy = _pseudonyms(os.environ.get(PSEUDONYM_KEY_ENV, ""))
    return "conversation:" + policy.sender_key(topic.removeprefix("conversation:"))


class LocalBus:
    def __init__(self) -> None:
        self._subscribers: dict[str, set[asyncio.Queue[Event]]] = {}

    async def publish(self, topic: str, kind: str, data: dict[str, Any]) -> None:
        self.deliver(topic, kind, data)

    def deliver(self, topic: str, kind: str, data: dict[str, Any]) -> None:
        for queue in list(self._subscribers.get(_topic(topic), ())):
            if queue.full():  # a stalled client loses old updates, never blocks the server
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
            queue.put_nowait((kind, data))

    @contextlib.asynccontextmanager
    async def subscribe(self, topics: Iterable[str]) -> AsyncIterator[asyncio.Queue[Event]]:
        queue: asyncio.Queue[Event] = asyncio.Queue(QUEUE_SIZE)
        names = [_topic(t) for t in topics]
        for topic in names:
            self._subscribers.setdefault(topic, set()).add(queue)
        try:
            yield queue
        finally:
            for topic in names:
                subscribers = self._subscribers.get(topic)
                if subscribers is not None:
                    subscribers.discard(queue)
                    if not subscribers:
                        del self._subscribers[topic]

    async def close(self) -> None:
        self._subscribers.clear()


class RedisBus(LocalBus):
    """Publishes through Redis; one listener task per process fans messages out locally."""

    CHANNEL = f"{REDIS_PREFIX}handoff"

    def __init__(self, url: str) -> None:
        super().__init__()
        # no reply timeout: the pub/sub listener waits on its connection
        self._redis = redis_client(url, timeout=None, retries=None, decode_responses=False)
        # publishing fails fast: a cut connection costs a turn milliseconds
        self._publisher = redis_client(url, timeout=2.0, retries=1, decode_responses=False)
        self._task: asyncio.Task[None] | None = None
        self.outage = RedisOutage(
            "live updates reach this process's pages only", log=logger, pause=2.0
        )
        self.subscribed = asyncio.Event()

    async def _subscribe(self) -> Any:
        pubsub = self._redis.pubsub()
        try:
            async with asyncio.timeout(2.0):
                await pubsub.subscribe(self.CHANNEL)
        except BaseException:
            with contextlib.suppress(Exception):
                await pubsub.aclose()
            raise
        self.subscribed.set()
        return pubsub

    async def start(self) -> None:
        """Subscribe, or (Redis down) start without and keep trying in the background."""
        pubsub: Any = None
        try:
            pubsub = await self._subscribe()
        except Exception as exc:
            self.outage.failed(exc)

        async def listen() -> None:
            nonlocal pubsub
            while True:  # a dropped connection (restart, failover, proxy) is subscribed anew
                if pubsub is None:
                    await asyncio.sleep(RECONNECT_SECONDS)
                    try:
                        pubsub = await self._subscribe()
                        self.outage.answered()
                    except Exception as exc:
                        self.outage.failed(exc)
                        continue
                try:
                    async for message in pubsub.listen():
                        if message.get("type") != "message":
                            continue
                        try:
                            topic, kind, data = json.loads(message["data"])
                        except (ValueError, TypeError):
                            continue
                        self.deliver(topic, kind, data)
                except Exception as exc:
                    self.outage.failed(exc)
                self.subscribed.clear()
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                pubsub = None

        self._task = asyncio.create_task(listen())

    async def publish(self, topic: str, kind: str, data: dict[str, Any]) -> None:
        subscribed = self.subscribed.is_set()  # else Redis would not echo it back to us
        if self.outage.usable:
            try:
                await self._publisher.publish(
                    self.CHANNEL, json.dumps([topic, kind, data], ensure_ascii=False)
                )
                self.outage.answered()
                if subscribed:
                    return
            except Exception as exc:  # Redis down: this process's subscribers still get it
                self.outage.failed(exc)
        self.deliver(topic, kind, data)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self._redis.aclose()
        await self._publisher.aclose()
        await super().close()
