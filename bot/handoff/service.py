"""The handoff, from a bot turn to the queue, to an agent, and back to the bot: its parts over
one :class:`~bot.handoff.context.HandoffContext`, and the calls the server makes.

- :mod:`~bot.handoff.stage`: the after-turn stage of every customer turn (the server's turn
  runner registers :attr:`HandoffService.stage` on the processor: it runs under the
  conversation's lock, on the tracker in memory): triggers, decision, queueing;
- :mod:`~bot.handoff.customer`: the customer's side (queueing, messages while waiting,
  leaving a message, rating, the customer's page);
- :mod:`~bot.handoff.dispatch`: the router (auto-assignment) and queue updates;
- :mod:`~bot.handoff.agents`: agents' logins, tokens, availability and reservations;
- :mod:`~bot.handoff.operations`: what agents do with conversations (the agent API).

The pure parts are :mod:`~bot.handoff.triggers`, :mod:`~bot.handoff.routing` and
:mod:`~bot.handoff.packet`; the words are :mod:`~bot.handoff.responses`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from bot.core.processor import MessageProcessor
from bot.handoff.agents import Agents
from bot.handoff.bus import LocalBus
from bot.handoff.config import HandoffConfig
from bot.handoff.context import HandoffContext
from bot.handoff.customer import CustomerSide
from bot.handoff.dispatch import Router
from bot.handoff.operations import Operations
from bot.handoff.packet import Search
from bot.handoff.records import Handoff
from bot.handoff.routing import Profile
from bot.handoff.stage import HandoffStage
from bot.handoff.store import HandoffStore


class HandoffService:
    """The parts, wired once; the methods the server, the agent API and the customer's page
    call are the parts' own."""

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
        self.ctx = HandoffContext(
            config,
            store,
            processor,
            bus=bus,
            profiles=profiles,
            search=search,
            categories=categories,
            clock=clock,
            production=production,
        )
        self.config, self.store, self.bus = self.ctx.config, self.ctx.store, self.ctx.bus
        self.senders = self.ctx.senders  # channel name -> push (WeChat's customer service)
        self.router = Router(self.ctx)
        self.customer = CustomerSide(self.ctx, self.router)
        self.stage = HandoffStage(self.ctx, self.customer)
        self.agents = Agents(self.ctx, self.router)
        self.operations = Operations(self.ctx, self.router)
        # the server's calls
        self.drain = self.ctx.drain
        self.dispatch = self.router.dispatch
        self.notify_positions = self.router.notify_positions
        self.expire_reservations = self.agents.expire_reservations
        # the customer's page
        self.history = self.customer.history
        self.customer_status = self.customer.status
        # the agent API
        self.login, self.verify = self.agents.login, self.agents.verify
        self.set_status, self.me = self.agents.set_status, self.agents.me
        ops = self.operations
        self.queue, self.accept, self.context = ops.queue, ops.accept, ops.context
        self.messages, self.send, self.note = ops.messages, ops.send, ops.note
        self.suggestions, self.transfer, self.close = ops.suggestions, ops.transfer, ops.close
        self.supervisor, self.public_config = ops.supervisor, ops.public_config

    @property
    def on_queued(self) -> Callable[[Handoff], None] | None:
        """Called with every newly queued handoff (the server's metrics)."""
        return self.ctx.on_queued

    @on_queued.setter
    def on_queued(self, callback: Callable[[Handoff], None] | None) -> None:
        self.ctx.on_queued = callback
