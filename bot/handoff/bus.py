"""Live updates for the agent console and the customer's page: publish/subscribe by topic
(``conversation:<id>``, ``agent:<username>``, ``group:<name>``, ``queue``).

:class:`LocalBus` serves one process. Several server processes share a :class:`RedisBus`
(Redis pub/sub, ``handoff.redis_url`` or ``$BOT_REDIS_URL``), so an agent connected to one
worker sees a customer who writes to another.
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
from bot.redis import REDIS_PREFIX, redis_client

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
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        pubsub = self._redis.pubsub()
        await pubsub.subscribe(self.CHANNEL)

        async def listen() -> None:
            nonlocal pubsub
            while True:  # a dropped connection (restart, failover, proxy) is subscribed anew
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
                    logger.error("Redis subscription lost (%s); subscribing again", exc)
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
                await asyncio.sleep(RECONNECT_SECONDS)
                try:
                    pubsub = self._redis.pubsub()
                    await pubsub.subscribe(self.CHANNEL)
                except Exception as exc:
                    logger.error("Redis subscription failed (%s); trying again", exc)

        self._task = asyncio.create_task(listen())

    async def publish(self, topic: str, kind: str, data: dict[str, Any]) -> None:
        try:
            await self._redis.publish(
                self.CHANNEL, json.dumps([topic, kind, data], ensure_ascii=False)
            )
        except Exception as exc:  # Redis down: this process's subscribers still get it
            logger.error("Redis publish failed (%s); delivering locally only", exc)
            self.deliver(topic, kind, data)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self._redis.aclose()
        await super().close()
