"""Running customer turns for the channels: limits, metrics, and in-flight bookkeeping so that
a stopping server lets the turns it has started finish (graceful shutdown)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from bot.core import events as ev
from bot.core.actions.responses import bot_message
from bot.core.agent import Agent
from bot.core.processor import UserMessage
from bot.core.tracker import LISTEN
from bot.server.errors import ApiError
from bot.server.metrics import BotMetrics
from bot.server.ratelimit import RateLimiter
from bot.server.settings import ServerSettings

if TYPE_CHECKING:
    from bot.handoff.service import HandoffService

logger = logging.getLogger(__name__)
SEEN_MESSAGE_IDS = 10_000  # replies kept for retried messages (per process)

TOO_LONG_TEXT = (
    "您的消息有{length}字，超过了{limit}字的上限，我没有处理这条消息。"
    "请精简后分几条发送，或点击“转人工”由人工客服为您服务。"
)
HUMAN_BUTTON = {"title": "转人工", "payload": "/request_human"}


class TurnRunner:
    def __init__(self, agent: Agent, settings: ServerSettings, metrics: BotMetrics,
                 handoff: HandoffService | None = None) -> None:
        self.agent = agent
        self.settings = settings
        self.metrics = metrics
        self.handoff = handoff
        # (conversation, metadata.message_id) -> its replies (None: it failed): a retried
        # message, even one arriving while the first attempt runs, is processed once.
        self._seen: OrderedDict[tuple[str, str],
                                asyncio.Future[list[dict[str, Any]] | None]] = OrderedDict()
        self.limiter = RateLimiter(settings.rate_limit)
        self.in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def check_rate(self, conversation_id: str) -> None:
        wait = self.limiter.acquire(conversation_id)
        if wait > 0:
            raise ApiError(429, f"too many messages in conversation {conversation_id!r}; "
                                f"wait {wait:.1f} s", {"Retry-After": str(max(1, round(wait)))})

    async def run(self, message: UserMessage) -> list[dict[str, Any]]:
        """One turn; the bot messages in REST shape. A message over the length limit is not
        processed: the customer is told, and the tracker keeps a truncated copy. A message
        whose ``metadata.message_id`` was seen already gets the same replies again."""
        message_id = message.metadata.get("message_id")
        if not (isinstance(message_id, str) and 0 < len(message_id) <= 128):
            return await self._run(message)
        key = (message.sender_id, message_id)
        while key in self._seen:  # a retry, maybe while the first attempt still runs
            replies = await asyncio.shield(self._seen[key])
            if replies is not None:
                return replies
            # the first attempt failed and forgot the key: this one runs the turn
        done: asyncio.Future[list[dict[str, Any]] | None] = (
            asyncio.get_running_loop().create_future())
        self._seen[key] = done
        while len(self._seen) > SEEN_MESSAGE_IDS:
            self._seen.popitem(last=False)
        try:
            replies = await self._run(message)
        except BaseException:
            self._seen.pop(key, None)
            done.set_result(None)
            raise
        done.set_result(replies)
        return replies

    async def _run(self, message: UserMessage) -> list[dict[str, Any]]:
        self.check_rate(message.sender_id)
        self.in_flight += 1
        self._idle.clear()
        try:
            if len(message.text) > self.settings.max_message_chars:
                return await self._too_long(message)
            started = time.perf_counter()
            result = await self.agent.handle(message)
            messages = result.messages
            if self.handoff is not None:
                try:
                    messages = messages + await self.handoff.after_turn(message, result)
                except Exception:  # the turn is stored; the customer still gets its replies
                    logger.exception("handoff after the turn of %s failed", message.sender_id)
            self.metrics.observe_turn(message.input_channel, time.perf_counter() - started,
                                      result)
            return messages
        finally:
            self.in_flight -= 1
            if self.in_flight == 0:
                self._idle.set()

    async def _too_long(self, message: UserMessage) -> list[dict[str, Any]]:
        limit = self.settings.max_message_chars
        now = time.time()
        notice = ev.bot(TOO_LONG_TEXT.format(length=len(message.text), limit=limit),
                        {"buttons": [HUMAN_BUTTON]}, {"message_too_long": True}, timestamp=now)
        metadata = {**message.metadata, "truncated": True, "original_length": len(message.text)}
        user = ev.user(message.text[:limit], {"intent": {"name": None, "confidence": 0.0},
                                              "entities": []},
                       input_channel=message.input_channel, metadata=metadata, timestamp=now)
        await self.agent.processor.append_events(
            message.sender_id, [user, notice, ev.action(LISTEN, "message_too_long", 1.0, now)]
        )
        self.metrics.errors.labels("message_too_long").inc()
        return [bot_message(notice, message.sender_id)]

    async def drain(self, timeout: float) -> bool:
        """Wait until no turn is in flight; False when ``timeout`` ran out first."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True
