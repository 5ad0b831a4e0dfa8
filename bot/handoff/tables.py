"""The handoff's tables (SQLAlchemy Core, one ``MetaData``) and their creation on an engine;
every handoff store (:mod:`~bot.handoff.store`) works on these over one engine: the tracker
store's database by default (SQLite, or PostgreSQL when several processes serve).

State changes are conditional updates (``UPDATE … WHERE status = 'waiting'``), so two agents or
two processes racing for one conversation cannot both get it: the loser sees ``None``.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import (
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    inspect,
    text,
)
from sqlalchemy.engine import Engine

from bot.core.schema import create_racing

OPEN = ("waiting", "assigned", "active", "leaving")  # leaving: writing a message
BUSY = ("assigned", "active")
ROLES = ("agent", "supervisor")
MAX_NAME = 64

metadata = MetaData()
HANDOFFS = Table(
    "handoffs",
    metadata,
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
    "ux_handoffs_open_conversation",
    HANDOFFS.c.conversation_id,
    unique=True,
    sqlite_where=HANDOFFS.c.status.in_(["waiting", "assigned", "active", "leaving"]),
    postgresql_where=HANDOFFS.c.status.in_(["waiting", "assigned", "active", "leaving"]),
)
# The serving order within a status, so the head of the queue for any set of groups is found
# by walking the index from the front, not by sorting every waiting conversation.
SERVING_ORDER = Index(
    "ix_handoffs_serving_order",
    HANDOFFS.c.status,
    HANDOFFS.c.priority.desc(),
    HANDOFFS.c.enqueued_at,
    HANDOFFS.c.id,
)
AGENTS = Table(
    "handoff_agents",
    metadata,
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
    "handoff_tickets",
    metadata,
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
    "handoff_audit",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("actor", String(MAX_NAME), nullable=False),
    Column("action", String(32), nullable=False),
    Column("conversation_id", String(255), index=True),
    Column("handoff_id", String(32)),
    Column("detail", Text),  # JSON
)


def create_schema(engine: Engine) -> None:
    """Tables, columns and indexes that are missing (workers starting together on a new
    database race to create them: :func:`~bot.core.schema.create_racing`)."""

    def create() -> None:
        metadata.create_all(engine)
        _add_missing_columns(engine)
        for index in (OPEN_UNIQUE, SERVING_ORDER):  # also on tables of older versions
            index.create(engine, checkfirst=True)

    create_racing(create)


def _add_missing_columns(engine: Engine) -> None:
    """Columns added since a table was created (``ALTER TABLE … ADD COLUMN``, nullable, so old
    rows stay valid)."""
    present = {c["name"] for c in inspect(engine).get_columns("handoffs")}
    for column in ("told_position", "told_leave"):
        if column in present:
            continue
        with engine.begin() as conn:  # a race is retried by create_racing
            conn.execute(text(f"ALTER TABLE handoffs ADD COLUMN {column} INTEGER"))


def engine_for(url: str) -> Engine:
    """The engine of a database URL; ``sqlite://`` is one in-memory database shared by every
    connection."""
    if url in ("sqlite://", "sqlite:///:memory:"):
        from sqlalchemy.pool import StaticPool

        return create_engine(
            "sqlite://", poolclass=StaticPool, connect_args={"check_same_thread": False}
        )
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return create_engine(url)


def runs_inline(engine: Engine) -> bool:
    """SQLite statements take microseconds: run them on the caller's thread."""
    return engine.dialect.name == "sqlite"
