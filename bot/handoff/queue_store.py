"""The queue: the ``handoffs`` table (one row per stay of a conversation with the humans),
from enqueueing to closing. Blocking calls (the handoff runs them off the event loop)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, replace
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from bot.handoff.records import Handoff
from bot.handoff.tables import AGENTS, BUSY, HANDOFFS, OPEN
from bot.privacy import PrivacyPolicy, StoredText, mask_value

QUEUE_COLUMNS = [c for c in HANDOFFS.c if c.name not in ("packet", "told_leave")]


def handoff_of(row: Any) -> Handoff:
    m = row._mapping
    return Handoff(
        m["id"],
        m["conversation_id"],
        m["channel"],
        m["customer_id"],
        m["customer_name"],
        m["group_name"],
        m["priority"],
        m["reason"],
        m["reason_detail"],
        m["status"],
        m["enqueued_at"],
        m["assigned_at"],
        m["accepted_at"],
        m["closed_at"],
        m["agent"],
        m["resolution"],
        m["rating"],
        m["preview"],
        m["told_position"],
    )


class QueueStore:
    def __init__(self, engine: Engine, privacy: PrivacyPolicy | None = None) -> None:
        self.engine = engine
        self.privacy = privacy or PrivacyPolicy.from_env(os.environ)

    def _stored(self, handoff: Handoff) -> Handoff:
        """``handoff`` as written: ids under their key, text masked (see HandoffStore)."""
        p = self.privacy
        return replace(
            handoff,
            conversation_id=p.sender_key(handoff.conversation_id),
            customer_id=None if handoff.customer_id is None else p.sender_key(handoff.customer_id),
            customer_name=None
            if handoff.customer_name is None
            else p.store_text(handoff.customer_name),
            reason_detail=None
            if handoff.reason_detail is None
            else p.store_text(handoff.reason_detail),
            preview=None if handoff.preview is None else p.store_text(handoff.preview),
        )

    def requeue_agent(self, username: str) -> list[Handoff]:
        """The agent's open (assigned or active) conversations go back to their group's queue,
        keeping their place in time; what was moved."""
        h = HANDOFFS.c
        with self.engine.begin() as conn:
            rows = conn.execute(
                update(HANDOFFS)
                .where(h.agent == username, h.status.in_(BUSY))
                .values(status="waiting", agent=None, assigned_at=None, accepted_at=None)
                .returning(*QUEUE_COLUMNS)
            ).all()
        return [handoff_of(r) for r in rows]

    def loads(self) -> dict[str, int]:
        """Open (assigned or active) conversations per agent."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(HANDOFFS.c.agent, func.count())
                .where(HANDOFFS.c.status.in_(BUSY))
                .group_by(HANDOFFS.c.agent)
            ).all()
        return {str(agent): int(n) for agent, n in rows if agent}

    def enqueue(self, handoff: Handoff, packet: dict[str, Any]) -> tuple[Handoff, bool]:
        """Queue ``handoff``; when the conversation already has an open one, that one is
        returned instead (``False``: nothing new was queued). The handoff returned is as
        stored (its ids under their key, :meth:`_stored`)."""
        handoff = self._stored(handoff)
        if self.privacy.stored_text is not StoredText.KEEP:
            packet = mask_value(packet)
        values = asdict(handoff)
        values["group_name"] = values.pop("group")
        query = select(*QUEUE_COLUMNS).where(
            HANDOFFS.c.conversation_id == handoff.conversation_id, HANDOFFS.c.status.in_(OPEN)
        )
        try:
            with self.engine.begin() as conn:
                open_row = conn.execute(query).first()
                if open_row is not None:
                    return handoff_of(open_row), False
                conn.execute(
                    insert(HANDOFFS).values(**values, packet=json.dumps(packet, ensure_ascii=False))
                )
        except IntegrityError:  # queued by someone else a moment ago
            with self.engine.connect() as conn:
                open_row = conn.execute(query).first()
            if open_row is None:
                raise
            return handoff_of(open_row), False
        return handoff, True

    def get(self, handoff_id: str) -> Handoff | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(*QUEUE_COLUMNS).where(HANDOFFS.c.id == handoff_id)).first()
        return handoff_of(row) if row else None

    def packet(self, handoff_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            raw = conn.execute(
                select(HANDOFFS.c.packet).where(HANDOFFS.c.id == handoff_id)
            ).scalar()
        return json.loads(raw) if raw else None

    def latest(self, conversation_id: str, statuses: Iterable[str] | None = None) -> Handoff | None:
        """The conversation's most recent handoff (of ``statuses``)."""
        key = self.privacy.sender_key(conversation_id)
        query = select(*QUEUE_COLUMNS).where(HANDOFFS.c.conversation_id == key)
        if statuses is not None:
            query = query.where(HANDOFFS.c.status.in_(list(statuses)))
        with self.engine.connect() as conn:
            row = conn.execute(query.order_by(HANDOFFS.c.enqueued_at.desc()).limit(1)).first()
        return handoff_of(row) if row else None

    def waiting(self, groups: Iterable[str] | None = None, limit: int = 500) -> list[Handoff]:
        """Waiting conversations in serving order: highest priority, then longest waiting."""
        query = select(*QUEUE_COLUMNS).where(HANDOFFS.c.status == "waiting")
        if groups is not None:
            query = query.where(HANDOFFS.c.group_name.in_(list(groups)))
        query = query.order_by(
            HANDOFFS.c.priority.desc(), HANDOFFS.c.enqueued_at, HANDOFFS.c.id
        ).limit(limit)
        with self.engine.connect() as conn:
            return [handoff_of(r) for r in conn.execute(query).all()]

    def open_for_agent(self, username: str) -> list[Handoff]:
        query = (
            select(*QUEUE_COLUMNS)
            .where(HANDOFFS.c.agent == username, HANDOFFS.c.status.in_(BUSY))
            .order_by(HANDOFFS.c.enqueued_at)
        )
        with self.engine.connect() as conn:
            return [handoff_of(r) for r in conn.execute(query).all()]

    def position(self, handoff: Handoff) -> int:
        """1 for the next to be served in its group."""
        h = HANDOFFS.c
        ahead = select(func.count()).where(
            h.status == "waiting",
            h.group_name == handoff.group,
            or_(
                h.priority > handoff.priority,
                and_(h.priority == handoff.priority, h.enqueued_at < handoff.enqueued_at),
                and_(
                    h.priority == handoff.priority,
                    h.enqueued_at == handoff.enqueued_at,
                    h.id < handoff.id,
                ),
            ),
        )
        with self.engine.connect() as conn:
            return int(conn.execute(ahead).scalar_one()) + 1

    def tell_position(self, handoff_id: str, position: int, force: bool = False) -> bool:
        """Record that a waiting customer was told ``position``; ``True`` when this call
        changed it, i.e. it is better than what they were last told (or ``force``). The
        conditional update makes one of several workers the one to tell them."""
        h = HANDOFFS.c
        condition = [h.id == handoff_id, h.status == "waiting"]
        if not force:
            condition.append(or_(h.told_position.is_(None), h.told_position > position))
        with self.engine.begin() as conn:
            return bool(
                conn.execute(
                    update(HANDOFFS).where(*condition).values(told_position=position)
                ).rowcount
            )

    def tell_leave(self, handoff_id: str) -> bool:
        """Record that a waiting customer was offered to leave a message; ``True`` the first
        time only."""
        h = HANDOFFS.c
        with self.engine.begin() as conn:
            return bool(
                conn.execute(
                    update(HANDOFFS)
                    .where(
                        h.id == handoff_id,
                        h.status == "waiting",
                        or_(h.told_leave.is_(None), h.told_leave == 0),
                    )
                    .values(told_leave=1)
                ).rowcount
            )

    def next_waiting(self, groups: Sequence[str]) -> Handoff | None:
        found = self.waiting(groups, limit=1)
        return found[0] if found else None

    def transition(
        self,
        handoff_id: str,
        allowed: Sequence[str],
        values: dict[str, Any],
        agent: str | None = None,
    ) -> Handoff | None:
        """Move ``handoff_id`` on, if it is still in one of ``allowed`` (and, with ``agent``,
        still that agent's); ``None`` when someone else changed it first."""
        condition = [HANDOFFS.c.id == handoff_id, HANDOFFS.c.status.in_(list(allowed))]
        if agent is not None:
            condition.append(HANDOFFS.c.agent == agent)
        with self.engine.begin() as conn:
            changed = conn.execute(update(HANDOFFS).where(*condition).values(**values)).rowcount
        return self.get(handoff_id) if changed else None

    def _take(
        self, handoff_id: str, agent: str, values: dict[str, Any], now: float
    ) -> Handoff | None:
        """A waiting conversation becomes ``agent``'s, only while the agent is below capacity.

        The agent's row is written first (``last_assigned_at``): that takes its row lock on
        PostgreSQL and the write lock on SQLite, so two processes assigning to one agent at the
        same moment go one after the other and the load counted next is current. ``None``
        (nothing changed) when someone else took the conversation or the agent is full."""
        with self.engine.begin() as conn:
            if values.get("status") == "assigned" and conn.dialect.name == "postgresql":
                # A reservation need not wait for the WAL flush (about 3 ms on a virtual
                # disk): after a database crash the last fraction of a second of them may be
                # undone, and those customers are simply waiting again and assigned anew.
                # Queueing, accepting and closing stay fully durable.
                conn.execute(text("SET LOCAL synchronous_commit = off"))
            if not conn.execute(
                update(AGENTS).where(AGENTS.c.username == agent).values(last_assigned_at=now)
            ).rowcount:
                return None
            load = (
                select(func.count())
                .where(HANDOFFS.c.agent == agent, HANDOFFS.c.status.in_(BUSY))
                .scalar_subquery()
            )
            capacity, load = conn.execute(
                select(AGENTS.c.capacity, load).where(AGENTS.c.username == agent)
            ).one()
            row = None
            if load < capacity:
                row = conn.execute(
                    update(HANDOFFS)
                    .where(HANDOFFS.c.id == handoff_id, HANDOFFS.c.status == "waiting")
                    .values(agent=agent, **values)
                    .returning(*QUEUE_COLUMNS)
                ).first()
            if row is None:
                conn.rollback()  # keep the agent's last_assigned_at as it was
                return None
            return handoff_of(row)

    def assign(self, handoff_id: str, agent: str, now: float) -> Handoff | None:
        """Reserve a waiting conversation for ``agent`` (auto-assignment), within capacity."""
        return self._take(handoff_id, agent, {"status": "assigned", "assigned_at": now}, now)

    def accept(self, handoff_id: str, agent: str, now: float) -> Handoff | None:
        """An agent takes a waiting conversation (within capacity), or confirms one reserved
        for them."""
        current = self.get(handoff_id)
        if current is None:
            return None
        if current.status == "assigned" and current.agent == agent:
            return self.transition(
                handoff_id, ["assigned"], {"status": "active", "accepted_at": now}, agent
            )
        return self._take(
            handoff_id, agent, {"status": "active", "assigned_at": now, "accepted_at": now}, now
        )

    def transfer(
        self,
        handoff_id: str,
        agent: str | None,
        group: str,
        now: float,
        statuses: Sequence[str] | None = None,
    ) -> Handoff | None:
        """Back to the queue of ``group``; keeps its place in time (``enqueued_at``). Only
        from ``statuses`` (default: ``agent``'s assigned or active one; without ``agent``,
        any waiting, assigned or active one)."""
        allowed = statuses or (BUSY if agent else ("waiting", *BUSY))
        return self.transition(
            handoff_id,
            allowed,
            {
                "status": "waiting",
                "group_name": group,
                "agent": None,
                "assigned_at": None,
                "accepted_at": None,
            },
            agent,
        )

    def leave_message(self, handoff_id: str) -> Handoff | None:
        """A waiting customer chose to leave a message instead."""
        return self.transition(handoff_id, ["waiting"], {"status": "leaving"})

    def stale_reservations(self, before: float) -> list[Handoff]:
        """Conversations reserved for an agent before ``before`` and still not accepted."""
        h = HANDOFFS.c
        query = select(*QUEUE_COLUMNS).where(h.status == "assigned", h.assigned_at < before)
        with self.engine.connect() as conn:
            return [handoff_of(r) for r in conn.execute(query).all()]

    def release(self, handoff_id: str, agent: str) -> Handoff | None:
        """An assigned (not yet accepted) conversation goes back to the queue."""
        return self.transition(
            handoff_id,
            ["assigned"],
            {"status": "waiting", "agent": None, "assigned_at": None},
            agent,
        )

    def close(
        self, handoff_id: str, agent: str | None, resolution: str, now: float
    ) -> Handoff | None:
        return self.transition(
            handoff_id,
            OPEN,
            {"status": "closed", "resolution": resolution, "closed_at": now},
            agent,
        )

    # --- retention and erasure (bot privacy) ------------------------------------------------

    def conversations_of(self, customer_id: str) -> list[str]:
        """The conversations (stored keys) with a handoff of ``customer_id``."""
        key = self.privacy.sender_key(customer_id)
        query = select(HANDOFFS.c.conversation_id).where(HANDOFFS.c.customer_id == key)
        with self.engine.connect() as conn:
            return sorted({str(c) for c in conn.execute(query.distinct()).scalars()})

    def forget(self, conversation_ids: Iterable[str], stored_keys: bool = False) -> int:
        """Delete every handoff of these conversations; how many. ``stored_keys``: the ids
        are keys as stored (deleted exactly, not keyed again)."""
        ids = set(conversation_ids)
        keys = sorted(ids if stored_keys else {self.privacy.sender_key(c) for c in ids})
        deleted = 0
        with self.engine.begin() as conn:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                result = conn.execute(delete(HANDOFFS).where(HANDOFFS.c.conversation_id.in_(chunk)))
                deleted += int(result.rowcount or 0)
        return deleted

    def purge_before(self, cutoff: float) -> int:
        """Delete the finished handoffs (not open) that ended, or began, before ``cutoff``."""
        h = HANDOFFS.c
        ended = func.coalesce(h.closed_at, h.enqueued_at)
        with self.engine.begin() as conn:
            result = conn.execute(delete(HANDOFFS).where(h.status.not_in(OPEN), ended < cutoff))
        return int(result.rowcount or 0)

    def rate(self, conversation_id: str, rating: int) -> Handoff | None:
        """The rating of the conversation's latest closed, not yet rated handoff."""
        latest = self.latest(conversation_id, ["closed"])
        if latest is None or latest.rating is not None:
            return None
        with self.engine.begin() as conn:
            conn.execute(
                update(HANDOFFS)
                .where(HANDOFFS.c.id == latest.id, HANDOFFS.c.rating.is_(None))
                .values(rating=rating)
            )
        return self.get(latest.id)

    def average_handle_seconds(self, group: str, last: int = 50) -> float | None:
        h = HANDOFFS.c
        recent = (
            select((h.closed_at - h.accepted_at).label("d"))
            .where(h.group_name == group, h.status == "closed", h.accepted_at.is_not(None))
            .order_by(h.closed_at.desc())
            .limit(last)
            .subquery()
        )
        with self.engine.connect() as conn:
            value = conn.execute(select(func.avg(recent.c.d))).scalar()
        return float(value) if value is not None else None

    def groups_overview(self, now: float) -> dict[str, tuple[int, float]]:
        """Per group: (waiting, longest wait in seconds)."""
        h = HANDOFFS.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(h.group_name, func.count(), func.min(h.enqueued_at))
                .where(h.status == "waiting")
                .group_by(h.group_name)
            ).all()
        return {str(g): (int(n), max(0.0, now - float(first))) for g, n, first in rows}
