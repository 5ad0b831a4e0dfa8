"""Tracker stores: the append-only event log of every conversation.

Events are Rasa event dicts. They are only ever appended, never rewritten, so the history of a
conversation is complete for audit. :class:`SQLTrackerStore` numbers each conversation's events
``seq`` = 1, 2, 3, ... inside the append transaction; a ``UNIQUE(sender_id, seq)`` constraint
plus a retry keeps two processes that append to one conversation from interleaving wrongly.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import logging
import os
import random
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, TypeVar

from bot.core.schema import create_racing
from bot.errors import ConfigError
from bot.privacy import ENCRYPTED, PrivacyPolicy

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine, Table

logger = logging.getLogger(__name__)

T = TypeVar("T")
Event = dict[str, Any]

DB_URL_ENV = "BOT_DB_URL"
DEFAULT_SQLITE_PATH = Path("data") / "bankbot.db"
MAX_ID_LENGTH = 255
_SYNCHRONOUS = {"OFF", "NORMAL", "FULL", "EXTRA"}
_PG_XACT_LOCK = "SELECT pg_advisory_xact_lock(%(key)s)"
# Inline SQLite checkpoints the WAL on a thread of its own (after this many appends, or this
# many seconds), so the event loop never waits for a checkpoint's fsync.
CHECKPOINT_EVERY = 200
CHECKPOINT_INTERVAL = 5.0


class TrackerStore(ABC):
    """The event log of every conversation, keyed by ``sender_id``.

    What is written follows :attr:`privacy` (``privacy:`` of ``endpoints.yml``): personal
    numbers in the events masked (the default) or masked with the original encrypted, and a
    sender id holding one stored under a pseudonym (:meth:`PrivacyPolicy.sender_key`; the
    methods take either form)."""

    privacy: PrivacyPolicy = PrivacyPolicy()

    @abstractmethod
    async def append(self, sender_id: str, events: list[Event]) -> None:
        """Append ``events`` in order: all of them or none."""

    @abstractmethod
    async def events(self, sender_id: str, after: int = 0) -> list[Event]:
        """The conversation's events in order, skipping the first ``after`` (already seen)."""

    @abstractmethod
    async def count(self, sender_id: str) -> int:
        """How many events the conversation has (0 if unknown)."""

    @abstractmethod
    async def senders(self) -> list[str]:
        """Every conversation with at least one event, sorted."""

    async def exists(self, sender_id: str) -> bool:
        return await self.count(sender_id) > 0

    # --- retention and erasure (``bot privacy purge`` / ``erase``) ----------------------

    async def forget(self, sender_ids: list[str], stored_keys: bool = False) -> int:
        """Delete these conversations (every event); the number of events deleted.
        ``stored_keys``: the ids are keys as stored (from :meth:`idle_since`,
        :meth:`with_slot`, :meth:`senders`), deleted exactly, not keyed again."""
        raise NotImplementedError(f"{type(self).__name__} cannot delete conversations")

    async def idle_since(self, cutoff: float) -> list[str]:
        """The conversations whose newest event is older than ``cutoff`` (a Unix time)."""
        raise NotImplementedError(f"{type(self).__name__} cannot list idle conversations")

    async def with_slot(self, name: str, value: str) -> list[str]:
        """The conversations that ever set slot ``name`` to ``value`` (as typed or as stored,
        masked)."""
        wanted = {value, self.privacy.store_text(value)}
        found = []
        for sender in await self.senders():
            for event in await self.events(sender):
                slot = event.get("event") == "slot" and event.get("name") == name
                if slot and event.get("value") in wanted:
                    found.append(sender)
                    break
        return found

    async def close(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Release connections and threads."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


def _check_sender(sender_id: str) -> None:
    if not isinstance(sender_id, str) or not sender_id:
        raise ValueError(f"sender_id must be a non-empty string, got {sender_id!r}")
    if len(sender_id) > MAX_ID_LENGTH:
        raise ValueError(f"sender_id is longer than {MAX_ID_LENGTH} characters: {sender_id[:40]}…")


def _check_after(after: int) -> None:
    if isinstance(after, bool) or not isinstance(after, int) or after < 0:
        raise ValueError(f"'after' must be an int >= 0, got {after!r}")


# json.dumps(event, ensure_ascii=False, separators=(",", ":"), allow_nan=False), with the
# encoder built once (it keeps no state between calls).
_EVENT_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def encode_events(
    events: list[Event], privacy: PrivacyPolicy | None = None
) -> list[tuple[str, float | None, str]]:
    """``(type_name, timestamp, json)`` per event, as ``privacy`` stores it (None: as it is);
    a bad event raises ``ValueError`` up front."""
    if not isinstance(events, list):
        raise ValueError(f"events must be a list of event dicts, got {type(events).__name__}")
    rows = []
    for i, event in enumerate(events):
        name = event.get("event") if isinstance(event, dict) else None
        if not isinstance(name, str) or not name or len(name) > MAX_ID_LENGTH:
            raise ValueError(f"event {i} must be a dict with an 'event' name, got {event!r:.80}")
        stamp = event.get("timestamp")
        if stamp is not None and (isinstance(stamp, bool) or not isinstance(stamp, int | float)):
            raise ValueError(f"event {i} ({name}): 'timestamp' must be a number, got {stamp!r}")
        try:
            data = _EVENT_JSON.encode(event if privacy is None else privacy.store_event(event))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"event {i} ({name}) is not JSON-serialisable: {exc}") from exc
        rows.append((name, None if stamp is None else float(stamp), data))
    return rows


_ENCRYPTED_MARK = f'"{ENCRYPTED}":'


def decode_events(rows: list[str], privacy: PrivacyPolicy) -> list[Event]:
    """The stored JSON rows as events; those with an encrypted original decrypted when
    ``privacy`` has the key (otherwise they read as stored, masked)."""
    loads = json.loads
    return [
        privacy.load_event(loads(data)) if _ENCRYPTED_MARK in data else loads(data) for data in rows
    ]


class InMemoryTrackerStore(TrackerStore):
    """Keeps events in a dict, as JSON so callers never share mutable state with the store."""

    def __init__(self, privacy: PrivacyPolicy | None = None) -> None:
        self._logs: dict[str, list[str]] = {}
        self.privacy = privacy or PrivacyPolicy.from_env(os.environ)

    async def append(self, sender_id: str, events: list[Event]) -> None:
        _check_sender(sender_id)
        rows = encode_events(events, self.privacy)
        if rows:
            key = self.privacy.sender_key(sender_id)
            self._logs.setdefault(key, []).extend(data for _, _, data in rows)

    async def events(self, sender_id: str, after: int = 0) -> list[Event]:
        _check_after(after)
        rows = self._logs.get(self.privacy.sender_key(sender_id), [])[after:]
        return decode_events(rows, self.privacy)

    async def count(self, sender_id: str) -> int:
        return len(self._logs.get(self.privacy.sender_key(sender_id), ()))

    async def forget(self, sender_ids: list[str], stored_keys: bool = False) -> int:
        gone = 0
        for sender_id in sender_ids:
            key = sender_id if stored_keys else self.privacy.sender_key(sender_id)
            gone += len(self._logs.pop(key, ()))
        return gone

    async def idle_since(self, cutoff: float) -> list[str]:
        idle = []
        for sender, rows in sorted(self._logs.items()):
            stamps = [e.get("timestamp") for e in decode_events(rows, self.privacy)]
            newest = max((float(t) for t in stamps if isinstance(t, int | float)), default=None)
            if newest is not None and newest < cutoff:
                idle.append(sender)
        return idle

    async def senders(self) -> list[str]:
        return sorted(self._logs)


def _sqlalchemy() -> Any:
    try:
        import sqlalchemy
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise ImportError("SQLTrackerStore needs SQLAlchemy: pip install sqlalchemy") from exc
    return sqlalchemy


def events_table(name: str = "events", schema: str | None = None) -> Table:
    """The ``events`` table; ``UNIQUE(sender_id, seq)`` is also the index on ``sender_id``."""
    sa = _sqlalchemy()
    table: Table = sa.Table(
        name,
        sa.MetaData(schema=schema),
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),  # SQLite rowid alias
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("sender_id", sa.String(MAX_ID_LENGTH), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("type_name", sa.String(MAX_ID_LENGTH), nullable=False),
        sa.Column("timestamp", sa.Float, nullable=True),
        sa.Column("data", sa.Text, nullable=False),
        sa.UniqueConstraint("sender_id", "seq", name=f"uq_{name}_sender_seq"),
    )
    return table


def _enable_wal(cursor: Any, busy_timeout: float) -> None:
    """Switch a SQLite file to WAL (a persistent setting). Switching needs a moment alone with
    the file and does not wait through the busy handler, so a fresh database opened by several
    processes at once retries here."""
    if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
        return
    deadline = time.monotonic() + busy_timeout
    while True:
        try:
            mode = str(cursor.execute("PRAGMA journal_mode=WAL").fetchone()[0]).lower()
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
    if mode != "wal":
        logger.warning("SQLite refused WAL mode (journal_mode=%s); is this a network drive?", mode)


def _lock_key(sender_id: str) -> int:
    """A stable signed 64-bit key for PostgreSQL's advisory lock on one conversation."""
    digest = hashlib.blake2b(sender_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class _Statement:
    """A Core statement compiled once for the engine's dialect and run with
    ``exec_driver_sql``: no statement building, cache-key generation or compilation per call."""

    __slots__ = ("_defaults", "_names", "sql")

    def __init__(self, statement: Any, dialect: Any) -> None:
        compiled = statement.compile(dialect=dialect)
        self.sql = str(compiled)
        self._defaults: dict[str, Any] = dict(compiled.params)
        # qmark/format dialects (SQLite) take a tuple in the order of the placeholders;
        # named ones (psycopg) a dict.
        self._names: tuple[str, ...] | None = (
            tuple(compiled.positiontup or ()) if dialect.positional else None
        )

    def params(self, values: Mapping[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        if self._names is None:
            return {**self._defaults, **values}
        defaults = self._defaults
        return tuple(values[n] if n in values else defaults[n] for n in self._names)


class _Checkpointer:
    """A daemon thread checkpointing the WAL on its own connection after every
    :data:`CHECKPOINT_EVERY` appends or :data:`CHECKPOINT_INTERVAL` seconds.

    A first ``PRAGMA wal_checkpoint(PASSIVE)`` copies the bulk while appends go on (with its
    fsyncs, the slow part); a second one, holding the store's write lock, copies the few
    frames appended meanwhile. Nothing of this process is appended during the second, so
    the checkpoint catches up with the whole WAL and the next write starts the file over
    (otherwise it would grow for as long as appends keep coming)."""

    def __init__(self, engine: Engine, lock: threading.Lock) -> None:
        self._engine = engine
        self._lock = lock
        self._wake = threading.Event()
        self._stopping = False
        self._count = 0
        self.completed = 0  # checkpoints done (for tests and diagnostics)
        self._thread = threading.Thread(target=self._run, name="tracker-checkpoint", daemon=True)
        self._thread.start()

    def request(self) -> None:
        """Checkpoint now rather than after the next :data:`CHECKPOINT_EVERY` appends."""
        self._wake.set()

    def appended(self) -> None:
        self._count += 1
        if self._count >= CHECKPOINT_EVERY:
            self._count = 0
            self._wake.set()

    def _checkpoint(self, cursor: Any) -> None:
        cursor.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        with self._lock:
            cursor.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def _run(self) -> None:
        raw: Any = None
        while not self._stopping:
            self._wake.wait(CHECKPOINT_INTERVAL)
            self._wake.clear()
            if self._stopping:
                break
            try:
                if raw is None:
                    raw = self._engine.raw_connection()
                cursor = raw.cursor()
                self._checkpoint(cursor)
                cursor.close()
                self.completed += 1
            except Exception as exc:  # retried next time with a new connection
                logger.warning("WAL checkpoint failed: %s", exc)
                with contextlib.suppress(Exception):
                    raw.close()
                raw = None
        if raw is not None:
            with contextlib.suppress(Exception):
                raw.close()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        self._thread.join()


def _execute(cursor: Any, sql: str, params: Any = (), *, many: bool = False) -> Any:
    """A statement on a DBAPI cursor of SQLite; its errors raised as SQLAlchemy's (as
    ``Connection.execute`` would: ``sqlalchemy.exc.OperationalError`` …)."""
    try:
        return cursor.executemany(sql, params) if many else cursor.execute(sql, params)
    except sqlite3.Error as exc:
        sa = _sqlalchemy()
        raise sa.exc.DBAPIError.instance(sql, params, exc, sqlite3.Error) from exc


class SQLTrackerStore(TrackerStore):
    """Events in a SQL table through SQLAlchemy: SQLite (WAL) by default, PostgreSQL to scale out.

    Blocking database calls run on a thread pool of ``pool_size`` threads (one connection each)
    or, with ``run_inline=True``, directly on the event loop. The default (``None``) runs a
    local SQLite file inline (its statements take microseconds; a thread hop costs more) and
    a database server on the pool. Inline SQLite keeps two connections open for the store's
    lifetime, one for reads (each statement its own transaction) and one for appends;
    otherwise every call checks a connection out of the pool.
    On SQLite, appends take the write lock up front (``BEGIN IMMEDIATE``) and wait up to
    ``busy_timeout`` seconds for another process; on PostgreSQL two appends that pick the same
    ``seq`` collide on the unique constraint and the loser retries.
    Statements are compiled once, in ``__init__``.
    """

    def __init__(
        self,
        url: str,
        *,
        table: str = "events",
        schema: str | None = None,
        run_inline: bool | None = None,
        busy_timeout: float = 30.0,
        synchronous: str = "NORMAL",
        pool_size: int = 5,
        max_overflow: int = 10,
        max_retries: int = 30,
        echo: bool = False,
        privacy: PrivacyPolicy | None = None,
    ) -> None:
        sa = _sqlalchemy()
        self.privacy = privacy or PrivacyPolicy.from_env(os.environ)
        self.url = sa.make_url(url)
        self.dialect: str = self.url.get_backend_name()
        self._run_inline = self.dialect == "sqlite" if run_inline is None else run_inline
        self._max_retries = max_retries
        self._table = events_table(table, schema)
        # One process-wide writer on SQLite: in-process appends queue here instead of
        # spinning in SQLite's busy handler. Other processes wait through busy_timeout.
        self._write_lock: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
        self._read_lock: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
        # Inline SQLite: two long-lived connections, opened on first use (see _reading_cursor).
        self._keep_connections = self.dialect == "sqlite" and self._run_inline
        self._reader: Any = None
        self._writer: Connection | None = None
        self._checkpointer: _Checkpointer | None = None
        self._sqlite_lock: threading.Lock | None = None  # the write lock, on SQLite
        if self.dialect == "sqlite":
            self._engine = self._sqlite_engine(busy_timeout, synchronous, pool_size, echo)
            self._write_lock = self._sqlite_lock = threading.Lock()
            if self._sqlite_memory:  # one shared connection: serialise everything
                self._read_lock = self._write_lock
            elif self._keep_connections:  # the one reading connection: one thread at a time
                self._read_lock = threading.Lock()
        else:
            # pool_pre_ping: a connection cut while idle is replaced at checkout, so the store
            # recovers by itself after an outage; connect_timeout: a server that does not
            # answer fails the call (a 503) instead of holding the turn.
            connect_args: dict[str, Any] = {}
            if self.dialect == "postgresql" and "connect_timeout" not in self.url.query:
                connect_args["connect_timeout"] = 5
            self._engine = sa.create_engine(
                self.url,
                pool_size=pool_size,
                max_overflow=max_overflow,
                pool_pre_ping=True,
                connect_args=connect_args,
                echo=echo,
            )
        self._executor = ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix="tracker")
        self._prepare_statements()
        self._create_table()

    @property
    def _sqlite_memory(self) -> bool:
        return self.dialect == "sqlite" and self.url.database in (None, "", ":memory:")

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def table(self) -> Table:
        return self._table

    def _sqlite_engine(
        self, busy_timeout: float, synchronous: str, pool_size: int, echo: bool
    ) -> Engine:
        sa = _sqlalchemy()
        from sqlalchemy.pool import QueuePool, StaticPool

        synchronous = synchronous.upper()
        if synchronous not in _SYNCHRONOUS:
            raise ConfigError(f"synchronous must be one of {sorted(_SYNCHRONOUS)}: {synchronous}")
        memory = self._sqlite_memory
        if not memory:
            Path(str(self.url.database)).expanduser().parent.mkdir(parents=True, exist_ok=True)
        if self._keep_connections:
            pool_size += 3  # the kept reading and writing connections, and the checkpointer's
        engine: Engine = sa.create_engine(
            self.url,
            connect_args={"timeout": busy_timeout, "check_same_thread": False},
            poolclass=StaticPool if memory else QueuePool,
            **({} if memory else {"pool_size": pool_size, "max_overflow": 0}),
            echo=echo,
        )

        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # transactions are begun in _on_begin
            cursor = dbapi_connection.cursor()
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
            if not memory:
                _enable_wal(cursor, busy_timeout)
            cursor.execute(f"PRAGMA synchronous={synchronous}")
            cursor.close()

        def _on_begin(connection: Any) -> None:
            # sqlite_begin=None: no BEGIN, each statement is its own transaction (the
            # long-lived reading connection: every read sees the latest commit).
            mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
            if mode:
                connection.exec_driver_sql(f"BEGIN {mode}")

        sa.event.listen(engine, "connect", _on_connect)
        sa.event.listen(engine, "begin", _on_begin)
        return engine

    def _prepare_statements(self) -> None:
        sa = _sqlalchemy()
        t = self._table
        dialect = self._engine.dialect
        last_seq = sa.func.coalesce(sa.func.max(t.c.seq), 0)
        # One INSERT per event whose seq is computed in the statement: the conversation's
        # max(seq) + 1, which sees the batch's earlier rows (same transaction, taken under
        # the write lock on SQLite and the conversation's advisory lock on PostgreSQL).
        next_row = sa.select(
            sa.bindparam("sender_id", type_=t.c.sender_id.type),
            last_seq + 1,
            sa.bindparam("type_name", type_=t.c.type_name.type),
            sa.bindparam("timestamp", type_=t.c.timestamp.type),
            sa.bindparam("data", type_=t.c.data.type),
        ).where(t.c.sender_id == sa.bindparam("owner", type_=t.c.sender_id.type))
        self._insert_rows = _Statement(
            sa.insert(t).from_select(
                ["sender_id", "seq", "type_name", "timestamp", "data"], next_row
            ),
            dialect,
        )
        sender = sa.bindparam("sender", type_=t.c.sender_id.type)
        self._select_after = _Statement(
            sa.select(t.c.data)
            .where(t.c.sender_id == sender, t.c.seq > sa.bindparam("after", type_=sa.Integer))
            .order_by(t.c.seq),
            dialect,
        )
        # seq is dense (1..n) because appends are all-or-none, so max(seq) is the count.
        self._select_count = _Statement(sa.select(last_seq).where(t.c.sender_id == sender), dialect)
        self._select_exists = _Statement(
            sa.select(t.c.seq).where(t.c.sender_id == sender).limit(1), dialect
        )
        self._select_senders = _Statement(
            sa.select(t.c.sender_id).where(t.c.seq == 1).order_by(t.c.sender_id), dialect
        )

    def _create_table(self) -> None:
        def create() -> None:
            with self._write_lock, self._engine.connect() as conn:
                conn.execution_options(sqlite_begin="IMMEDIATE")
                with conn.begin():
                    self._table.metadata.create_all(conn)

        create_racing(create)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._run_inline:
            return fn(*args)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args))

    # --- blocking parts -------------------------------------------------------------------

    # Inline SQLite keeps its connections: the reading one is SQLAlchemy's pooled DBAPI
    # connection used directly (no transaction: every SELECT sees the latest commit); the
    # writing one is a SQLAlchemy connection whose INSERTs go through ``exec_driver_sql`` (so
    # engine events see them) between a BEGIN IMMEDIATE and a COMMIT on its DBAPI cursor.
    # A failed call drops its connection, which is reopened on next use.

    def _reading_cursor(self) -> Any:
        if self._reader is None:
            self._reader = self._engine.raw_connection()
        return self._reader.cursor()

    def _writing_connection(self) -> Connection:
        if self._writer is None:
            conn = self._engine.connect()
            conn.execution_options(sqlite_begin=None)  # BEGIN IMMEDIATE is ours
            if not self._sqlite_memory:
                # No checkpoint inside a COMMIT on the event loop: _Checkpointer's thread
                # does them (a checkpoint's fsync takes milliseconds).
                conn.exec_driver_sql("PRAGMA wal_autocheckpoint=0")
                if self._checkpointer is None and self._sqlite_lock is not None:
                    self._checkpointer = _Checkpointer(self._engine, self._sqlite_lock)
            self._writer = conn
        return self._writer

    def _drop_connections(self, *, reader: bool = False, writer: bool = False) -> None:
        if reader and self._reader is not None:
            raw, self._reader = self._reader, None
            with contextlib.suppress(Exception):
                raw.close()
        if writer and self._writer is not None:
            conn, self._writer = self._writer, None
            with contextlib.suppress(Exception):
                conn.close()

    def _insert_kept(self, params: list[Any]) -> None:
        conn = self._writing_connection()
        sql = self._insert_rows.sql
        engine = self._engine
        # Through exec_driver_sql when anything watches statements (echo, cursor events);
        # otherwise straight on the DBAPI cursor of the same connection.
        watched = bool(
            engine.echo
            or engine.dispatch.before_cursor_execute
            or engine.dispatch.after_cursor_execute
            or engine.dialect.dispatch.handle_error
        )
        try:
            cursor = conn.connection.cursor()
            try:
                _execute(cursor, "BEGIN IMMEDIATE")
                try:
                    if watched:
                        conn.exec_driver_sql(sql, params)
                    else:
                        _execute(cursor, sql, params, many=True)
                    _execute(cursor, "COMMIT")
                except BaseException:
                    # (SQLite may have rolled back already, e.g. after an I/O error)
                    with contextlib.suppress(Exception):
                        _execute(cursor, "ROLLBACK")
                    raise
            finally:
                cursor.close()
        except BaseException:
            self._drop_connections(writer=True)
            raise
        if self._checkpointer is not None:
            self._checkpointer.appended()

    def _insert_pooled(self, sender_id: str, params: list[Any]) -> None:
        with self._engine.connect() as conn:
            conn.execution_options(sqlite_begin="IMMEDIATE")
            with conn.begin():
                if self.dialect == "postgresql":  # queue, rather than collide and retry
                    conn.exec_driver_sql(_PG_XACT_LOCK, {"key": _lock_key(sender_id)})
                conn.exec_driver_sql(self._insert_rows.sql, params)

    def _insert(self, sender_id: str, params: list[Any]) -> None:
        """One append; the caller holds the write lock."""
        if self._keep_connections:
            self._insert_kept(params)
        else:
            self._insert_pooled(sender_id, params)

    def _params(self, sender_id: str, rows: list[tuple[str, float | None, str]]) -> list[Any]:
        insert = self._insert_rows
        return [
            insert.params(
                {
                    "sender_id": sender_id,
                    "type_name": name,
                    "timestamp": stamp,
                    "data": data,
                    "owner": sender_id,
                }
            )
            for name, stamp, data in rows
        ]

    def _append_sync(self, sender_id: str, params: list[Any]) -> None:
        sa = _sqlalchemy()
        for attempt in range(self._max_retries + 1):
            try:
                with self._write_lock:
                    self._insert(sender_id, params)
                return
            except sa.exc.IntegrityError:
                if attempt >= self._max_retries:
                    raise
                logger.debug("seq collision appending to %s, retry %d", sender_id, attempt + 1)
                time.sleep(random.uniform(0, min(0.1, 0.002 * 2**attempt)))

    def _select_sync(self, statement: _Statement, values: Mapping[str, Any]) -> list[Any]:
        params = statement.params(values)
        with self._read_lock:
            if self._keep_connections:
                try:
                    cursor = self._reading_cursor()
                    try:
                        return [row[0] for row in _execute(cursor, statement.sql, params)]
                    finally:
                        cursor.close()
                except BaseException:
                    self._drop_connections(reader=True)
                    raise
            with self._engine.connect() as conn:
                return list(conn.exec_driver_sql(statement.sql, params).scalars())

    # --- interface --------------------------------------------------------------------------

    async def append(self, sender_id: str, events: list[Event]) -> None:
        _check_sender(sender_id)
        rows = encode_events(events, self.privacy)
        if not rows:
            return
        key = self.privacy.sender_key(sender_id)
        params = self._params(key, rows)
        await self._run(self._append_sync, key, params)

    async def events(self, sender_id: str, after: int = 0) -> list[Event]:
        _check_after(after)
        values = {"sender": self.privacy.sender_key(sender_id), "after": after}
        rows = await self._run(self._select_sync, self._select_after, values)
        return decode_events(rows, self.privacy)

    async def count(self, sender_id: str) -> int:
        values = {"sender": self.privacy.sender_key(sender_id)}
        return int((await self._run(self._select_sync, self._select_count, values))[0])

    async def exists(self, sender_id: str) -> bool:
        values = {"sender": self.privacy.sender_key(sender_id)}
        return bool(await self._run(self._select_sync, self._select_exists, values))

    async def senders(self) -> list[str]:
        return [str(s) for s in await self._run(self._select_sync, self._select_senders, {})]

    async def forget(self, sender_ids: list[str], stored_keys: bool = False) -> int:
        keys = sorted(
            set(sender_ids) if stored_keys else {self.privacy.sender_key(s) for s in sender_ids}
        )
        return await self._run(self._delete_sync, keys) if keys else 0

    async def idle_since(self, cutoff: float) -> list[str]:
        sa = _sqlalchemy()
        t = self._table
        query = (
            sa.select(t.c.sender_id)
            .group_by(t.c.sender_id)
            .having(sa.func.max(t.c.timestamp) < cutoff)
            .order_by(t.c.sender_id)
        )
        return [str(s) for s in await self._run(self._query_sync, query)]

    async def with_slot(self, name: str, value: str) -> list[str]:
        sa = _sqlalchemy()
        t = self._table
        query = (
            sa.select(t.c.sender_id, t.c.data)
            .where(t.c.type_name == "slot", t.c.data.contains(json.dumps(name)))
            .order_by(t.c.id)
        )
        wanted = {value, self.privacy.store_text(value)}
        found: dict[str, None] = {}
        for sender, data in await self._run(self._query_sync, query, False):
            event = json.loads(data)
            if event.get("name") == name and event.get("value") in wanted:
                found[str(sender)] = None
        return list(found)

    async def reapply_privacy(self, dry_run: bool = False) -> tuple[int, int]:
        """Rewrite the rows stored before the policy (an upgrade, or ``keep`` changed to
        ``mask``): events masked (and encrypted) and sender ids keyed as :attr:`privacy`
        writes them now, in one transaction. ``(rows changed, conversations skipped)``: a
        conversation is skipped when it also exists under its new key already (it went on
        after the upgrade; the two cannot be merged in place)."""
        return await self._run(self._reapply_sync, dry_run)

    def _reapply_sync(self, dry_run: bool) -> tuple[int, int]:
        sa = _sqlalchemy()
        t = self._table
        changed = 0
        with self._write_lock:
            self._drop_connections(writer=True)
            with self._engine.connect() as conn:
                conn.execution_options(sqlite_begin="IMMEDIATE")
                with conn.begin():
                    distinct = sa.select(t.c.sender_id).distinct()
                    senders = {str(s) for s in conn.execute(distinct).scalars()}
                    moved = {s: self.privacy.sender_key(s) for s in senders}
                    clash = {s for s, key in moved.items() if key != s and key in senders}
                    rows = conn.execute(sa.select(t.c.id, t.c.sender_id, t.c.data)).all()
                    for row_id, sender, data in rows:
                        if sender in clash:
                            continue
                        [event] = decode_events([data], self.privacy)
                        new_data = _EVENT_JSON.encode(self.privacy.store_event(event))
                        new_sender = moved[sender]
                        if new_data == data and new_sender == sender:
                            continue
                        changed += 1
                        if not dry_run:
                            update = sa.update(t).where(t.c.id == row_id)
                            conn.execute(update.values(data=new_data, sender_id=new_sender))
        return changed, len(clash)

    async def rotate_keys(self, dry_run: bool = False) -> int:
        """Re-encrypt every stored original under the first key of the policy (policy
        encrypt, ``bot privacy rotate-key``); how many events."""
        return await self._run(self._rotate_sync, dry_run)

    def _rotate_sync(self, dry_run: bool) -> int:
        sa = _sqlalchemy()
        t = self._table
        with self._write_lock:
            self._drop_connections(writer=True)
            with self._engine.connect() as conn:
                conn.execution_options(sqlite_begin="IMMEDIATE")
                with conn.begin():
                    query = sa.select(t.c.id, t.c.data).where(t.c.data.contains(_ENCRYPTED_MARK))
                    rows = conn.execute(query).all()
                    for row_id, data in rows:
                        event = json.loads(data)
                        token = event.get(ENCRYPTED)
                        if not isinstance(token, str) or dry_run:
                            continue
                        event[ENCRYPTED] = self.privacy.rotate(token)
                        update = sa.update(t).where(t.c.id == row_id)
                        conn.execute(update.values(data=_EVENT_JSON.encode(event)))
        return len(rows)

    def _query_sync(self, query: Any, scalars: bool = True) -> list[Any]:
        with self._read_lock, self._engine.connect() as conn:
            result = conn.execute(query)
            return list(result.scalars() if scalars else result.all())

    def _delete_sync(self, keys: list[str]) -> int:
        sa = _sqlalchemy()
        t = self._table
        deleted = 0
        with self._write_lock:
            self._drop_connections(writer=True)  # the kept writer reopens on next append
            with self._engine.connect() as conn:
                conn.execution_options(sqlite_begin="IMMEDIATE")
                with conn.begin():
                    for start in range(0, len(keys), 500):
                        chunk = keys[start : start + 500]
                        result = conn.execute(sa.delete(t).where(t.c.sender_id.in_(chunk)))
                        deleted += int(result.rowcount or 0)
        return deleted

    async def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        with self._write_lock:
            self._drop_connections(writer=True)
        with self._read_lock:
            self._drop_connections(reader=True)
        self._executor.shutdown(wait=True)
        self._engine.dispose()


# --- configuration ------------------------------------------------------------------------

_SQL_OPTIONS = {
    "table": str,
    "schema": str,
    "run_inline": bool,
    "busy_timeout": float,
    "synchronous": str,
    "pool_size": int,
    "max_overflow": int,
    "max_retries": int,
    "echo": bool,
}
_URL_KEYS = {"url", "path", "dialect", "port", "db", "username", "password", "query"}


def normalise_db_url(url: str, project_root: Path) -> str:
    """Relative SQLite paths resolve under the project; ``postgresql://`` gets psycopg 3."""
    sa = _sqlalchemy()
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise ConfigError(f"invalid database URL {url!r}: {exc}") from exc
    if parsed.drivername in {"postgres", "postgresql"}:
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        path = Path(parsed.database).expanduser()
        if not path.is_absolute():
            parsed = parsed.set(database=str(project_root / path))
    rendered: str = parsed.render_as_string(hide_password=False)
    return rendered


def _url_from_config(cfg: Mapping[str, Any], project_root: Path) -> str:
    url = cfg.get("url")
    if isinstance(url, str) and "://" in url:
        return url
    if cfg.get("dialect"):  # Rasa's form: dialect + url (host) + port + db + username + password
        sa = _sqlalchemy()
        dialect = str(cfg["dialect"])
        database = str(cfg["db"]) if cfg.get("db") is not None else None
        if dialect == "sqlite":
            return f"sqlite:///{database or DEFAULT_SQLITE_PATH}"
        return str(
            sa.URL.create(
                dialect,
                username=cfg.get("username"),
                password=cfg.get("password"),
                host=url,
                port=int(cfg["port"]) if cfg.get("port") else None,
                database=database,
                query=cfg.get("query") or {},
            ).render_as_string(hide_password=False)
        )
    if url:
        raise ConfigError(f"tracker_store url {url!r} needs a scheme, e.g. sqlite:///data/bot.db")
    path = cfg.get("path") or DEFAULT_SQLITE_PATH
    return f"sqlite:///{path}"


def create_tracker_store(
    config: Mapping[str, Any] | None,
    project_root: Path,
    privacy: PrivacyPolicy | None = None,
) -> TrackerStore:
    """The store of ``endpoints.yml``'s ``tracker_store:`` section (``None``: SQLite default).

    ``{"type": "sql", "url": "postgresql+psycopg://..."}`` or ``{"type": "memory"}``; for SQL,
    ``$BOT_DB_URL`` overrides the URL. Without a URL the store is ``<project>/data/bankbot.db``.
    ``privacy``: the policy of ``endpoints.yml``'s ``privacy:`` (None: the default, mask).
    """
    cfg = dict(config or {})
    kind = str(cfg.pop("type", "sql")).lower().replace("_", "")
    if kind in {"memory", "inmemory", "inmemorytrackerstore"}:
        return InMemoryTrackerStore(privacy)
    if kind not in {"sql", "sqltrackerstore"}:
        raise ConfigError(f"tracker_store type {kind!r} is unknown; use 'sql' or 'memory'")
    unknown = set(cfg) - set(_SQL_OPTIONS) - _URL_KEYS
    if unknown:
        raise ConfigError(
            f"tracker_store: unknown option(s) {sorted(unknown)}; "
            f"known: {sorted(set(_SQL_OPTIONS) | _URL_KEYS)}"
        )
    options: dict[str, Any] = {}
    for key, kind_of in _SQL_OPTIONS.items():
        if key in cfg:
            value = cfg[key]
            if kind_of is bool and not isinstance(value, bool):
                raise ConfigError(f"tracker_store.{key} must be true or false, not {value!r}")
            try:
                options[key] = kind_of(value)
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"tracker_store.{key}: {exc}") from exc
    url = os.environ.get(DB_URL_ENV) or _url_from_config(cfg, project_root)
    return SQLTrackerStore(normalise_db_url(url, project_root), **options, privacy=privacy)
