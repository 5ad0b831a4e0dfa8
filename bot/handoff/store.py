"""The persisted side of handoff: one store per table over one engine (the tracker store's
database by default: SQLite, or PostgreSQL when several processes serve), the schema created
on first use (:mod:`~bot.handoff.tables`). Blocking calls;
:class:`~bot.handoff.context.HandoffContext` runs them off the event loop.
"""

from __future__ import annotations

from sqlalchemy.engine import Engine

from bot.handoff.agent_store import AgentStore
from bot.handoff.audit_store import AuditStore
from bot.handoff.queue_store import QueueStore
from bot.handoff.tables import create_schema, engine_for, runs_inline
from bot.handoff.ticket_store import TicketStore


class HandoffStore:
    """``handoffs`` (the queue), ``agents``, ``tickets`` and ``audit`` on one engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        create_schema(engine)
        self.handoffs = QueueStore(engine)
        self.agents = AgentStore(engine)
        self.tickets = TicketStore(engine, self.handoffs)
        self.audit = AuditStore(engine)

    @property
    def inline(self) -> bool:
        """SQLite statements take microseconds: run them on the caller's thread."""
        return runs_inline(self.engine)

    @classmethod
    def from_url(cls, url: str) -> HandoffStore:
        return cls(engine_for(url))
