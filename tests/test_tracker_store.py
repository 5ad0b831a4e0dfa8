"""Tracker stores: order, ``after``, atomicity, concurrency, restart and two writers.

PostgreSQL (``$BOT_TEST_PG_URL``, default postgres@127.0.0.1:5432/test) and Redis
(``$BOT_TEST_REDIS_URL``) tests skip with the reason when the server is not reachable.
Each test uses its own table (``events_t<random>``) and drops it afterwards.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from backends import REDIS_URL, pg_problem, pg_url, redis_problem

from bot.core.lock_store import RedisLockStore
from bot.core.tracker_store import (
    DB_URL_ENV,
    InMemoryTrackerStore,
    SQLTrackerStore,
    TrackerStore,
    create_tracker_store,
    normalise_db_url,
)
from bot.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def table_name() -> str:
    return f"events_t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A SQL URL: SQLite in tmp_path, or PostgreSQL (skipped when absent)."""
    if request.param == "postgresql":
        reason = pg_problem()
        if reason:
            pytest.skip(reason)
        return pg_url()
    return f"sqlite:///{tmp_path / 'bot.db'}"


@pytest.fixture
def redis_url() -> str:
    reason = redis_problem()
    if reason:
        pytest.skip(reason)
    return REDIS_URL


def _sql_store(url: str, table: str, **options: Any) -> SQLTrackerStore:
    return SQLTrackerStore(url, table=table, **options)


@pytest.fixture
async def cleanup(table_name: str) -> AsyncIterator[list[SQLTrackerStore]]:
    """Stores registered here are closed, and the test table dropped, after the test."""
    stores: list[SQLTrackerStore] = []
    yield stores
    if stores:
        stores[0].table.drop(stores[0].engine, checkfirst=True)
    for store in stores:
        await store.close()


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, table_name: str
) -> AsyncIterator[TrackerStore]:
    if request.param == "memory":
        yield InMemoryTrackerStore()
        return
    if request.param == "postgresql":
        reason = pg_problem()
        if reason:
            pytest.skip(reason)
        url = pg_url()
    else:
        url = f"sqlite:///{tmp_path / 'bot.db'}"
    sql = _sql_store(url, table_name)
    yield sql
    sql.table.drop(sql.engine, checkfirst=True)
    await sql.close()


def user(text: str, ts: float = 1732400000.0, **extra: Any) -> dict[str, Any]:
    return {
        "event": "user",
        "timestamp": ts,
        "text": text,
        "parse_data": {"intent": {"name": "greet", "confidence": 0.9}, "entities": []},
        "input_channel": "rest",
        "metadata": {},
        **extra,
    }


def bot(text: str, ts: float = 1732400000.5, **extra: Any) -> dict[str, Any]:
    return {"event": "bot", "timestamp": ts, "text": text, "data": {}, "metadata": {}, **extra}


# --- basics ---------------------------------------------------------------------------------


async def test_append_and_read_back_in_order(store: TrackerStore) -> None:
    first = [user("你好"), bot("您好，请问有什么可以帮您？")]
    second = [{"event": "action", "timestamp": 1732400001.0, "name": "action_listen"}]
    assert not await store.exists("alice")
    assert await store.count("alice") == 0
    assert await store.events("alice") == []

    await store.append("alice", first)
    await store.append("alice", second)
    await store.append("bob", [user("查余额")])
    await store.append("carol", [])  # nothing appended: no conversation

    assert await store.events("alice") == first + second
    assert await store.count("alice") == 3
    assert await store.exists("alice") and await store.exists("bob")
    assert not await store.exists("carol")
    assert await store.senders() == ["alice", "bob"]


async def test_after_skips_events_already_seen(store: TrackerStore) -> None:
    events = [user(f"m{i}", ts=1732400000.0 + i) for i in range(5)]
    await store.append("s", events)
    assert await store.events("s", after=0) == events
    assert await store.events("s", after=2) == events[2:]
    assert await store.events("s", after=5) == []
    assert await store.events("s", after=50) == []
    with pytest.raises(ValueError, match="after"):
        await store.events("s", after=-1)


async def test_timestamps_and_unicode_survive_exactly(store: TrackerStore) -> None:
    event = user("转账５００元给张三 🙂", ts=1732400000.123456, metadata={"k": [1, 2.5, None]})
    await store.append("u", [event])
    assert await store.events("u") == [event]


async def test_stored_events_are_not_shared_with_the_caller(store: TrackerStore) -> None:
    event = user("hi")
    await store.append("c", [event])
    event["text"] = "changed"
    read = await store.events("c")
    read[0]["text"] = "changed too"
    assert (await store.events("c"))[0]["text"] == "hi"


async def test_append_is_all_or_nothing_for_bad_events(store: TrackerStore) -> None:
    await store.append("a", [user("one")])
    bad_batches: list[Any] = [
        [user("two"), {"event": "bot", "timestamp": 1.0, "data": object()}],  # not JSON
        [user("two"), {"timestamp": 1.0}],  # no event name
        [user("two"), {"event": "bot", "timestamp": "yesterday"}],
        [user("two"), {"event": "bot", "timestamp": float("nan")}],
        [user("two"), "not a dict"],
    ]
    for batch in bad_batches:
        with pytest.raises(ValueError):
            await store.append("a", batch)
    assert [e["text"] for e in await store.events("a")] == ["one"]
    with pytest.raises(ValueError, match="sender_id"):
        await store.append("", [user("x")])
    with pytest.raises(ValueError, match="sender_id"):
        await store.append("x" * 256, [user("x")])


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
async def test_a_failing_insert_rolls_back_the_whole_batch(
    db_url: str, table_name: str, cleanup: list[SQLTrackerStore]
) -> None:
    store = _sql_store(db_url, table_name)
    cleanup.append(store)
    await store.append("a", [user("one")])

    def fail_after_insert(*args: Any) -> None:
        statement = args[2]
        if statement.lstrip().upper().startswith("INSERT"):
            raise RuntimeError("disk full (simulated) after the rows were inserted")

    sa.event.listen(store.engine, "after_cursor_execute", fail_after_insert)
    with pytest.raises(RuntimeError, match="simulated"):
        await store.append("a", [user("two"), user("three"), user("four")])
    sa.event.remove(store.engine, "after_cursor_execute", fail_after_insert)

    assert await store.count("a") == 1
    await store.append("a", [user("five")])
    assert [e["text"] for e in await store.events("a")] == ["one", "five"]
    with store.engine.connect() as conn:
        seqs = conn.execute(sa.select(store.table.c.seq).order_by(store.table.c.seq)).scalars()
        assert list(seqs) == [1, 2]


# --- concurrency ----------------------------------------------------------------------------


async def test_many_conversations_concurrently_lose_and_reorder_nothing(
    store: TrackerStore,
) -> None:
    conversations, turns, at_a_time = 200, 10, 50
    gate = asyncio.Semaphore(at_a_time)

    async def converse(c: int) -> None:
        async with gate:
            for t in range(turns):
                await store.append(
                    f"conv-{c:03d}",
                    [user(f"{c}/{t}", turn=t), bot(f"reply {c}/{t}", turn=t)],
                )
                if t % 3 == 0:  # the engine reads what it has not seen yet
                    seen = await store.events(f"conv-{c:03d}", after=2 * t)
                    assert [e["turn"] for e in seen] == [t, t]

    await asyncio.gather(*(converse(c) for c in range(conversations)))

    senders = await store.senders()
    assert senders == [f"conv-{c:03d}" for c in range(conversations)]
    for c in range(conversations):
        events = await store.events(f"conv-{c:03d}")
        assert [(e["event"], e["turn"]) for e in events] == [
            (kind, t) for t in range(turns) for kind in ("user", "bot")
        ]
        assert {e["text"].split()[-1] for e in events} == {f"{c}/{t}" for t in range(turns)}


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
async def test_two_writers_on_one_conversation_get_a_dense_sequence(
    db_url: str, table_name: str, cleanup: list[SQLTrackerStore]
) -> None:
    """No lock: concurrent appends from two store objects still number events 1..n and keep
    each batch contiguous (the per-conversation seq is assigned inside the transaction)."""
    a, b = _sql_store(db_url, table_name), _sql_store(db_url, table_name)
    cleanup.extend([a, b])
    batches = 120

    async def write(i: int) -> None:
        store = a if i % 2 else b
        await store.append("shared", [user(f"{i}", batch=i, k=k) for k in range(3)])

    await asyncio.gather(*(write(i) for i in range(batches)))

    events = await a.events("shared")
    assert len(events) == 3 * batches
    for start in range(0, len(events), 3):
        chunk = events[start : start + 3]
        assert [e["k"] for e in chunk] == [0, 1, 2]
        assert len({e["batch"] for e in chunk}) == 1
    assert sorted({e["batch"] for e in events}) == list(range(batches))
    with a.engine.connect() as conn:
        seqs = conn.execute(sa.select(a.table.c.seq).where(a.table.c.sender_id == "shared"))
        assert sorted(seqs.scalars()) == list(range(1, 3 * batches + 1))


@pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
async def test_two_processes_under_a_redis_lock_produce_a_consistent_conversation(
    db_url: str, redis_url: str, table_name: str, cleanup: list[SQLTrackerStore]
) -> None:
    """Two (store, lock store) pairs stand for two server processes. Each message reads the
    conversation and appends events that depend on what it read; the lock makes that safe."""
    prefix = f"bankbot-test-{uuid.uuid4().hex[:8]}:"
    processes = [
        (_sql_store(db_url, table_name), RedisLockStore(redis_url, key_prefix=prefix))
        for _ in range(2)
    ]
    cleanup.extend(store for store, _ in processes)
    messages = 60

    async def handle(i: int) -> None:
        store, locks = processes[i % 2]
        async with locks.lock("customer-1", wait_timeout=30):
            n = await store.count("customer-1")
            await asyncio.sleep(0)  # give the other "process" every chance to interleave
            await store.append("customer-1", [user(f"q{i}", n=n), bot(f"a{i}", n=n + 1)])

    try:
        await asyncio.gather(*(handle(i) for i in range(messages)))
    finally:
        for _, locks in processes:
            await locks.close()

    events = await processes[1][0].events("customer-1")
    assert len(events) == 2 * messages
    assert [e["n"] for e in events] == list(range(2 * messages))
    assert [e["event"] for e in events] == ["user", "bot"] * messages


# --- persistence ----------------------------------------------------------------------------


async def test_two_os_processes_append_to_one_sqlite_file(tmp_path: Path, table_name: str) -> None:
    """Real processes, no lock: SQLite's write lock (BEGIN IMMEDIATE + busy timeout) keeps
    every batch whole and each process's batches in its own order."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    script = (
        "import asyncio, sys\n"
        "from bot.core.tracker_store import SQLTrackerStore\n"
        "async def main():\n"
        "    store = SQLTrackerStore(sys.argv[1], table=sys.argv[2])\n"
        "    for i in range(100):\n"
        "        batch = [{'event': 'user', 'timestamp': 0, 'proc': sys.argv[3], 'i': i, 'k': k}\n"
        "                 for k in range(2)]\n"
        "        await store.append('shared', batch)\n"
        "    await store.close()\n"
        "asyncio.run(main())\n"
    )
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", script, url, table_name, name, cwd=ROOT
        )
        for name in ("a", "b")
    ]
    assert [await proc.wait() for proc in procs] == [0, 0]

    store = _sql_store(url, table_name)
    events = await store.events("shared")
    await store.close()
    assert len(events) == 400
    pairs = [events[j : j + 2] for j in range(0, 400, 2)]
    assert all([e["k"] for e in pair] == [0, 1] for pair in pairs)
    assert all(pair[0]["proc"] == pair[1]["proc"] for pair in pairs)
    for name in ("a", "b"):
        assert [pair[0]["i"] for pair in pairs if pair[0]["proc"] == name] == list(range(100))


async def test_sqlite_restart_sees_every_conversation(tmp_path: Path, table_name: str) -> None:
    url = f"sqlite:///{tmp_path / 'data' / 'bankbot.db'}"
    first = _sql_store(url, table_name)
    for c in range(5):
        await first.append(f"c{c}", [user(f"hello {c}"), bot("hi")])
    await first.close()

    second = _sql_store(url, table_name)  # a restarted server
    assert await second.senders() == [f"c{c}" for c in range(5)]
    await second.append("c0", [user("again")])
    third = _sql_store(url, table_name)  # another process while the second still runs
    assert [e["text"] for e in await third.events("c0")] == ["hello 0", "hi", "again"]
    await second.close()
    await third.close()


async def test_sqlite_uses_wal_and_a_busy_timeout(tmp_path: Path, table_name: str) -> None:
    store = _sql_store(f"sqlite:///{tmp_path / 'bot.db'}", table_name, busy_timeout=7.5)
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 7500
    await store.close()


async def test_run_inline_behaves_the_same(tmp_path: Path, table_name: str) -> None:
    store = _sql_store(f"sqlite:///{tmp_path / 'bot.db'}", table_name, run_inline=True)
    await asyncio.gather(*(store.append("c", [user(str(i))]) for i in range(20)))
    assert await store.count("c") == 20
    assert sorted(int(e["text"]) for e in await store.events("c")) == list(range(20))
    await store.close()


async def test_a_kept_reading_connection_sees_other_writers(
    tmp_path: Path, table_name: str
) -> None:
    """Inline SQLite keeps its connections; every read still sees the latest commit of any
    writer (no read transaction stays open between calls)."""
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    reader, writer = _sql_store(url, table_name), _sql_store(url, table_name)
    assert await reader.events("c") == []
    for i in range(3):
        await writer.append("c", [user(str(i))])
        assert [e["text"] for e in await reader.events("c")] == [str(j) for j in range(i + 1)]
        assert await reader.count("c") == i + 1
    await reader.close()
    await writer.close()


async def test_inline_sqlite_checkpoints_keep_the_wal_small(
    tmp_path: Path, table_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The WAL starts over after each checkpoint instead of growing for as long as appends
    come. How much piles up while one checkpoint runs depends on the disk (its fsyncs take
    10-150 ms here, long enough for a hundred fast appends), so the appends come in six
    rounds with a checkpoint after each: the WAL then holds at most about one round."""
    from bot.core import tracker_store

    monkeypatch.setattr(tracker_store, "CHECKPOINT_EVERY", 20)
    path = tmp_path / "bot.db"
    store = _sql_store(f"sqlite:///{path}", table_name)
    batch = [user("转账" * 400), bot("好的" * 400)]  # a few pages per append
    for round_ in range(6):
        for i in range(60):
            await store.append(f"c{i % 7}", batch)
            await asyncio.sleep(0)
        checkpointer = store._checkpointer
        assert checkpointer is not None
        done = checkpointer.completed
        checkpointer.request()
        for _ in range(1000):  # up to 10 s
            if checkpointer.completed > done:
                break
            await asyncio.sleep(0.01)
        assert checkpointer.completed > done, f"no checkpoint after round {round_}"
    wal = path.with_name("bot.db-wal").stat().st_size
    data = path.stat().st_size
    await store.close()
    # Without checkpoints the WAL would hold every append (more than the database).
    assert wal < data / 2, (wal, data)
    assert await _count_all(f"sqlite:///{path}", table_name) == 720


async def _count_all(url: str, table_name: str) -> int:
    store = _sql_store(url, table_name)
    try:
        return sum([await store.count(f"c{i}") for i in range(7)])
    finally:
        await store.close()


async def test_in_memory_sqlite_url_works(table_name: str) -> None:
    store = _sql_store("sqlite://", table_name)
    await asyncio.gather(*(store.append(f"c{i % 3}", [user(str(i))]) for i in range(30)))
    assert [await store.count(f"c{i}") for i in range(3)] == [10, 10, 10]
    await store.close()


# --- configuration --------------------------------------------------------------------------


@pytest.fixture
def no_db_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv(DB_URL_ENV, raising=False)
    yield


async def test_factory_defaults_to_sqlite_under_the_project(
    tmp_path: Path, no_db_env: None
) -> None:
    store = create_tracker_store(None, tmp_path)
    assert isinstance(store, SQLTrackerStore)
    assert store.url.database == str(tmp_path / "data" / "bankbot.db")
    await store.append("x", [user("hi")])
    assert (tmp_path / "data" / "bankbot.db").is_file()
    await store.close()


async def test_factory_options_and_relative_sqlite_path(tmp_path: Path, no_db_env: None) -> None:
    config = {"type": "SQL", "url": "sqlite:///var/bot.db", "table": "ev", "run_inline": True}
    store = create_tracker_store(config, tmp_path)
    assert isinstance(store, SQLTrackerStore)
    assert store.url.database == str(tmp_path / "var" / "bot.db")
    assert store.table.name == "ev"
    await store.close()
    path_store = create_tracker_store({"type": "sql", "path": "state/x.db"}, tmp_path)
    assert isinstance(path_store, SQLTrackerStore)
    assert path_store.url.database == str(tmp_path / "state" / "x.db")
    await path_store.close()


async def test_env_url_overrides_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DB_URL_ENV, f"sqlite:///{tmp_path / 'from-env.db'}")
    store = create_tracker_store({"type": "sql", "url": "sqlite:///other.db"}, tmp_path)
    assert isinstance(store, SQLTrackerStore)
    assert store.url.database == str(tmp_path / "from-env.db")
    await store.close()
    assert isinstance(create_tracker_store({"type": "memory"}, tmp_path), InMemoryTrackerStore)


def test_factory_rejects_unknown_types_and_options(tmp_path: Path, no_db_env: None) -> None:
    with pytest.raises(ConfigError, match="unknown"):
        create_tracker_store({"type": "mongo"}, tmp_path)
    with pytest.raises(ConfigError, match="tabel"):
        create_tracker_store({"type": "sql", "tabel": "x"}, tmp_path)
    with pytest.raises(ConfigError, match="run_inline"):
        create_tracker_store({"type": "sql", "run_inline": "yes"}, tmp_path)
    with pytest.raises(ConfigError, match="scheme"):
        create_tracker_store({"type": "sql", "url": "localhost"}, tmp_path)


def test_url_normalisation(tmp_path: Path) -> None:
    assert normalise_db_url("postgresql://u:p@db:5432/bot", tmp_path) == (
        "postgresql+psycopg://u:p@db:5432/bot"
    )
    assert normalise_db_url("postgres://db/bot", tmp_path) == "postgresql+psycopg://db/bot"
    assert normalise_db_url("sqlite:////abs/bot.db", tmp_path) == "sqlite:////abs/bot.db"
    assert normalise_db_url("sqlite:///rel.db", tmp_path) == f"sqlite:///{tmp_path / 'rel.db'}"
    with pytest.raises(ConfigError):
        normalise_db_url("not a url", tmp_path)


async def test_rasa_style_sql_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, table_name: str
) -> None:
    monkeypatch.delenv(DB_URL_ENV, raising=False)
    reason = pg_problem()
    if reason:
        pytest.skip(reason)
    parsed = sa.make_url(pg_url())
    config = {
        "type": "SQL",
        "dialect": "postgresql",
        "url": parsed.host,
        "port": parsed.port or 5432,
        "db": parsed.database,
        "username": parsed.username,
        "table": table_name,
    }
    store = create_tracker_store(config, tmp_path)
    assert isinstance(store, SQLTrackerStore) and store.dialect == "postgresql"
    await store.append("r", [user("hi")])
    assert await store.count("r") == 1
    store.table.drop(store.engine)
    await store.close()
