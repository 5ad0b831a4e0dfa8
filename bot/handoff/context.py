"""What every part of the handoff shares: the configuration, the store, the conversation's
processor, the live bus, customer profiles and knowledge search, the clock, the push senders
and the background tasks; and the small steps all parts take (a store call off the event
loop, the handoff's words, a message to the customer from outside their turn, a queue item).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from bot.core import events as ev
from bot.core.actions.responses import bot_message
from bot.core.events import Event
from bot.core.processor import MessageProcessor
from bot.domain import Domain
from bot.handoff import responses, routing, triggers
from bot.handoff.bus import LocalBus
from bot.handoff.config import HandoffConfig
from bot.handoff.packet import Search
from bot.handoff.records import AgentAccount, Handoff
from bot.handoff.routing import Profile
from bot.handoff.store import HandoffStore
from bot.handoff.tables import OPEN

logger = logging.getLogger(__name__)

Sender = Callable[[str, str], Awaitable[None]]  # (conversation id, text) on a push channel


def minutes(seconds: float) -> int:
    """A wait in whole minutes, at least one."""
    return max(1, round(seconds / 60))


class HandoffContext:
    def __init__(
        self,
        config: HandoffConfig,
        store: HandoffStore,
        processor: MessageProcessor,
        *,
        bus: LocalBus | None = None,
        profiles: Callable[[str], Profile | None] | None = None,
        search: Search | None = None,
        categories: Callable[[str], str | None] | None = None,
        clock: Callable[[], float] = time.time,
        production: bool = False,
    ) -> None:
        self.config = config
        self.store = store
        self.processor = processor
        self.bus = bus or LocalBus()
        self.profiles = profiles
        self.search = search
        self.categories = categories
        self.clock = clock
        self.production = production
        self.senders: dict[str, Sender] = {}
        self.on_queued: Callable[[Handoff], None] | None = None  # metrics
        self._background: set[asyncio.Task[Any]] = set()
        # What customers ask most (this process, since it started): "faq:<entry id>" or
        # "intent:<name>" -> turns; the titles of the entries seen. The page's 猜你想问.
        self.asked: Counter[str] = Counter()
        self.titles: dict[str, str] = {}

    def most_asked(self, count: int) -> list[tuple[str, str]]:
        """The ``count`` most asked topics as (kind:key, title or "")."""
        return [(key, self.titles.get(key, "")) for key, _n in self.asked.most_common(count)]

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self.store.inline and fn != self.store.agents.authenticate:  # scrypt: ~50 ms
            return fn(*args)
        return await asyncio.to_thread(fn, *args)

    async def profile(self, customer_id: str | None) -> Profile | None:
        if not customer_id or self.profiles is None:
            return None
        try:
            profile: Profile | None = await asyncio.to_thread(self.profiles, customer_id)
        except Exception as exc:  # the core system is down: route without the profile
            logger.warning("customer profile of %s unavailable: %s", customer_id, exc)
            return None
        return profile

    def spawn(self, coro: Awaitable[Any]) -> None:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def drain(self) -> None:
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

    @property
    def domain(self) -> Domain | None:
        """The project's domain (its responses override the built-in handoff words)."""
        return self.processor.domain if self.processor is not None else None

    def words(
        self,
        name: str,
        *,
        channel: str | None = None,
        slots: dict[str, Any] | None = None,
        **values: Any,
    ) -> Event:
        """The bot event of the handoff response ``name`` (:mod:`bot.handoff.responses`)."""
        event = responses.response(name, self.domain, channel=channel, slots=slots, values=values)
        event["metadata"] = {}  # the callers say what it is about ("handoff": ...)
        event["timestamp"] = self.clock()
        return event

    async def to_customer(self, conversation_id: str, event: Event) -> dict[str, Any]:
        """A message from outside the customer's turn (an agent's, or the handoff's words
        about an agent's step): kept in the tracker, pushed to their live page and through
        their channel when it can push (WeChat's customer-service API)."""
        event["timestamp"] = self.clock()
        await self.processor.append_events(conversation_id, [event])
        message = bot_message(event, conversation_id)
        metadata = event.get("metadata") or {}
        if metadata.get("agent"):
            message["custom"] = {"from": "agent", "agent": metadata["agent"]}
        await self.bus.publish(f"conversation:{conversation_id}", "message", message)
        latest = await self.store_latest(conversation_id)
        channel = latest.channel if latest else None
        sender = self.senders.get(channel or "")
        if sender is not None and event.get("text"):
            self.spawn(self.push(sender, conversation_id, str(event["text"])))
        return message

    async def push(self, sender: Sender, conversation_id: str, text: str) -> None:
        try:
            await sender(conversation_id, text)
        except Exception as exc:
            logger.error("pushing to %s failed: %s", conversation_id, exc)

    async def store_latest(self, conversation_id: str) -> Handoff | None:
        latest: Handoff | None = await self.run(self.store.handoffs.latest, conversation_id)
        return latest

    async def open_handoff(self, conversation_id: str) -> Handoff | None:
        found: Handoff | None = await self.run(self.store.handoffs.latest, conversation_id, OPEN)
        return found

    async def queue_place(self, handoff: Handoff) -> tuple[int, int]:
        """(position in its group, estimated wait in seconds) of a waiting handoff."""
        position: int = await self.run(self.store.handoffs.position, handoff)
        agents: list[AgentAccount] = await self.run(self.store.agents.all)
        measured = await self.run(self.store.handoffs.average_handle_seconds, handoff.group)
        eta = routing.eta_seconds(
            position,
            routing.slots(agents, handoff.group),
            measured or self.config.average_handle_seconds,
        )
        return position, eta

    async def resume(self, conversation_id: str) -> None:
        await self.processor.append_events(conversation_id, [ev.resume(self.clock())])

    async def item(self, handoff: Handoff, position: int | None = None) -> dict[str, Any]:
        if position is None and handoff.status == "waiting":
            position = await self.run(self.store.handoffs.position, handoff)
        return {
            "id": handoff.id,
            "conversation_id": handoff.conversation_id,
            "status": handoff.status,
            "group": handoff.group,
            "priority": handoff.priority,
            "reason": handoff.reason,
            "reason_label": triggers.REASONS.get(handoff.reason, handoff.reason),
            "channel": handoff.channel,
            "customer": {"id": handoff.customer_id, "name": handoff.customer_name},
            "enqueued_at": handoff.enqueued_at,
            "waited_s": round(self.clock() - handoff.enqueued_at, 1),
            "agent": handoff.agent,
            "position": position,
            "preview": handoff.preview,
        }
