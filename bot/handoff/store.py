"""The persisted side of handoff: one store per table over one engine (the tracker store's
database by default: SQLite, or PostgreSQL when several processes serve), the schema created
on first use (:mod:`~bot.handoff.tables`). Blocking calls;
:class:`~bot.handoff.context.HandoffContext` runs them off the event loop.
"""

from __future__ import annotations

import json
import os

from sqlalchemy.engine import Engine

from bot.handoff.agent_store import AgentStore
from bot.handoff.audit_store import AuditStore
from bot.handoff.queue_store import QueueStore
from bot.handoff.tables import create_schema, engine_for, runs_inline
from bot.handoff.ticket_store import TicketStore
from bot.privacy import PrivacyPolicy, StoredText, mask_value


def _reapplied(privacy: PrivacyPolicy, column: str, old: str, is_id: bool) -> str:
    if is_id:
        return privacy.sender_key(old)
    if column not in ("packet", "detail"):
        return privacy.store_text(old)
    try:  # JSON: its strings masked, never its numbers
        value = json.loads(old)
    except ValueError:
        return privacy.store_text(old)
    masked = value if privacy.stored_text is StoredText.KEEP else mask_value(value)
    return old if masked is value else json.dumps(masked, ensure_ascii=False)


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

    def reapply_privacy(self, dry_run: bool = False) -> int:
        """Rewrite rows stored before the policy (see the tracker store's
        ``reapply_privacy``): conversation and customer ids under their keys, text columns
        masked; how many rows changed."""
        from sqlalchemy import select, update

        from bot.handoff.tables import AUDIT, HANDOFFS, TICKETS

        p = self.privacy
        ids = ("conversation_id", "customer_id")
        texts = ("customer_name", "reason_detail", "preview", "packet", "text", "detail")
        changed = 0
        with self.engine.begin() as conn:
            for table in (HANDOFFS, TICKETS, AUDIT):
                columns = [c for c in table.c if c.name in ids + texts]
                key = table.c.id  # every one of the three has an id key
                for row in conn.execute(select(key, *columns)).all():
                    values: dict[str, str] = {}
                    for column in columns:
                        old = row._mapping[column.name]
                        if not isinstance(old, str):
                            continue
                        new = _reapplied(p, column.name, old, column.name in ids)
                        if new != old:
                            values[column.name] = new
                    if values:
                        changed += 1
                        if not dry_run:
                            conn.execute(update(table).where(key == row[0]).values(**values))
        return changed

    @property
    def inline(self) -> bool:
        """SQLite statements take microseconds: run them on the caller's thread."""
        return runs_inline(self.engine)

    @classmethod
    def from_url(cls, url: str, privacy: PrivacyPolicy | None = None) -> HandoffStore:
        return cls(engine_for(url), privacy)
