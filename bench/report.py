"""The analytics report (``bot report``) over a generated history of 100,000 conversations
(about 1.4 million events and 20,000 handoffs, written into the stores' own tables with bulk
inserts by ``bot.analytics.sample``). Target: the report builds in at most 10 s.

    .venv/bin/python bench/report.py [--conversations 100000] [--db PATH] [--pg URL]

The history goes into a fresh SQLite file (``--db``, default a temporary folder; an existing
file is reused as it is) and, with ``--pg``, into a schema of its own on that
PostgreSQL server (dropped afterwards). Printed: generation and write time, then per
database: the roll-up's first catch-up (every event
read once, in the database), the report build (the budget), the median of three more builds,
and a build after 1,000 more conversations were appended (catch-up included); then the
figures. Wall-clock on this machine; nothing here asserts them.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Engine

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.analytics import sample
from bot.analytics.query import Sources, catch_up
from bot.analytics.report import Period, build, summary_rows

TZ = ZoneInfo("Asia/Shanghai")
PERIOD = Period(date(2026, 11, 1), date(2026, 11, 30), TZ)
BUDGET = 10.0


def fill(engine: Engine, count: int) -> None:
    started = time.perf_counter()
    start = datetime(2026, 11, 1, tzinfo=TZ).timestamp()
    events, handoffs, _ = sample.generate(count, start, 29 * 86_400.0)
    made = time.perf_counter()
    sample.write(engine, events, handoffs)
    print(
        f"  generated {len(events):,} events, {len(handoffs):,} handoffs in "
        f"{made - started:.1f} s; written in {time.perf_counter() - made:.1f} s"
    )


def measure(name: str, engine: Engine) -> None:
    sources = Sources(engine)
    started = time.perf_counter()
    read = catch_up(sources)
    print(
        f"{name}: roll-up catch-up over {read:,} new events {time.perf_counter() - started:.2f} s "
        "(once; later reports fold only what was appended since)"
    )
    first = build(sources, PERIOD)
    cpu = time.process_time()
    again = [build(sources, PERIOD).seconds for _ in range(3)]
    cpu = (time.process_time() - cpu) / 3
    median = statistics.median(again)
    verdict = "within" if max(first.seconds, median) <= BUDGET else "OVER"
    print(
        f"{name}: report build {first.seconds:.2f} s, then median {median:.2f} s "
        f"(runs {', '.join(f'{s:.2f}' for s in again)}; this process's CPU {cpu:.2f} s per "
        f"build); {verdict} the {BUDGET:.0f} s budget"
    )
    start = datetime(2026, 11, 20, tzinfo=TZ).timestamp()
    events, handoffs, _ = sample.generate(
        1_000, start, 86_400.0, seed=3, prefix=f"late{uuid.uuid4().hex[:6]}"
    )
    sample.write(engine, events, handoffs)
    grown = build(sources, PERIOD)
    print(
        f"{name}: after 1,000 more conversations ({len(events):,} events) the report, "
        f"catch-up included: {grown.seconds:.2f} s, {grown.figures.conversations:,} conversations"
    )
    for figure, value in summary_rows(first.figures):
        print(f"    {figure:26} {value}")
    print(f"    top intents: {first.figures.top_intents[:5]}")
    print(f"    channels: {[(c.channel, c.conversations) for c in first.figures.channels]}")


def sqlite(path: Path, count: int) -> None:
    engine = sa.create_engine(f"sqlite:///{path}")
    inspector = sa.inspect(engine)
    if not (inspector.has_table("events") and inspector.has_table("handoffs")):
        print(f"SQLite {path}:")
        fill(engine, count)
    measure("SQLite", engine)
    engine.dispose()


def postgresql(url: str, count: int) -> None:
    schema = f"bench_report_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(url)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine = sa.create_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    try:
        print(f"PostgreSQL {url} (schema {schema}):")
        fill(engine, count)
        with engine.begin() as conn:
            conn.execute(sa.text("ANALYZE"))
        measure("PostgreSQL", engine)
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--db", type=Path, default=None, help="SQLite file (default: temporary)")
    parser.add_argument("--pg", default=None, help="also on this PostgreSQL URL")
    args = parser.parse_args()
    run: Callable[[Path], None] = lambda path: sqlite(path, args.conversations)  # noqa: E731
    if args.db is not None:
        run(args.db)
    else:
        with tempfile.TemporaryDirectory() as folder:
            run(Path(folder) / "bankbot.db")
    if args.pg:
        postgresql(args.pg, args.conversations)


if __name__ == "__main__":
    main()
