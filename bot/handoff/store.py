"""The persisted side of handoff, in SQL through SQLAlchemy (the tracker store's database by
default: SQLite, or PostgreSQL when several processes serve): the queue (``handoffs``), agents
(``handoff_agents``), tickets (``handoff_tickets``) and the append-only audit log
(``handoff_audit``). Blocking calls; :class:`~bot.handoff.context.HandoffContext` runs them
off the event loop.

State changes are conditional updates (``UPDATE … WHERE status = 'waiting'``), so two agents or
two processes racing for one conversation cannot both get it: the loser sees ``None``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    create_engine,
    func,
    insert,
    inspect,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from bot.core.schema import create_racing
from bot.errors import BotError

OPEN = ("waiting", "assigned", "active", "leaving")  # leaving: writing a message
BUSY = ("assigned", "active")
ROLES = ("agent", "supervisor")
MAX_NAME = 64

metadata = MetaData()
HANDOFFS = Table(
    "handoffs", metadata,
    Column("id", String(32), primary_key=True),
    Column("conversation_id", String(255), nullable=False, index=True),
    Column("channel", String(32)),
    Column("customer_id", String(MAX_NAME)),
    Column("customer_name", String(MAX_NAME)),  # masked
    Column("group_name", String(MAX_NAME), nullable=False),
    Column("priority", Integer, nullable=False, default=0),
    Column("reason", String(64), nullable=False),
    Column("reason_detail", Text),
    Column("status", String(16), nullable=False),
    Column("enqueued_at", Float, nullable=False),
    Column("assigned_at", Float),
    Column("accepted_at", Float),
    Column("closed_at", Float),
    Column("agent", String(MAX_NAME), index=True),
    Column("resolution", String(64)),
    Column("rating", Integer),
    Column("preview", Text),  # the customer's last message, masked
    Column("packet", Text),  # the context packet at enqueue time (JSON)
    # what a customer on a push channel (WeChat) was last told of the queue: their position,
    # and whether they were offered to leave a message (so several workers tell it once)
    Column("told_position", Integer),
    Column("told_leave", Integer),
    Index("ix_handoffs_queue", "status", "group_name", "priority", "enqueued_at"),
)
# At most one open handoff per conversation, even when two processes queue it at once.
OPEN_UNIQUE = Index(
    "ux_handoffs_open_conversation", HANDOFFS.c.conversation_id, unique=True,
    sqlite_where=HANDOFFS.c.status.in_(["waiting", "assigned", "active", "leaving"]),
    postgresql_where=HANDOFFS.c.status.in_(["waiting", "assigned", "active", "leaving"]),
)
# The serving order within a status, so the head of the queue for any set of groups is found
# by walking the index from the front, not by sorting every waiting conversation.
SERVING_ORDER = Index(
    "ix_handoffs_serving_order", HANDOFFS.c.status, HANDOFFS.c.priority.desc(),
    HANDOFFS.c.enqueued_at, HANDOFFS.c.id,
)
AGENTS = Table(
    "handoff_agents", metadata,
    Column("username", String(MAX_NAME), primary_key=True),
    Column("password_hash", String(255), nullable=False),
    Column("groups", Text, nullable=False),  # JSON list
    Column("role", String(16), nullable=False),
    Column("capacity", Integer, nullable=False),
    Column("status", String(16), nullable=False, default="away"),
    Column("created_at", Float, nullable=False),
    Column("last_assigned_at", Float, nullable=False, default=0.0),
)
TICKETS = Table(
    "handoff_tickets", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("handoff_id", String(32), index=True),
    Column("conversation_id", String(255), nullable=False),
    Column("customer_id", String(MAX_NAME)),
    Column("group_name", String(MAX_NAME)),
    Column("text", Text, nullable=False),  # masked
    Column("created_at", Float, nullable=False),
    Column("status", String(16), nullable=False, default="open"),
)
AUDIT = Table(
    "handoff_audit", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("actor", String(MAX_NAME), nullable=False),
    Column("action", String(32), nullable=False),
    Column("conversation_id", String(255), index=True),
    Column("handoff_id", String(32)),
    Column("detail", Text),  # JSON
)


@dataclass
class Handoff:
    id: str
    conversation_id: str
    channel: str | None
    customer_id: str | None
    customer_name: str | None
    group: str
    priority: int
    reason: str
    reason_detail: str | None
    status: str
    enqueued_at: float
    assigned_at: float | None = None
    accepted_at: float | None = None
    closed_at: float | None = None
    agent: str | None = None
    resolution: str | None = None
    rating: int | None = None
    preview: str | None = None
    told_position: int | None = None  # what a push-channel customer last heard


@dataclass
class AgentAccount:
    username: str
    groups: list[str]
    role: str
    capacity: int
    status: str
    created_at: float
    last_assigned_at: float = 0.0

    @property
    def supervisor(self) -> bool:
        return self.role == "supervisor"

    def may_see(self, handoff: Handoff) -> bool:
        return self.supervisor or handoff.agent == self.username or (
            handoff.status == "waiting" and handoff.group in self.groups)


@dataclass
class Ticket:
    id: int
    handoff_id: str | None
    conversation_id: str
    customer_id: str | None
    group: str | None
    text: str
    created_at: float
    status: str


# --- passwords ------------------------------------------------------------------------------

def hash_password(password: str) -> str:
    """scrypt (n=2^14, r=8, p=1) with a random salt, as ``scrypt$n$r$p$salt$hash``."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    return f"scrypt$16384$8$1${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        given = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r),
                               p=int(p), dklen=len(digest) // 2)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(given.hex(), digest)


def check_name(value: str, what: str) -> str:
    value = value.strip()
    if not value or len(value) > MAX_NAME or not value.isprintable() or "," in value:
        raise BotError(f"{what} must be 1-{MAX_NAME} printable characters without commas, "
                       f"got {value!r}")
    return value


# --- the store ----------------------------------------------------------------------------

def _handoff(row: Any) -> Handoff:
    m = row._mapping
    return Handoff(m["id"], m["conversation_id"], m["channel"], m["customer_id"],
                   m["customer_name"], m["group_name"], m["priority"], m["reason"],
                   m["reason_detail"], m["status"], m["enqueued_at"], m["assigned_at"],
                   m["accepted_at"], m["closed_at"], m["agent"], m["resolution"], m["rating"],
                   m["preview"], m["told_position"])


def _agent(row: Any) -> AgentAccount:
    m = row._mapping
    return AgentAccount(m["username"], json.loads(m["groups"]), m["role"], m["capacity"],
                        m["status"], m["created_at"], m["last_assigned_at"])


_QUEUE_COLUMNS = [c for c in HANDOFFS.c if c.name not in ("packet", "told_leave")]


class HandoffStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._create_schema()

    def _create_schema(self) -> None:
        """Tables, columns and indexes that are missing (workers starting together on a new
        database race to create them: :func:`~bot.core.schema.create_racing`)."""
        def create() -> None:
            metadata.create_all(self.engine)
            self._add_missing_columns()
            for index in (OPEN_UNIQUE, SERVING_ORDER):  # also on tables of older versions
                index.create(self.engine, checkfirst=True)

        create_racing(create)

    def _add_missing_columns(self) -> None:
        """Columns added since a table was created (``ALTER TABLE … ADD COLUMN``, nullable,
        so old rows stay valid)."""
        present = {c["name"] for c in inspect(self.engine).get_columns("handoffs")}
        for column in ("told_position", "told_leave"):
            if column in present:
                continue
            with self.engine.begin() as conn:  # a race is retried by create_racing
                conn.execute(text(f"ALTER TABLE handoffs ADD COLUMN {column} INTEGER"))

    @property
    def inline(self) -> bool:
        """SQLite statements take microseconds: run them on the caller's thread."""
        return self.engine.dialect.name == "sqlite"

    @classmethod
    def from_url(cls, url: str) -> HandoffStore:
        if url in ("sqlite://", "sqlite:///:memory:"):  # one shared in-memory database
            from sqlalchemy.pool import StaticPool

            return cls(create_engine("sqlite://", poolclass=StaticPool,
                                     connect_args={"check_same_thread": False}))
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        return cls(create_engine(url))

    # -- agents ----------------------------------------------------------------------------

    def add_agent(self, username: str, password: str, groups: Sequence[str],
                  role: str = "agent", capacity: int = 3) -> AgentAccount:
        username = check_name(username, "username")
        if len(password) < 8:
            raise BotError("the password must have at least 8 characters")
        if role not in ROLES:
            raise BotError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
        if capacity < 1:
            raise BotError("capacity must be at least 1")
        clean = [check_name(g, "group") for g in groups if g.strip()]
        if not clean:
            raise BotError("an agent needs at least one group")
        now = time.time()
        with self.engine.begin() as conn:
            if conn.execute(select(AGENTS.c.username).where(AGENTS.c.username == username)
                            ).first():
                raise BotError(f"agent {username!r} exists already (remove it first)")
            conn.execute(insert(AGENTS).values(
                username=username, password_hash=hash_password(password),
                groups=json.dumps(clean, ensure_ascii=False), role=role, capacity=capacity,
                status="away", created_at=now, last_assigned_at=0.0))
        return AgentAccount(username, clean, role, capacity, "away", now)

    def requeue_agent(self, username: str) -> list[Handoff]:
        """The agent's open (assigned or active) conversations go back to their group's queue,
        keeping their place in time; what was moved."""
        h = HANDOFFS.c
        with self.engine.begin() as conn:
            rows = conn.execute(update(HANDOFFS).where(h.agent == username, h.status.in_(BUSY))
                                .values(status="waiting", agent=None, assigned_at=None,
                                        accepted_at=None).returning(*_QUEUE_COLUMNS)).all()
        return [_handoff(r) for r in rows]

    def remove_agent(self, username: str) -> bool:
        with self.engine.begin() as conn:
            return bool(conn.execute(AGENTS.delete().where(AGENTS.c.username == username))
                        .rowcount)

    def agents(self) -> list[AgentAccount]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(AGENTS).order_by(AGENTS.c.username)).all()
        return [_agent(r) for r in rows]

    def agent(self, username: str) -> AgentAccount | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(AGENTS).where(AGENTS.c.username == username)).first()
        return _agent(row) if row else None

    def authenticate(self, username: str, password: str) -> AgentAccount | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(AGENTS).where(AGENTS.c.username == username)).first()
        if row is None:
            check_password(password, hash_password("timing"))  # same time either way
            return None
        return _agent(row) if check_password(password, row._mapping["password_hash"]) else None

    def set_status(self, username: str, status: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(AGENTS).where(AGENTS.c.username == username)
                         .values(status=status))

    def loads(self) -> dict[str, int]:
        """Open (assigned or active) conversations per agent."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(HANDOFFS.c.agent, func.count()).where(HANDOFFS.c.status.in_(BUSY))
                .group_by(HANDOFFS.c.agent)).all()
        return {str(agent): int(n) for agent, n in rows if agent}

    def available_with_loads(self) -> tuple[list[AgentAccount], dict[str, int]]:
        """The available agents and their open conversations, in one query (what the router
        reads before assigning)."""
        counts = (select(HANDOFFS.c.agent, func.count().label("n"))
                  .where(HANDOFFS.c.status.in_(BUSY)).group_by(HANDOFFS.c.agent).subquery())
        query = (select(AGENTS, func.coalesce(counts.c.n, 0).label("load"))
                 .outerjoin(counts, counts.c.agent == AGENTS.c.username)
                 .where(AGENTS.c.status == "available").order_by(AGENTS.c.username))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        agents = [_agent(r) for r in rows]
        return agents, {a.username: int(r.load) for a, r in zip(agents, rows, strict=True)
                        if r.load}

    # -- the queue -------------------------------------------------------------------------

    def enqueue(self, handoff: Handoff, packet: dict[str, Any]) -> tuple[Handoff, bool]:
        """Queue ``handoff``; when the conversation already has an open one, that one is
        returned instead (``False``: nothing new was queued)."""
        values = asdict(handoff)
        values["group_name"] = values.pop("group")
        query = select(*_QUEUE_COLUMNS).where(
            HANDOFFS.c.conversation_id == handoff.conversation_id, HANDOFFS.c.status.in_(OPEN))
        try:
            with self.engine.begin() as conn:
                open_row = conn.execute(query).first()
                if open_row is not None:
                    return _handoff(open_row), False
                conn.execute(insert(HANDOFFS).values(
                    **values, packet=json.dumps(packet, ensure_ascii=False)))
        except IntegrityError:  # queued by someone else a moment ago
            with self.engine.connect() as conn:
                open_row = conn.execute(query).first()
            if open_row is None:
                raise
            return _handoff(open_row), False
        return handoff, True

    def get(self, handoff_id: str) -> Handoff | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(*_QUEUE_COLUMNS).where(HANDOFFS.c.id == handoff_id)
                               ).first()
        return _handoff(row) if row else None

    def packet(self, handoff_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            raw = conn.execute(select(HANDOFFS.c.packet).where(HANDOFFS.c.id == handoff_id)
                               ).scalar()
        return json.loads(raw) if raw else None

    def latest(self, conversation_id: str, statuses: Iterable[str] | None = None
               ) -> Handoff | None:
        """The conversation's most recent handoff (of ``statuses``)."""
        query = select(*_QUEUE_COLUMNS).where(HANDOFFS.c.conversation_id == conversation_id)
        if statuses is not None:
            query = query.where(HANDOFFS.c.status.in_(list(statuses)))
        with self.engine.connect() as conn:
            row = conn.execute(query.order_by(HANDOFFS.c.enqueued_at.desc()).limit(1)).first()
        return _handoff(row) if row else None

    def waiting(self, groups: Iterable[str] | None = None, limit: int = 500) -> list[Handoff]:
        """Waiting conversations in serving order: highest priority, then longest waiting."""
        query = select(*_QUEUE_COLUMNS).where(HANDOFFS.c.status == "waiting")
        if groups is not None:
            query = query.where(HANDOFFS.c.group_name.in_(list(groups)))
        query = query.order_by(HANDOFFS.c.priority.desc(), HANDOFFS.c.enqueued_at,
                               HANDOFFS.c.id).limit(limit)
        with self.engine.connect() as conn:
            return [_handoff(r) for r in conn.execute(query).all()]

    def open_for_agent(self, username: str) -> list[Handoff]:
        query = select(*_QUEUE_COLUMNS).where(HANDOFFS.c.agent == username,
                                              HANDOFFS.c.status.in_(BUSY)
                                              ).order_by(HANDOFFS.c.enqueued_at)
        with self.engine.connect() as conn:
            return [_handoff(r) for r in conn.execute(query).all()]

    def position(self, handoff: Handoff) -> int:
        """1 for the next to be served in its group."""
        h = HANDOFFS.c
        ahead = select(func.count()).where(
            h.status == "waiting", h.group_name == handoff.group,
            or_(h.priority > handoff.priority,
                and_(h.priority == handoff.priority, h.enqueued_at < handoff.enqueued_at),
                and_(h.priority == handoff.priority, h.enqueued_at == handoff.enqueued_at,
                     h.id < handoff.id)))
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
            return bool(conn.execute(update(HANDOFFS).where(*condition)
                                     .values(told_position=position)).rowcount)

    def tell_leave(self, handoff_id: str) -> bool:
        """Record that a waiting customer was offered to leave a message; ``True`` the first
        time only."""
        h = HANDOFFS.c
        with self.engine.begin() as conn:
            return bool(conn.execute(update(HANDOFFS).where(
                h.id == handoff_id, h.status == "waiting",
                or_(h.told_leave.is_(None), h.told_leave == 0)).values(told_leave=1)).rowcount)

    def next_waiting(self, groups: Sequence[str]) -> Handoff | None:
        found = self.waiting(groups, limit=1)
        return found[0] if found else None

    def _transition(self, handoff_id: str, allowed: Sequence[str], values: dict[str, Any],
                    agent: str | None = None) -> Handoff | None:
        """Move ``handoff_id`` on, if it is still in one of ``allowed`` (and, with ``agent``,
        still that agent's); ``None`` when someone else changed it first."""
        condition = [HANDOFFS.c.id == handoff_id, HANDOFFS.c.status.in_(list(allowed))]
        if agent is not None:
            condition.append(HANDOFFS.c.agent == agent)
        with self.engine.begin() as conn:
            changed = conn.execute(update(HANDOFFS).where(*condition).values(**values)).rowcount
        return self.get(handoff_id) if changed else None

    def _take(self, handoff_id: str, agent: str, values: dict[str, Any], now: float
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
            if not conn.execute(update(AGENTS).where(AGENTS.c.username == agent)
                                .values(last_assigned_at=now)).rowcount:
                return None
            load = select(func.count()).where(
                HANDOFFS.c.agent == agent, HANDOFFS.c.status.in_(BUSY)).scalar_subquery()
            capacity, load = conn.execute(select(AGENTS.c.capacity, load)
                                          .where(AGENTS.c.username == agent)).one()
            row = None
            if load < capacity:
                row = conn.execute(update(HANDOFFS).where(
                    HANDOFFS.c.id == handoff_id, HANDOFFS.c.status == "waiting"
                ).values(agent=agent, **values).returning(*_QUEUE_COLUMNS)).first()
            if row is None:
                conn.rollback()  # keep the agent's last_assigned_at as it was
                return None
            return _handoff(row)

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
            return self._transition(handoff_id, ["assigned"],
                                    {"status": "active", "accepted_at": now}, agent)
        return self._take(handoff_id, agent, {"status": "active", "assigned_at": now,
                                              "accepted_at": now}, now)

    def transfer(self, handoff_id: str, agent: str | None, group: str, now: float,
                 statuses: Sequence[str] | None = None) -> Handoff | None:
        """Back to the queue of ``group``; keeps its place in time (``enqueued_at``). Only
        from ``statuses`` (default: ``agent``'s assigned or active one; without ``agent``,
        any waiting, assigned or active one)."""
        allowed = statuses or (BUSY if agent else ("waiting", *BUSY))
        return self._transition(handoff_id, allowed,
                                {"status": "waiting", "group_name": group, "agent": None,
                                 "assigned_at": None, "accepted_at": None}, agent)

    def leave_message(self, handoff_id: str) -> Handoff | None:
        """A waiting customer chose to leave a message instead."""
        return self._transition(handoff_id, ["waiting"], {"status": "leaving"})

    def stale_reservations(self, before: float) -> list[Handoff]:
        """Conversations reserved for an agent before ``before`` and still not accepted."""
        h = HANDOFFS.c
        query = select(*_QUEUE_COLUMNS).where(h.status == "assigned", h.assigned_at < before)
        with self.engine.connect() as conn:
            return [_handoff(r) for r in conn.execute(query).all()]

    def release(self, handoff_id: str, agent: str) -> Handoff | None:
        """An assigned (not yet accepted) conversation goes back to the queue."""
        return self._transition(handoff_id, ["assigned"],
                                {"status": "waiting", "agent": None, "assigned_at": None}, agent)

    def close(self, handoff_id: str, agent: str | None, resolution: str, now: float
              ) -> Handoff | None:
        return self._transition(handoff_id, OPEN,
                                {"status": "closed", "resolution": resolution,
                                 "closed_at": now}, agent)

    def to_ticket(self, handoff_id: str, text: str, now: float) -> Ticket | None:
        handoff = self._transition(handoff_id, ["leaving", "waiting"],
                                   {"status": "ticket", "closed_at": now,
                                    "resolution": "ticket"})
        if handoff is None:
            return None
        with self.engine.begin() as conn:
            ticket_id = conn.execute(insert(TICKETS).values(
                handoff_id=handoff.id, conversation_id=handoff.conversation_id,
                customer_id=handoff.customer_id, group_name=handoff.group, text=text,
                created_at=now, status="open")).inserted_primary_key
        assert ticket_id is not None
        ticket_id = ticket_id[0]
        return Ticket(int(ticket_id), handoff.id, handoff.conversation_id, handoff.customer_id,
                      handoff.group, text, now, "open")

    def tickets(self, status: str | None = "open") -> list[Ticket]:
        query = select(TICKETS).order_by(TICKETS.c.id)
        if status:
            query = query.where(TICKETS.c.status == status)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [Ticket(r.id, r.handoff_id, r.conversation_id, r.customer_id, r.group_name,
                       r.text, r.created_at, r.status) for r in rows]

    def rate(self, conversation_id: str, rating: int) -> Handoff | None:
        """The rating of the conversation's latest closed, not yet rated handoff."""
        latest = self.latest(conversation_id, ["closed"])
        if latest is None or latest.rating is not None:
            return None
        with self.engine.begin() as conn:
            conn.execute(update(HANDOFFS).where(HANDOFFS.c.id == latest.id,
                                                HANDOFFS.c.rating.is_(None))
                         .values(rating=rating))
        return self.get(latest.id)

    def average_handle_seconds(self, group: str, last: int = 50) -> float | None:
        h = HANDOFFS.c
        recent = (select((h.closed_at - h.accepted_at).label("d"))
                  .where(h.group_name == group, h.status == "closed",
                         h.accepted_at.is_not(None))
                  .order_by(h.closed_at.desc()).limit(last).subquery())
        with self.engine.connect() as conn:
            value = conn.execute(select(func.avg(recent.c.d))).scalar()
        return float(value) if value is not None else None

    def groups_overview(self, now: float) -> dict[str, tuple[int, float]]:
        """Per group: (waiting, longest wait in seconds)."""
        h = HANDOFFS.c
        with self.engine.connect() as conn:
            rows = conn.execute(select(h.group_name, func.count(), func.min(h.enqueued_at))
                                .where(h.status == "waiting").group_by(h.group_name)).all()
        return {str(g): (int(n), max(0.0, now - float(first))) for g, n, first in rows}

    # -- audit -----------------------------------------------------------------------------

    def audit(self, actor: str, action: str, conversation_id: str | None,
              handoff_id: str | None = None, detail: dict[str, Any] | None = None,
              now: float | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(insert(AUDIT).values(
                at=time.time() if now is None else now, actor=actor, action=action,
                conversation_id=conversation_id, handoff_id=handoff_id,
                detail=json.dumps(detail or {}, ensure_ascii=False)))

    def audit_log(self, conversation_id: str | None = None, actions: Iterable[str] | None = None,
                  limit: int = 1000) -> list[dict[str, Any]]:
        query = select(AUDIT).order_by(AUDIT.c.id)
        if conversation_id is not None:
            query = query.where(AUDIT.c.conversation_id == conversation_id)
        if actions is not None:
            query = query.where(AUDIT.c.action.in_(list(actions)))
        with self.engine.connect() as conn:
            rows = conn.execute(query.limit(limit)).all()
        return [{"id": r.id, "at": r.at, "actor": r.actor, "action": r.action,
                 "conversation_id": r.conversation_id, "handoff_id": r.handoff_id,
                 "detail": json.loads(r.detail or "{}")} for r in rows]


def new_id() -> str:
    return uuid.uuid4().hex
