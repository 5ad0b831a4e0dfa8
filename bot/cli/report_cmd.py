"""``bot report --from DAY --to DAY [--channel C] [--out DIR]``: the analytics report of the
conversation records (the tracker store and the handoff tables), see docs/analytics.md."""

from __future__ import annotations

import argparse
import asyncio
from datetime import date
from pathlib import Path
from typing import Any


def _day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a day like 2026-12-01") from None


def register(sub: Any) -> None:
    from bot.analytics.report import DEFAULT_TZ
    from bot.cli.options import add_project_option

    parser = sub.add_parser(
        "report",
        help="figures of the conversations of a date range (tables, CSV, PNG charts)",
        description="Conversations, turns, resolution, handoff and fallback rates, queue wait, "
        "CSAT, top intents and knowledge entries, hourly volume and the channel split of the "
        "conversations started from --from to --to (days inclusive). Reads the tracker store "
        "of endpoints.yml ($BOT_DB_URL) and the handoff tables ($BOT_HANDOFF_DB).",
    )
    parser.add_argument("--from", dest="first", type=_day, required=True, metavar="DAY")
    parser.add_argument("--to", dest="last", type=_day, required=True, metavar="DAY")
    parser.add_argument("--channel", default=None, help="only this channel (default: all)")
    parser.add_argument(
        "--tz", default=DEFAULT_TZ, help=f"time zone of the days and hours (default {DEFAULT_TZ})"
    )
    parser.add_argument(
        "--out", type=Path, default=None, metavar="DIR", help="write CSV tables and PNG charts here"
    )
    add_project_option(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from bot.analytics.query import Sources
    from bot.analytics.report import Period, build, print_report, write_charts, write_csv
    from bot.core.tracker_store import SQLTrackerStore, create_tracker_store
    from bot.endpoints import load_endpoints
    from bot.errors import BotError
    from bot.handoff.factory import store_for
    from bot.project import Project

    if args.first > args.last:
        raise BotError(f"--from {args.first} is after --to {args.last}")
    try:
        tz = ZoneInfo(args.tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise BotError(f"unknown time zone {args.tz!r}; use a name like Asia/Shanghai") from None
    project = Project.find(args.project)
    store = create_tracker_store(load_endpoints(project).tracker_store, project.root)
    try:
        if not isinstance(store, SQLTrackerStore):
            raise BotError("the report reads a SQL tracker store; endpoints.yml names another")
        handoffs = store_for(project.root, store)
        table = store.table
        sources = Sources(store.engine, handoffs.engine, table.name, table.schema)
        report = build(sources, Period(args.first, args.last, tz, args.channel))
        print_report(report)
        if args.out is not None:
            for path in [*write_csv(report, args.out), *write_charts(report, args.out)]:
                print(path)
    finally:
        asyncio.run(store.close())
    return 0
