"""Tracker store throughput: appends/s under concurrency, and read latency p50/p99.

    .venv/bin/python bench/store_throughput.py [--conversations 200] [--turns 10]
        [--concurrency 50] [--reads 2000] [--pg-url postgresql+psycopg://...] [--redis-url ...]

Each turn appends a user and a bot event (about 0.5 KB of JSON) to its conversation, as the
engine does; ``concurrency`` conversations run at a time. Reads fetch whole conversations
(``events()``) and the newest turn only (``events(after=n-2)``). SQLite is measured with its
database calls on the store's thread pool (default) and inline on the event loop
(``run_inline``), with ``synchronous=NORMAL`` (default) and ``FULL``. PostgreSQL is measured when
reachable (``--pg-url``, ``$BOT_DB_URL`` if it is a PostgreSQL URL, else
postgres@127.0.0.1:5432/test), in a throwaway table that is dropped afterwards. Last, the
lock stores: uncontended lock+release latency and messages/s through the lock alone.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.core.lock_store import InMemoryLockStore, LockStore, RedisLockStore
from bot.core.tracker_store import SQLTrackerStore

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def turn_events(c: int, t: int) -> list[dict[str, Any]]:
    now = time.time()
    return [
        {
            "event": "user",
            "timestamp": now,
            "text": f"查一下尾号{c:04d}的信用卡账单 第{t}轮",
            "parse_data": {
                "intent": {"name": "query_bill", "confidence": 0.93},
                "entities": [{"entity": "card_tail", "value": f"{c:04d}", "start": 4, "end": 8}],
                "intent_ranking": [
                    {"name": "query_bill", "confidence": 0.93},
                    {"name": "query_balance", "confidence": 0.05},
                ],
            },
            "input_channel": "rest",
            "message_id": uuid.uuid4().hex,
            "metadata": {},
        },
        {
            "event": "bot",
            "timestamp": now + 0.01,
            "text": "您本期账单金额为 3,250.00 元，最后还款日为 12 月 5 日。",
            "data": {"buttons": None, "custom": None},
            "metadata": {"utter_action": "utter_bill"},
        },
    ]


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def timed(fn: Callable[[], Awaitable[Any]], n: int) -> list[float]:
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        await fn()
        samples.append(time.perf_counter() - start)
    return samples


async def run_one(name: str, store: SQLTrackerStore, args: argparse.Namespace) -> dict[str, Any]:
    gate = asyncio.Semaphore(args.concurrency)
    prefix = uuid.uuid4().hex[:6]
    latencies: list[float] = []

    async def converse(c: int) -> None:
        async with gate:
            for t in range(args.turns):
                start = time.perf_counter()
                await store.append(f"{prefix}-{c}", turn_events(c, t))
                latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    await asyncio.gather(*(converse(c) for c in range(args.conversations)))
    elapsed = time.perf_counter() - start
    appends = args.conversations * args.turns

    sender = f"{prefix}-0"
    n = await store.count(sender)
    assert n == 2 * args.turns, (n, args.turns)
    await timed(lambda: store.events(sender), 50)  # warm up
    full = await timed(lambda: store.events(sender), args.reads)
    tail = await timed(lambda: store.events(sender, after=n - 2), args.reads)
    return {
        "store": name,
        "appends/s": appends / elapsed,
        "events/s": 2 * appends / elapsed,
        "append p50 ms": statistics.median(latencies) * 1000,
        "append p99 ms": percentile(latencies, 0.99) * 1000,
        f"read {n} p50 ms": statistics.median(full) * 1000,
        f"read {n} p99 ms": percentile(full, 0.99) * 1000,
        "read new p50 ms": statistics.median(tail) * 1000,
        "read new p99 ms": percentile(tail, 0.99) * 1000,
    }


async def lock_figures(name: str, locks: LockStore, args: argparse.Namespace) -> str:
    """Uncontended lock+release latency, and messages/s through the lock alone."""

    async def one() -> None:
        async with locks.lock("bench-solo"):
            pass

    await timed(one, 50)
    solo = await timed(one, args.reads)
    gate = asyncio.Semaphore(args.concurrency)

    async def message(c: int) -> None:
        async with gate, locks.lock(f"bench-{c % args.conversations}"):
            await asyncio.sleep(0)

    start = time.perf_counter()
    await asyncio.gather(*(message(c) for c in range(args.conversations * args.turns)))
    rate = args.conversations * args.turns / (time.perf_counter() - start)
    return (
        f"{name:<12} lock+release p50 {statistics.median(solo) * 1000:.3f} ms, "
        f"p99 {percentile(solo, 0.99) * 1000:.3f} ms; {rate:,.0f} messages/s "
        f"({args.conversations} conversations, {args.concurrency} at a time)"
    )


def pg_reachable(url: str) -> str | None:
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(url, connect_args={"connect_timeout": 2})
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        return str(exc).splitlines()[0]
    return None


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--conversations", type=int, default=200)
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--reads", type=int, default=2000)
    env_url = os.environ.get("BOT_DB_URL", "")
    parser.add_argument(
        "--pg-url", default=env_url if env_url.startswith("postgres") else DEFAULT_PG_URL
    )
    parser.add_argument(
        "--redis-url", default=os.environ.get("BOT_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bankbot-bench-"))
    variants: list[tuple[str, str, dict[str, Any]]] = [
        ("sqlite (threads)", f"sqlite:///{tmp / 'a.db'}", {}),
        ("sqlite (inline)", f"sqlite:///{tmp / 'b.db'}", {"run_inline": True}),
        ("sqlite FULL (threads)", f"sqlite:///{tmp / 'c.db'}", {"synchronous": "FULL"}),
        (
            "sqlite FULL (inline)",
            f"sqlite:///{tmp / 'd.db'}",
            {"synchronous": "FULL", "run_inline": True},
        ),
    ]
    problem = pg_reachable(args.pg_url)
    if problem:
        print(f"PostgreSQL skipped ({args.pg_url}): {problem}")
    else:
        variants.append(("postgresql", args.pg_url, {}))

    print(
        f"{args.conversations} conversations x {args.turns} turns (2 events per append), "
        f"{args.concurrency} at a time; {args.reads} reads per kind\n"
    )
    rows = []
    for name, url, options in variants:
        table = f"bench_{uuid.uuid4().hex[:8]}"
        store = SQLTrackerStore(url, table=table, **options)
        try:
            rows.append(await run_one(name, store, args))
        finally:
            if store.dialect != "sqlite":
                store.table.drop(store.engine)
            await store.close()

    headers = list(rows[0])
    widths = [max(len(h), 10) for h in headers]
    widths[0] = max(len(str(r["store"])) for r in rows) + 2
    print(
        "".join(
            h.ljust(w) if i == 0 else h.rjust(w + 2)
            for i, (h, w) in enumerate(zip(headers, widths, strict=True))
        )
    )
    for row in rows:
        cells = []
        for i, (h, w) in enumerate(zip(headers, widths, strict=True)):
            value = row[h]
            if i == 0:
                cells.append(str(value).ljust(w))
            else:
                cells.append((f"{value:,.0f}" if value >= 100 else f"{value:.2f}").rjust(w + 2))
        print("".join(cells))
    shutil.rmtree(tmp, ignore_errors=True)

    print("\nLock stores")
    print(await lock_figures("in-memory", InMemoryLockStore(), args))
    redis_locks = RedisLockStore(
        args.redis_url, key_prefix=f"bankbot-bench-{uuid.uuid4().hex[:6]}:"
    )
    try:
        await redis_locks.client.ping()
    except Exception as exc:
        print(f"Redis skipped ({args.redis_url}): {exc}")
    else:
        print(await lock_figures("redis", redis_locks, args))
    finally:
        await redis_locks.close()


if __name__ == "__main__":
    asyncio.run(main())
