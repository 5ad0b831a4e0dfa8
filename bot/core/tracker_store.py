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

from bot.errors import ConfigError

if TYPE_CHECKING:
    from sqlalchemy import Engine, Table

logger = logging.getLogger(__name__)

T = TypeVar("T")
Event = dict[str, Any]

DB_URL_ENV = "BOT_DB_URL"
DEFAULT_SQLITE_PATH = Path("data") / "bankbot.db"
MAX_ID_LENGTH = 255
_SYNCHRONOUS = {"OFF", "NORMAL", "FULL", "EXTRA"}
_PG_XACT_LOCK = "SELECT pg_advisory_xact_lock(%(key)s)"


class TrackerStore(ABC):
    """The event log of every conversation, keyed by ``sender_id``."""

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


def encode_events(events: list[Event]) -> list[tuple[str, float | None, str]]:
    """``(type_name, timestamp, json)`` per event; a bad event raises ``ValueError`` up front."""
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
            data = json.dumps(event, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"event {i} ({name}) is not JSON-serialisable: {exc}") from exc
        rows.append((name, None if stamp is None else float(stamp), data))
    return rows


class InMemoryTrackerStore(TrackerStore):
    """Keeps events in a dict, as JSON so callers never share mutable state with the store."""

    def __init__(self) -> None:
        self._logs: dict[str, list[str]] = {}

    async def append(self, sender_id: str, events: list[Event]) -> None:
        _check_sender(sender_id)
        rows = encode_events(events)
        if rows:
            self._logs.setdefault(sender_id, []).extend(data for _, _, data in rows)

    async def events(self, sender_id: str, after: int = 0) -> list[Event]:
        _check_after(after)
        return [json.loads(data) for data in self._logs.get(sender_id, [])[after:]]

    async def count(self, sender_id: str) -> int:
        return len(self._logs.get(sender_id, ()))

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


class SQLTrackerStore(TrackerStore):
    """Events in a SQL table through SQLAlchemy: SQLite (WAL) by default, PostgreSQL to scale out.

    Blocking database calls run on a thread pool of ``pool_size`` threads (one connection each);
    ``run_inline=True`` runs them on the event loop instead, which suits a local SQLite file.
    On SQLite, appends take the write lock up front (``BEGIN IMMEDIATE``) and wait up to
    ``busy_timeout`` seconds for another process; on PostgreSQL two appends that pick the same
    ``seq`` collide on the unique constraint and the loser retries.
    """

    def __init__(
        self,
        url: str,
        *,
        table: str = "events",
        schema: str | None = None,
        run_inline: bool = False,
        busy_timeout: float = 30.0,
        synchronous: str = "NORMAL",
        pool_size: int = 5,
        max_overflow: int = 10,
        max_retries: int = 30,
        echo: bool = False,
    ) -> None:
        sa = _sqlalchemy()
        self.url = sa.make_url(url)
        self.dialect: str = self.url.get_backend_name()
        self._run_inline = run_inline
        self._max_retries = max_retries
        self._table = events_table(table, schema)
        # One process-wide writer on SQLite: in-process appends queue here instead of
        # spinning in SQLite's busy handler. Other processes wait through busy_timeout.
        self._write_lock: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
        self._read_lock: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
        if self.dialect == "sqlite":
            self._engine = self._sqlite_engine(busy_timeout, synchronous, pool_size, echo)
            self._write_lock = threading.Lock()
            if self._sqlite_memory:  # one shared connection: serialise everything
                self._read_lock = self._write_lock
        else:
            self._engine = sa.create_engine(
                self.url,
                pool_size=pool_size,
                max_overflow=max_overflow,
                pool_pre_ping=True,
                echo=echo,
            )
        self._executor = ThreadPoolExecutor(max_workers=pool_size, thread_name_prefix="tracker")
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
            mode = connection.get_execution_options().get("sqlite_begin", "DEFERRED")
            connection.exec_driver_sql(f"BEGIN {mode}")

        sa.event.listen(engine, "connect", _on_connect)
        sa.event.listen(engine, "begin", _on_begin)
        return engine

    def _create_table(self, attempts: int = 5) -> None:
        sa = _sqlalchemy()
        for attempt in range(1, attempts + 1):
            try:
                with self._write_lock, self._engine.connect() as conn:
                    conn.execution_options(sqlite_begin="IMMEDIATE")
                    with conn.begin():
                        self._table.metadata.create_all(conn)
                return
            except sa.exc.DBAPIError:  # another process created it at the same moment
                if attempt == attempts:
                    raise
                time.sleep(0.05 * attempt)

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._run_inline:
            return fn(*args)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args))

    # --- blocking parts -------------------------------------------------------------------

    def _append_sync(self, sender_id: str, rows: list[tuple[str, float | None, str]]) -> None:
        sa = _sqlalchemy()
        t = self._table
        last_seq = sa.select(sa.func.coalesce(sa.func.max(t.c.seq), 0)).where(
            t.c.sender_id == sender_id
        )
        for attempt in range(self._max_retries + 1):
            try:
                with self._write_lock, self._engine.connect() as conn:
                    conn.execution_options(sqlite_begin="IMMEDIATE")
                    with conn.begin():
                        if self.dialect == "postgresql":  # queue, rather than collide and retry
                            conn.exec_driver_sql(_PG_XACT_LOCK, {"key": _lock_key(sender_id)})
                        last = conn.execute(last_seq).scalar_one()
                        conn.execute(
                            sa.insert(t),
                            [
                                {
                                    "sender_id": sender_id,
                                    "seq": last + i,
                                    "type_name": name,
                                    "timestamp": stamp,
                                    "data": data,
                                }
                                for i, (name, stamp, data) in enumerate(rows, 1)
                            ],
                        )
                return
            except sa.exc.IntegrityError:
                if attempt >= self._max_retries:
                    raise
                logger.debug("seq collision appending to %s, retry %d", sender_id, attempt + 1)
                time.sleep(random.uniform(0, min(0.1, 0.002 * 2**attempt)))

    def _select_sync(self, query: Any) -> list[Any]:
        with self._read_lock, self._engine.connect() as conn:
            return list(conn.execute(query).scalars())

    # --- interface --------------------------------------------------------------------------

    async def append(self, sender_id: str, events: list[Event]) -> None:
        _check_sender(sender_id)
        rows = encode_events(events)
        if rows:
            await self._run(self._append_sync, sender_id, rows)

    async def events(self, sender_id: str, after: int = 0) -> list[Event]:
        _check_after(after)
        sa = _sqlalchemy()
        t = self._table
        query = (
            sa.select(t.c.data).where(t.c.sender_id == sender_id, t.c.seq > after).order_by(t.c.seq)
        )
        return [json.loads(data) for data in await self._run(self._select_sync, query)]

    async def count(self, sender_id: str) -> int:
        sa = _sqlalchemy()
        t = self._table
        # seq is dense (1..n) because appends are all-or-none, so max(seq) is the count.
        query = sa.select(sa.func.coalesce(sa.func.max(t.c.seq), 0)).where(
            t.c.sender_id == sender_id
        )
        return int((await self._run(self._select_sync, query))[0])

    async def exists(self, sender_id: str) -> bool:
        sa = _sqlalchemy()
        t = self._table
        query = sa.select(t.c.seq).where(t.c.sender_id == sender_id).limit(1)
        return bool(await self._run(self._select_sync, query))

    async def senders(self) -> list[str]:
        sa = _sqlalchemy()
        t = self._table
        query = sa.select(t.c.sender_id).where(t.c.seq == 1).order_by(t.c.sender_id)
        return [str(s) for s in await self._run(self._select_sync, query)]

    async def close(self) -> None:
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


def create_tracker_store(config: Mapping[str, Any] | None, project_root: Path) -> TrackerStore:
    """The store of ``endpoints.yml``'s ``tracker_store:`` section (``None``: SQLite default).

    ``{"type": "sql", "url": "postgresql+psycopg://..."}`` or ``{"type": "memory"}``; for SQL,
    ``$BOT_DB_URL`` overrides the URL. Without a URL the store is ``<project>/data/bankbot.db``.
    """
    cfg = dict(config or {})
    kind = str(cfg.pop("type", "sql")).lower().replace("_", "")
    if kind in {"memory", "inmemory", "inmemorytrackerstore"}:
        return InMemoryTrackerStore()
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
    return SQLTrackerStore(normalise_db_url(url, project_root), **options)
