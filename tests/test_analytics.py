"""The analytics report (``bot.analytics``, ``bot report``) over a generated history written
into the stores' own tables: every figure is checked against values computed here from the
generator's truth, not through the figures' code. SQLite always; PostgreSQL when it answers."""

from __future__ import annotations

import csv
import math
import os
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from backends import pg_problem, pg_url

from bot.analytics import sample
from bot.analytics.figures import Figures
from bot.analytics.query import ROLLUP, STATE, Sources
from bot.analytics.report import Period, build

REPO = Path(__file__).resolve().parents[1]
TZ = ZoneInfo("Asia/Shanghai")
NOV = Period(date(2026, 11, 1), date(2026, 11, 30), TZ)
COUNT = 10_000


def _history(count: int) -> tuple[list, list, list[sample.Truth]]:
    """``count`` conversations started in November (some second sessions fall in December),
    and 300 started in October (outside the range, one of them handed off in November)."""
    events, handoffs, truths = sample.generate(count, NOV.start, NOV.end - NOV.start, seed=1)
    before = datetime(2026, 10, 1, tzinfo=TZ).timestamp()
    old = sample.generate(300, before, 20 * 86_400.0, seed=2, prefix="old")
    return events + old[0], handoffs + old[1], truths + old[2]


def expected(truths: list[sample.Truth], period: Period, channel: str | None = None) -> dict:
    convs = [
        t
        for t in truths
        if period.start <= t.started_at < period.end and (channel is None or t.channel == channel)
    ]
    handoffs = [h for t in convs for h in t.handoffs]
    waits = [h["assigned_at"] - h["enqueued_at"] for h in handoffs if h["assigned_at"]]
    ratings = [h["rating"] for h in handoffs if h["rating"] is not None]
    abandoned = [t for t in convs if not t.handoffs and t.fallbacks[-1]]
    turns = sum(len(t.intents) for t in convs)
    hourly = Counter(datetime.fromtimestamp(t.started_at, TZ).hour for t in convs)
    ordered = sorted(waits)
    return {
        "conversations": len(convs),
        "turns": turns,
        "handed_off": sum(bool(t.handoffs) for t in convs),
        "abandoned": len(abandoned),
        "resolved": len(convs) - sum(bool(t.handoffs) for t in convs) - len(abandoned),
        "fallback_turns": sum(sum(t.fallbacks) for t in convs),
        "reasons": Counter(h["reason"] for h in handoffs),
        "waits": waits,
        # nearest rank: the value at rank ceil(0.9 n), counted from 1
        "p90": ordered[math.ceil(len(ordered) * 9 / 10) - 1] if ordered else None,
        "ratings": ratings,
        "intents": Counter(i for t in convs for i in t.intents),
        "kb": Counter(e for t in convs for e in t.kb_entries),
        "hourly": [hourly.get(h, 0) for h in range(24)],
        "channels": Counter(t.channel for t in convs),
    }


def check(f: Figures, want: dict) -> None:
    n = want["conversations"]
    assert f.conversations == n
    assert f.turns == want["turns"]
    assert f.resolved == want["resolved"]
    assert f.resolution_rate == pytest.approx(want["resolved"] / n)
    assert f.handed_off == want["handed_off"]
    assert f.handoff_rate == pytest.approx(want["handed_off"] / n)
    assert f.abandoned_after_fallback == want["abandoned"]
    assert f.fallback_turns == want["fallback_turns"]
    assert f.fallback_rate == pytest.approx(want["fallback_turns"] / want["turns"])
    assert dict(f.handoff_reasons) == want["reasons"]
    assert f.handoffs == sum(want["reasons"].values())
    assert f.queue_waits == len(want["waits"])
    assert f.queue_wait_avg == pytest.approx(sum(want["waits"]) / len(want["waits"]))
    assert f.queue_wait_p90 == pytest.approx(want["p90"])
    ratings = want["ratings"]
    assert f.ratings == len(ratings)
    assert f.csat == pytest.approx(sum(r in (4, 5) for r in ratings) / len(ratings))
    assert f.rating_avg == pytest.approx(sum(ratings) / len(ratings))
    assert dict(f.top_intents) == dict(want["intents"].most_common(10))
    assert dict(f.top_kb_entries) == dict(want["kb"].most_common(10))
    assert [n for _, n in f.top_intents] == sorted((n for _, n in f.top_intents), reverse=True)
    assert f.hourly == want["hourly"]
    assert {c.channel: c.conversations for c in f.channels} == want["channels"]
    assert sum(c.turns for c in f.channels) == want["turns"]


@pytest.fixture(scope="module")
def history() -> tuple[list, list, list[sample.Truth]]:
    return _history(COUNT)


@pytest.fixture(scope="module")
def sqlite_db(tmp_path_factory: pytest.TempPathFactory, history: tuple) -> Path:
    path = tmp_path_factory.mktemp("analytics") / "bankbot.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    sample.write(engine, history[0], history[1])
    engine.dispose()
    return path


@pytest.fixture
def sqlite_sources(sqlite_db: Path) -> Iterator[Sources]:
    engine = sa.create_engine(f"sqlite:///{sqlite_db}")
    yield Sources(engine)
    engine.dispose()


def test_the_history_is_big_and_mixed(history: tuple) -> None:
    """The generated data exercise every branch the figures have."""
    want = expected(history[2], NOV)
    assert want["conversations"] >= COUNT - 2_000  # some second sessions fall in December
    assert len(history[2]) >= COUNT
    assert want["abandoned"] and want["handed_off"] and want["resolved"]
    assert len(want["channels"]) == 3 and want["kb"] and want["ratings"]
    assert any(t.started_at >= NOV.end for t in history[2])  # outside, after
    assert any(t.started_at < NOV.start for t in history[2])  # outside, before


def test_every_figure_matches_the_generated_truth(sqlite_sources: Sources, history: tuple) -> None:
    report = build(sqlite_sources, NOV)
    check(report.figures, expected(history[2], NOV))
    inspector = sa.inspect(sqlite_sources.events)
    assert inspector.get_indexes("events") == []  # the tracker store's table is left as it is
    assert inspector.has_table(ROLLUP)
    with sqlite_sources.events.connect() as conn:
        top = conn.scalar(sa.text("SELECT max(id) FROM events"))
        assert conn.scalar(sa.text(f"SELECT value FROM {STATE}")) == top


def test_the_rollup_is_incremental(tmp_path: Path) -> None:
    """Events appended after a report are in the next one; nothing is counted twice."""
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'grow.db'}")
    sources = Sources(engine)
    events, handoffs, truths = sample.generate(1_000, NOV.start, 10 * 86_400.0, seed=5)
    sample.write(engine, events, handoffs)
    check(build(sources, NOV).figures, expected(truths, NOV))
    check(build(sources, NOV).figures, expected(truths, NOV))  # again: the same figures
    more = sample.generate(500, NOV.start + 12 * 86_400.0, 86_400.0, seed=6, prefix="new")
    sample.write(engine, more[0], more[1])
    report = build(sources, NOV)
    check(report.figures, expected(truths + more[2], NOV))
    assert report.figures.conversations > expected(truths, NOV)["conversations"]
    engine.dispose()


def test_a_channel_and_a_short_range(sqlite_sources: Sources, history: tuple) -> None:
    week = Period(date(2026, 11, 9), date(2026, 11, 15), TZ, "wechat")
    report = build(sqlite_sources, week)
    want = expected(history[2], week, "wechat")
    check(report.figures, want)
    assert [c.channel for c in report.figures.channels] == ["wechat"]


def test_an_empty_database_gives_zeros_not_errors(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    f = build(Sources(engine), NOV).figures
    assert (f.conversations, f.turns, f.handoffs) == (0, 0, 0)
    assert f.resolution_rate is None and f.queue_wait_p90 is None and f.csat is None
    assert f.hourly == [0] * 24 and f.channels == []


def test_the_session_rules() -> None:
    """Hand-made rows: a second session is a second conversation; a fallback action counts for
    the turn before it; a handoff joins the session it was queued in."""
    from bot.analytics.figures import EventRow, HandoffRow, attach_handoffs, conversations

    rows: list[EventRow] = [
        ("a", 1, "action", 1.0, "action_listen", None),
        ("a", 2, "user", 2.0, "greet", "rest"),
        ("a", 3, "action", 3.0, "action_default_fallback", None),
        ("a", 4, "session_started", 10.0, None, None),
        ("a", 5, "user", 11.0, "faq", "wechat"),
        ("a", 6, "bot", 12.0, "fee_annual", None),
        ("b", 1, "user", 5.0, "nlu_fallback", "rest"),
    ]
    by_sender = conversations(rows)
    attach_handoffs(by_sender, [HandoffRow("a", "vip", 13.0, None, None)])
    first, second = by_sender["a"]
    assert first.outcome == "abandoned_after_fallback" and first.fallback_turns == [True]
    assert second.outcome == "handed_off" and second.kb_entries == ["fee_annual"]
    assert (second.channel, second.started_at) == ("wechat", 11.0)
    assert by_sender["b"][0].outcome == "abandoned_after_fallback"


@pytest.fixture
def pg_sources() -> Iterator[Sources]:
    problem = pg_problem()
    if problem:
        pytest.skip(problem)
    schema = f"analytics_t{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(pg_url())
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine = sa.create_engine(pg_url(), connect_args={"options": f"-csearch_path={schema}"})
    try:
        yield Sources(engine)
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def test_postgresql_gives_the_same_figures(pg_sources: Sources) -> None:
    events, handoffs, truths = _history(2_000)
    sample.write(pg_sources.events, events, handoffs)
    check(build(pg_sources, NOV).figures, expected(truths, NOV))
    week = Period(date(2026, 11, 2), date(2026, 11, 8), TZ, "rest")
    check(build(pg_sources, week).figures, expected(truths, week, "rest"))


def _bot(project: Path, db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")}
    env["BOT_DB_URL"] = f"sqlite:///{db}"
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [sys.executable, "-m", "bot", "report", "--project", str(project), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cli_prints_and_writes_csv_and_png(tmp_path: Path, sqlite_db: Path, history: tuple) -> None:
    project = tmp_path / "bot"
    project.mkdir()
    for name in ("config.yml", "domain.yml", "handoff.yml"):
        (project / name).write_bytes((REPO / name).read_bytes())
    out = tmp_path / "out"
    done = _bot(project, sqlite_db, "--from", "2026-11-01", "--to", "2026-11-30", "--out", str(out))
    assert done.returncode == 0, done.stderr
    want = expected(history[2], NOV)
    assert "conversations" in done.stdout and str(want["conversations"]) in done.stdout
    with (out / "summary.csv").open(encoding="utf-8") as handle:
        summary = {row["figure"]: row["value"] for row in csv.DictReader(handle)}
    assert int(summary["conversations"]) == want["conversations"]
    assert int(summary["turns"]) == want["turns"]
    with (out / "channels.csv").open(encoding="utf-8") as handle:
        channels = {row["channel"]: int(row["conversations"]) for row in csv.DictReader(handle)}
    assert channels == want["channels"]
    with (out / "hourly.csv").open(encoding="utf-8") as handle:
        assert [int(r["conversations"]) for r in csv.DictReader(handle)] == want["hourly"]
    for chart in ("hourly", "channels", "handoff_reasons", "top_intents"):
        assert (out / f"{chart}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_bad_input_is_a_message(tmp_path: Path, sqlite_db: Path) -> None:
    project = tmp_path / "bot"
    project.mkdir()
    (project / "config.yml").write_bytes((REPO / "config.yml").read_bytes())
    backwards = _bot(project, sqlite_db, "--from", "2026-11-30", "--to", "2026-11-01")
    assert backwards.returncode == 1
    assert "--from 2026-11-30 is after --to 2026-11-01" in backwards.stderr
    assert "Traceback" not in backwards.stderr
    bad_day = _bot(project, sqlite_db, "--from", "11/01", "--to", "2026-11-01")
    assert bad_day.returncode == 2 and "is not a day like 2026-12-01" in bad_day.stderr
    zone = _bot(project, sqlite_db, "--from", "2026-11-01", "--to", "2026-11-01", "--tz", "Mars/X")
    assert zone.returncode == 1 and "unknown time zone 'Mars/X'" in zone.stderr
