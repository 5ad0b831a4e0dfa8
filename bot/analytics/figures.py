"""The report's figures, defined over plain rows (no I/O): what a conversation is, what a
turn, a fallback, a resolution are. ``docs/analytics.md`` states the same definitions.

A *conversation* is one session of a sender: its events from a ``session_started`` (or
``restart``, or the sender's first event) up to the next one, with at least one ``user``
event. It starts at its first ``user`` event and belongs to that event's ``input_channel``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

FALLBACK_ACTIONS = frozenset({"action_default_fallback", "action_two_stage_fallback"})
FALLBACK_INTENT = "nlu_fallback"
BOUNDARIES = frozenset({"session_started", "restart"})
NO_INTENT = "(none)"
NO_CHANNEL = "(unknown)"
GOOD_RATING = 4  # CSAT: ratings of 4 or 5 out of 5
TOP = 10


# One event as :mod:`~bot.analytics.query` reads it: (sender_id, seq, type_name, timestamp,
# label, channel); ``label`` is the intent of a ``user`` event, the name of an ``action``, the
# ``metadata.kb_entry`` of a ``bot`` event; ``channel`` the ``input_channel`` of a user event.
# A plain tuple: a report reads half a million of them.
EventRow = tuple[str, int, str, float | None, str | None, str | None]


@dataclass(frozen=True)
class HandoffRow:
    conversation_id: str
    reason: str
    enqueued_at: float
    assigned_at: float | None
    rating: int | None


@dataclass
class Conversation:
    sender_id: str
    opened_at: float | None  # the boundary event's time (None: the log's beginning)
    started_at: float  # the first user event
    channel: str
    intents: list[str] = field(default_factory=list)  # one per turn
    fallback_turns: list[bool] = field(default_factory=list)  # one per turn
    kb_entries: list[str] = field(default_factory=list)
    handoffs: list[HandoffRow] = field(default_factory=list)

    @property
    def turns(self) -> int:
        return len(self.intents)

    @property
    def handed_off(self) -> bool:
        return bool(self.handoffs)

    @property
    def abandoned_after_fallback(self) -> bool:
        """Its last turn was a fallback and no human took over."""
        return not self.handed_off and bool(self.fallback_turns) and self.fallback_turns[-1]

    @property
    def resolved(self) -> bool:
        return not self.handed_off and not self.abandoned_after_fallback

    @property
    def outcome(self) -> str:
        if self.handed_off:
            return "handed_off"
        return "abandoned_after_fallback" if self.abandoned_after_fallback else "resolved"


def conversations(rows: Iterable[EventRow]) -> dict[str, list[Conversation]]:
    """Every sender's conversations in order, from its rows sorted by (sender_id, seq)."""
    out: dict[str, list[Conversation]] = {}
    current: Conversation | None = None
    sender: str | None = None
    opened: float | None = None  # the time of the boundary that opened the next conversation
    for sender_id, _seq, type_name, stamp, label, channel in rows:
        if sender_id != sender:
            sender, current, opened = sender_id, None, None
        if type_name == "user":
            if current is None:
                current = Conversation(sender_id, opened, stamp or 0.0, channel or NO_CHANNEL)
                out.setdefault(sender_id, []).append(current)
            intent = label or NO_INTENT
            current.intents.append(intent)
            current.fallback_turns.append(intent == FALLBACK_INTENT)
        elif type_name in BOUNDARIES:
            current, opened = None, stamp
        elif current is None:
            continue  # an action or bot message before any user message of the session
        elif type_name == "action":
            if label in FALLBACK_ACTIONS:
                current.fallback_turns[-1] = True
        elif type_name == "bot" and label:
            current.kb_entries.append(label)
    return out


def attach_handoffs(
    by_sender: dict[str, list[Conversation]], handoffs: Iterable[HandoffRow]
) -> None:
    """Each handoff joins its conversation_id's latest conversation opened (or started) at or
    before it was queued (the first one when it was queued before all of them)."""
    for handoff in handoffs:
        convs = by_sender.get(handoff.conversation_id)
        if not convs:
            continue
        chosen = convs[0]
        for conv in convs:
            opened = conv.opened_at if conv.opened_at is not None else conv.started_at
            if opened <= handoff.enqueued_at:
                chosen = conv
        chosen.handoffs.append(handoff)


def p90(values: Sequence[float]) -> float | None:
    """Nearest rank: the smallest value with at least 90 % of the values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.9 * len(ordered)) - 1)]


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass
class ChannelFigures:
    channel: str
    conversations: int
    turns: int
    resolution_rate: float | None
    handoff_rate: float | None


@dataclass
class Figures:
    conversations: int
    turns: int
    resolved: int
    handed_off: int
    abandoned_after_fallback: int
    fallback_turns: int
    resolution_rate: float | None
    handoff_rate: float | None
    fallback_rate: float | None
    handoffs: int
    handoff_reasons: list[tuple[str, int]]
    queue_waits: int  # handoffs an agent was assigned to
    queue_wait_avg: float | None
    queue_wait_p90: float | None
    ratings: int
    csat: float | None  # share of ratings >= GOOD_RATING
    rating_avg: float | None
    top_intents: list[tuple[str, int]]
    top_kb_entries: list[tuple[str, int]]
    hourly: list[int]  # conversations started in each hour of the day, 0..23
    channels: list[ChannelFigures]


def in_range(
    by_sender: dict[str, list[Conversation]],
    start: float,
    end: float,
    channel: str | None = None,
) -> list[Conversation]:
    """The conversations whose first user message is in ``[start, end)`` (and on ``channel``)."""
    return [
        conv
        for convs in by_sender.values()
        for conv in convs
        if start <= conv.started_at < end and (channel is None or conv.channel == channel)
    ]


def compute(convs: Sequence[Conversation], tz: ZoneInfo, top: int = TOP) -> Figures:
    turns = resolved = handed = abandoned = fallback_turns = 0
    handoffs: list[HandoffRow] = []
    intents: Counter[str] = Counter()
    entries: Counter[str] = Counter()
    hourly = [0] * 24
    hour_of: dict[int, int] = {}  # quarter-hour → hour of day (UTC offsets are whole quarters)
    per_channel: dict[str, list[int]] = {}  # channel → [conversations, turns, resolved, handed]
    for conv in convs:
        n = len(conv.intents)
        turns += n
        fallback_turns += sum(conv.fallback_turns)
        intents.update(conv.intents)
        entries.update(conv.kb_entries)
        handoffs += conv.handoffs
        outcome = conv.outcome
        resolved += outcome == "resolved"
        handed += outcome == "handed_off"
        abandoned += outcome == "abandoned_after_fallback"
        quarter = int(conv.started_at // 900)
        hour = hour_of.get(quarter)
        if hour is None:
            hour = hour_of[quarter] = datetime.fromtimestamp(quarter * 900, tz).hour
        hourly[hour] += 1
        split = per_channel.setdefault(conv.channel, [0, 0, 0, 0])
        split[0] += 1
        split[1] += n
        split[2] += outcome == "resolved"
        split[3] += outcome == "handed_off"
    waits = [h.assigned_at - h.enqueued_at for h in handoffs if h.assigned_at is not None]
    ratings = [h.rating for h in handoffs if h.rating is not None]
    channels = [
        ChannelFigures(name, count, n, _rate(good, count), _rate(human, count))
        for name, (count, n, good, human) in sorted(
            per_channel.items(), key=lambda kv: (-kv[1][0], kv[0])
        )
    ]
    return Figures(
        conversations=len(convs),
        turns=turns,
        resolved=resolved,
        handed_off=handed,
        abandoned_after_fallback=abandoned,
        fallback_turns=fallback_turns,
        resolution_rate=_rate(resolved, len(convs)),
        handoff_rate=_rate(handed, len(convs)),
        fallback_rate=_rate(fallback_turns, turns),
        handoffs=len(handoffs),
        handoff_reasons=_top(Counter(h.reason for h in handoffs), None),
        queue_waits=len(waits),
        queue_wait_avg=sum(waits) / len(waits) if waits else None,
        queue_wait_p90=p90(waits),
        ratings=len(ratings),
        csat=_rate(sum(r >= GOOD_RATING for r in ratings), len(ratings)),
        rating_avg=sum(ratings) / len(ratings) if ratings else None,
        top_intents=_top(intents, top),
        top_kb_entries=_top(entries, top),
        hourly=hourly,
        channels=channels,
    )


def _top(counts: Counter[str], n: int | None) -> list[tuple[str, int]]:
    """Most frequent first, ties by name (so the order is stable)."""
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return ordered if n is None else ordered[:n]
