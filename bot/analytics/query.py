"""The rows the figures are made of, read with SQL (SQLAlchemy Core) from the tracker store's
``events`` table and the ``handoffs`` table, on SQLite and PostgreSQL alike.

Two statements: the events of the senders with a ``user`` event in the range (only the kinds
the figures use: boundaries, user messages, fallback actions, bot messages naming a knowledge
entry), JSON fields extracted by the database; and the handoffs queued since the range's
start. :func:`ensure_indexes` adds the one index the first statement needs.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bot.analytics.figures import (
    BOUNDARIES,
    FALLBACK_ACTIONS,
    EventRow,
    HandoffRow,
)
from bot.core.tracker_store import events_table
from bot.handoff.tables import HANDOFFS

TYPE_TIME_INDEX = "ix_events_type_time"  # (type_name, timestamp) on the events table
FETCH = 20_000  # rows per fetch


@dataclass(frozen=True)
class Sources:
    """Where the records are: the tracker store's engine and table, the handoffs' engine
    (the same database unless ``$BOT_HANDOFF_DB`` moved them)."""

    events: Engine
    handoffs: Engine | None = None
    table: str = "events"
    schema: str | None = None


def _json_text(dialect: str, column: Any, *path: str) -> Any:
    """The text at ``path`` inside the JSON of ``column`` (NULL when absent)."""
    if dialect == "postgresql":
        return sa.func.json_extract_path_text(sa.cast(column, sa.JSON), *path)
    return sa.func.json_extract(column, "$." + ".".join(path))


def ensure_indexes(sources: Sources) -> None:
    """``ix_events_type_time (type_name, timestamp)``: the senders with a user event in a
    range are found by walking it, not by reading every event (created once, if missing)."""
    table = events_table(sources.table, sources.schema)
    index = sa.Index(TYPE_TIME_INDEX, table.c.type_name, table.c.timestamp)
    if sa.inspect(sources.events).has_table(sources.table, schema=sources.schema):
        index.create(sources.events, checkfirst=True)


def event_rows(sources: Sources, start: float, end: float) -> Iterator[EventRow]:
    """Rows sorted by (sender_id, seq) for every sender with a user event in ``[start, end)``."""
    engine = sources.events
    if not sa.inspect(engine).has_table(sources.table, schema=sources.schema):
        return
    t = events_table(sources.table, sources.schema)
    dialect = engine.dialect.name
    senders = (
        sa.select(t.c.sender_id)
        .where(t.c.type_name == "user", t.c.timestamp >= start, t.c.timestamp < end)
        .distinct()
        .subquery("senders")
    )
    intent = _json_text(dialect, t.c.data, "parse_data", "intent", "name")
    name = _json_text(dialect, t.c.data, "name")
    kb_entry = _json_text(dialect, t.c.data, "metadata", "kb_entry")
    label = sa.case(
        (t.c.type_name == "user", intent),
        (t.c.type_name == "action", name),
        (t.c.type_name == "bot", kb_entry),
        else_=sa.null(),
    )
    channel = sa.case(
        (t.c.type_name == "user", _json_text(dialect, t.c.data, "input_channel")),
        else_=sa.null(),
    )
    # LIKE first: a substring test costs a tenth of parsing the JSON of every action and bot
    # message (most are action_listen and plain replies).
    wanted = sa.or_(
        t.c.type_name.in_(sorted(BOUNDARIES | {"user"})),
        sa.and_(
            t.c.type_name == "action",
            t.c.data.like("%_fallback%"),
            name.in_(sorted(FALLBACK_ACTIONS)),
        ),
        sa.and_(t.c.type_name == "bot", t.c.data.like("%kb_entry%"), kb_entry.is_not(None)),
    )
    statement = (
        sa.select(t.c.sender_id, t.c.seq, t.c.type_name, t.c.timestamp, label, channel)
        .join(senders, senders.c.sender_id == t.c.sender_id)
        .where(wanted)
        .order_by(t.c.sender_id, t.c.seq)
    )
    compiled = statement.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True})
    with engine.connect() as conn:
        # the DBAPI cursor: SQLAlchemy's result rows cost more than the rest of the report
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(str(compiled))
            while batch := cursor.fetchmany(FETCH):
                yield from batch
        finally:
            cursor.close()


def handoff_rows(sources: Sources, start: float) -> list[HandoffRow]:
    """Every handoff queued at or after ``start`` (conversations start in the range, their
    handoffs after that)."""
    engine = sources.handoffs or sources.events
    if not sa.inspect(engine).has_table(HANDOFFS.name):
        return []
    h = HANDOFFS.c
    statement = sa.select(
        h.conversation_id, h.reason, h.enqueued_at, h.assigned_at, h.rating
    ).where(h.enqueued_at >= start)
    with engine.connect() as conn:
        return [HandoffRow(*row) for row in conn.execute(statement)]
