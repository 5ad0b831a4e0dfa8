"""Running customer turns for the channels: limits, metrics, and in-flight bookkeeping so that
a stopping server lets the turns it has started finish (graceful shutdown)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bot.core import events as ev
from bot.core.actions.responses import bot_message
from bot.core.agent import Agent
from bot.core.processor import UserMessage
from bot.core.tracker import LISTEN
from bot.server.errors import ApiError
from bot.server.metrics import BotMetrics
from bot.server.ratelimit import RateLimiter
from bot.server.settings import ServerSettings

TOO_LONG_TEXT = (
    "您的消息有{length}字，超过了{limit}字的上限，我没有处理这条消息。"
    "请精简后分几条发送，或点击“转人工”由人工客服为您服务。"
)
HUMAN_BUTTON = {"title": "转人工", "payload": "/request_human"}


class TurnRunner:
    def __init__(self, agent: Agent, settings: ServerSettings, metrics: BotMetrics) -> None:
        self.agent = agent
        self.settings = settings
        self.metrics = metrics
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
        processed: the customer is told, and the tracker keeps a truncated copy."""
        self.check_rate(message.sender_id)
        self.in_flight += 1
        self._idle.clear()
        try:
            if len(message.text) > self.settings.max_message_chars:
                return await self._too_long(message)
            started = time.perf_counter()
            result = await self.agent.handle(message)
            self.metrics.observe_turn(message.input_channel, time.perf_counter() - started,
                                      result)
            return result.messages
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
