"""The rows the figures are made of, read with SQL (SQLAlchemy Core) from the tracker store's
``events`` table and the ``handoffs`` table, on SQLite and PostgreSQL alike.

An incremental roll-up keeps the JSON out of the report: :func:`catch_up` copies the events
appended since its last run, only of the kinds the figures use (boundaries, user messages,
fallback actions, bot messages naming a knowledge entry), into ``analytics_events`` with the
fields the figures read already extracted by the database (``INSERT … SELECT``). The report
then reads that narrow table (:func:`event_rows`) and the handoffs queued since the range's
start (:func:`handoff_rows`). Nothing is added to the tracker store's own table.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from bot.analytics.figures import (
    BOUNDARIES,
    FALLBACK_ACTIONS,
    EventRow,
    HandoffRow,
)
from bot.core.schema import create_racing
from bot.core.tracker_store import MAX_ID_LENGTH, events_table
from bot.errors import BotError
from bot.handoff.tables import HANDOFFS

ROLLUP = "analytics_events"  # the roll-up: one narrow row per event the figures use
STATE = "analytics_state"  # the roll-up's watermark: the last events.id folded in
WATERMARK = "events_id"
# Rows up to this many ids below the watermark are read again (and ignored when already in):
# on PostgreSQL a transaction that took a lower id can commit after one with a higher id.
SLACK = 10_000
CHUNK = 100_000  # events ids per catch-up transaction
FETCH = 20_000  # rows per fetch
ROW_COLUMNS = ("sender_id", "seq", "type_name", "timestamp", "label", "channel")


@dataclass(frozen=True)
class Sources:
    """Where the records are: the tracker store's engine and table, the handoffs' engine
    (the same database unless ``$BOT_HANDOFF_DB`` moved them). The roll-up tables are made
    beside the events table (same database and schema)."""

    events: Engine
    handoffs: Engine | None = None
    table: str = "events"
    schema: str | None = None


def rollup_tables(schema: str | None = None) -> tuple[sa.Table, sa.Table]:
    """``analytics_events`` (the events' id, sender, seq, kind, time, and the label and channel
    already taken out of the JSON) and ``analytics_state`` (name → value)."""
    metadata = sa.MetaData(schema=schema)
    rollup = sa.Table(
        ROLLUP,
        metadata,
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("sender_id", sa.String(MAX_ID_LENGTH), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("type_name", sa.String(MAX_ID_LENGTH), nullable=False),
        sa.Column("timestamp", sa.Float),
        sa.Column("label", sa.String(MAX_ID_LENGTH)),
        sa.Column("channel", sa.String(MAX_ID_LENGTH)),
        # covering: a report reads these in this order without touching the table
        sa.Index(f"ix_{ROLLUP}_by_sender", *ROW_COLUMNS),
        sa.Index(f"ix_{ROLLUP}_type_time", "type_name", "timestamp", "sender_id"),
    )
    state = sa.Table(
        STATE,
        metadata,
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.BigInteger, nullable=False),
    )
    return rollup, state


def _json_text(dialect: str, column: Any, *path: str) -> Any:
    """The text at ``path`` inside the JSON of ``column`` (NULL when absent)."""
    if dialect == "postgresql":
        return sa.func.json_extract_path_text(sa.cast(column, sa.JSON), *path)
    return sa.func.json_extract(column, "$." + ".".join(path))


def _insert(dialect: str) -> Any:
    if dialect == "postgresql":
        return postgresql.insert
    if dialect == "sqlite":
        return sqlite.insert
    raise BotError(f"the report reads SQLite or PostgreSQL, not {dialect}")


def catch_up(sources: Sources) -> int:
    """Fold the events appended since the last call into the roll-up (creating its tables
    on first use); the number of events read. Safe to run from several processes at once."""
    engine = sources.events
    if not sa.inspect(engine).has_table(sources.table, schema=sources.schema):
        return 0
    t = events_table(sources.table, sources.schema)
    rollup, state = rollup_tables(sources.schema)
    create_racing(lambda: rollup.metadata.create_all(engine))
    dialect = engine.dialect.name
    insert = _insert(dialect)
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
    columns = ["id", "sender_id", "seq", "type_name", "timestamp", "label", "channel"]
    rows = sa.select(t.c.id, t.c.sender_id, t.c.seq, t.c.type_name, t.c.timestamp, label, channel)
    greatest = sa.func.max if dialect == "sqlite" else sa.func.greatest
    with engine.connect() as conn:
        done = conn.scalar(sa.select(state.c.value).where(state.c.name == WATERMARK)) or 0
        top = conn.scalar(sa.select(sa.func.max(t.c.id))) or 0
    if top <= done:
        return 0
    lowest = low = max(0, done - SLACK)
    while low < top:  # a transaction per CHUNK ids: the bot's appends never wait long
        high = min(top, low + CHUNK)
        window = rows.where(t.c.id > low, t.c.id <= high, wanted)
        mark = insert(state).values(name=WATERMARK, value=high)
        with engine.begin() as conn:
            conn.execute(insert(rollup).from_select(columns, window).on_conflict_do_nothing())
            conn.execute(
                mark.on_conflict_do_update(
                    index_elements=[state.c.name],
                    set_={"value": greatest(mark.excluded.value, state.c.value)},
                )
            )
        low = high
    return int(top - lowest)


def event_rows(sources: Sources, start: float, end: float) -> Iterator[EventRow]:
    """Rows sorted by (sender_id, seq) for every sender with a user event in ``[start, end)``,
    from the roll-up (call :func:`catch_up` first)."""
    engine = sources.events
    rollup, _ = rollup_tables(sources.schema)
    if not sa.inspect(engine).has_table(ROLLUP, schema=sources.schema):
        return
    r = rollup.c
    senders = sa.select(r.sender_id).where(
        r.type_name == "user", r.timestamp >= start, r.timestamp < end
    )
    # IN, not a join: the rows then come in the covering index's order, with no sort
    statement = (
        sa.select(*(r[name] for name in ROW_COLUMNS))
        .where(r.sender_id.in_(senders))
        .order_by(r.sender_id, r.seq)
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
