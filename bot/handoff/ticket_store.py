"""Tickets: the ``handoff_tickets`` table (messages customers left instead of waiting).
Blocking calls."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Engine

from bot.handoff.queue_store import QueueStore
from bot.handoff.records import Ticket
from bot.handoff.tables import TICKETS


class TicketStore:
    def __init__(self, engine: Engine, handoffs: QueueStore) -> None:
        self.engine = engine
        self.handoffs = handoffs

    def to_ticket(self, handoff_id: str, text: str, now: float) -> Ticket | None:
        handoff = self.handoffs.transition(
            handoff_id,
            ["leaving", "waiting"],
            {"status": "ticket", "closed_at": now, "resolution": "ticket"},
        )
        if handoff is None:
            return None
        text = self.handoffs.privacy.store_text(text)
        with self.engine.begin() as conn:
            ticket_id = conn.execute(
                insert(TICKETS).values(
                    handoff_id=handoff.id,
                    conversation_id=handoff.conversation_id,
                    customer_id=handoff.customer_id,
                    group_name=handoff.group,
                    text=text,
                    created_at=now,
                    status="open",
                )
            ).inserted_primary_key
        assert ticket_id is not None
        ticket_id = ticket_id[0]
        return Ticket(
            int(ticket_id),
            handoff.id,
            handoff.conversation_id,
            handoff.customer_id,
            handoff.group,
            text,
            now,
            "open",
        )

    def forget(
        self,
        conversation_ids: Iterable[str],
        customer_id: str | None = None,
        stored_keys: bool = False,
    ) -> int:
        """Delete the tickets of these conversations (and of ``customer_id``); how many.
        ``stored_keys``: the conversation ids are keys as stored (deleted exactly)."""
        key = self.handoffs.privacy.sender_key
        ids = set(conversation_ids)
        keys = sorted(ids if stored_keys else {key(c) for c in ids})
        t = TICKETS.c
        deleted = 0
        with self.engine.begin() as conn:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                result = conn.execute(delete(TICKETS).where(t.conversation_id.in_(chunk)))
                deleted += int(result.rowcount or 0)
            if customer_id is not None:
                result = conn.execute(delete(TICKETS).where(t.customer_id == key(customer_id)))
                deleted += int(result.rowcount or 0)
        return deleted

    def purge_before(self, cutoff: float) -> int:
        """Delete the tickets left before ``cutoff`` and no longer open; how many."""
        t = TICKETS.c
        with self.engine.begin() as conn:
            result = conn.execute(delete(TICKETS).where(t.created_at < cutoff, t.status != "open"))
        return int(result.rowcount or 0)

    def all(self, status: str | None = "open") -> list[Ticket]:
        query = select(TICKETS).order_by(TICKETS.c.id)
        if status:
            query = query.where(TICKETS.c.status == status)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            Ticket(
                r.id,
                r.handoff_id,
                r.conversation_id,
                r.customer_id,
                r.group_name,
                r.text,
                r.created_at,
                r.status,
            )
            for r in rows
        ]
