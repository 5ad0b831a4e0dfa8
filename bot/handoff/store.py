"""The persisted side of handoff: one store per table over one engine (the tracker store's
database by default: SQLite, or PostgreSQL when several processes serve), the schema created
on first use (:mod:`~bot.handoff.tables`). Blocking calls;
:class:`~bot.handoff.context.HandoffContext` runs them off the event loop.
"""

from __future__ import annotations

import os

from sqlalchemy.engine import Engine

from bot.handoff.agent_store import AgentStore
from bot.handoff.audit_store import AuditStore
from bot.handoff.queue_store import QueueStore
from bot.handoff.tables import create_schema, engine_for, runs_inline
from bot.handoff.ticket_store import TicketStore
from bot.privacy import PrivacyPolicy


class HandoffStore:
    """``handoffs`` (the queue), ``agents``, ``tickets`` and ``audit`` on one engine.

    ``privacy`` (default: the default policy, mask) is the tracker store's: conversation and
    customer ids are stored under its :meth:`~bot.privacy.PrivacyPolicy.sender_key`, and text
    columns (previews, tickets, the context packet, audit details) masked unless it is keep."""

    def __init__(self, engine: Engine, privacy: PrivacyPolicy | None = None) -> None:
        self.engine = engine
        self.privacy = privacy or PrivacyPolicy.from_env(os.environ)
        create_schema(engine)
        self.handoffs = QueueStore(engine, self.privacy)
        self.agents = AgentStore(engine)
        self.tickets = TicketStore(engine, self.handoffs)
        self.audit = AuditStore(engine, self.privacy)

    @property
    def inline(self) -> bool:
        """SQLite statements take microseconds: run them on the caller's thread."""
        return runs_inline(self.engine)

    @classmethod
    def from_url(cls, url: str, privacy: PrivacyPolicy | None = None) -> HandoffStore:
        return cls(engine_for(url), privacy)
