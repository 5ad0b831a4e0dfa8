"""The report of a date range: the figures built from the stores (:func:`build`), printed as
rich tables, written as CSV tables and PNG charts (matplotlib's Agg backend)."""

from __future__ import annotations

import csv
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bot.analytics import figures as fig
from bot.analytics.query import Sources, catch_up, event_rows, handoff_rows

DEFAULT_TZ = "Asia/Shanghai"


@dataclass(frozen=True)
class Period:
    """The days ``first`` to ``last`` inclusive, in ``tz``; ``channel`` None: every channel."""

    first: date
    last: date
    tz: ZoneInfo
    channel: str | None = None

    @property
    def start(self) -> float:
        return datetime.combine(self.first, datetime.min.time(), self.tz).timestamp()

    @property
    def end(self) -> float:
        next_day = self.last + timedelta(days=1)
        return datetime.combine(next_day, datetime.min.time(), self.tz).timestamp()


@dataclass
class Report:
    period: Period
    figures: fig.Figures
    seconds: float  # time taken to build it


def build(sources: Sources, period: Period) -> Report:
    started = time.perf_counter()
    catch_up(sources)
    by_sender = fig.conversations(event_rows(sources, period.start, period.end))
    fig.attach_handoffs(by_sender, handoff_rows(sources, period.start))
    convs = fig.in_range(by_sender, period.start, period.end, period.channel)
    figures = fig.compute(convs, period.tz)
    return Report(period, figures, time.perf_counter() - started)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def summary_rows(f: fig.Figures) -> list[tuple[str, str]]:
    return [
        ("conversations", str(f.conversations)),
        ("turns", str(f.turns)),
        ("resolution_rate", _pct(f.resolution_rate)),
        ("resolved", str(f.resolved)),
        ("handoff_rate", _pct(f.handoff_rate)),
        ("handed_off", str(f.handed_off)),
        ("abandoned_after_fallback", str(f.abandoned_after_fallback)),
        ("fallback_rate", _pct(f.fallback_rate)),
        ("fallback_turns", str(f.fallback_turns)),
        ("handoffs", str(f.handoffs)),
        ("queue_wait_avg_s", _num(f.queue_wait_avg)),
        ("queue_wait_p90_s", _num(f.queue_wait_p90)),
        ("queue_waits", str(f.queue_waits)),
        ("csat", _pct(f.csat)),
        ("rating_avg", _num(f.rating_avg, 2)),
        ("ratings", str(f.ratings)),
    ]


def tables(f: fig.Figures) -> dict[str, tuple[Sequence[str], list[Sequence[object]]]]:
    """Every table of the report: name → (header, rows)."""
    return {
        "summary": (("figure", "value"), list(summary_rows(f))),
        "handoff_reasons": (("reason", "handoffs"), list(f.handoff_reasons)),
        "top_intents": (("intent", "turns"), list(f.top_intents)),
        "top_kb_entries": (("kb_entry", "answers"), list(f.top_kb_entries)),
        "hourly": (("hour", "conversations"), [(h, n) for h, n in enumerate(f.hourly)]),
        "channels": (
            ("channel", "conversations", "turns", "resolution_rate", "handoff_rate"),
            [
                (c.channel, c.conversations, c.turns, _pct(c.resolution_rate), _pct(c.handoff_rate))
                for c in f.channels
            ],
        ),
    }


def print_report(report: Report) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    p = report.period
    console.print(
        f"[bold]{p.first} – {p.last}[/bold] ({p.tz.key}), channel: {p.channel or 'all'}; "
        f"built in {report.seconds:.2f} s"
    )
    for name, (header, rows) in tables(report.figures).items():
        if name == "hourly":
            rows = [r for r in rows if r[1]]
        table = Table(title=name)
        for column in header:
            table.add_column(column)
        for row in rows:
            table.add_row(*(str(v) for v in row))
        console.print(table)


def write_csv(report: Report, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (header, rows) in tables(report.figures).items():
        path = out / f"{name}.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            writer.writerows(rows)
        written.append(path)
    return written


def write_charts(report: Report, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    f = report.figures
    out.mkdir(parents=True, exist_ok=True)
    charts: list[tuple[str, list[str], list[int], str]] = [
        ("hourly", [str(h) for h in range(24)], f.hourly, "conversations by hour"),
        (
            "channels",
            [c.channel for c in f.channels],
            [c.conversations for c in f.channels],
            "conversations by channel",
        ),
        (
            "handoff_reasons",
            [r for r, _ in f.handoff_reasons],
            [n for _, n in f.handoff_reasons],
            "handoffs by reason",
        ),
        (
            "top_intents",
            [i for i, _ in f.top_intents],
            [n for _, n in f.top_intents],
            "turns by intent (top)",
        ),
    ]
    written = []
    for name, labels, values, title in charts:
        figure, axes = plt.subplots(figsize=(8, 4))
        axes.bar(range(len(values)), values)
        axes.set_xticks(range(len(values)), labels, rotation=45 if len(labels) > 8 else 0)
        axes.set_title(title)
        figure.tight_layout()
        path = out / f"{name}.png"
        figure.savefig(path, dpi=80)
        plt.close(figure)
        written.append(path)
    return written
