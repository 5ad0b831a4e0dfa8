"""A generated conversation history written straight into the stores' tables (bulk inserts in
the stores' own row format), with the truth of every conversation kept beside it, so that the
tests and ``bench/report.py`` can check each figure against values computed independently."""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bot.core.tracker_store import events_table
from bot.handoff.tables import HANDOFFS, create_schema

CHANNELS = ("rest", "wechat", "socketio")
INTENTS = ("greet", "query_balance", "report_loss", "faq", "transfer", "nlu_fallback")
KB_ENTRIES = ("fee_annual", "card_activate", "lost_card", "wealth_risk")
REASONS = ("customer_request", "fallback_repeated", "negative_sentiment", "vip")
BATCH = 5_000


@dataclass
class Truth:
    """What the generator made one conversation be."""

    sender_id: str
    started_at: float
    channel: str
    intents: list[str]
    fallbacks: list[bool]
    kb_entries: list[str]
    handoffs: list[dict[str, Any]] = field(default_factory=list)


def _dump(event: dict[str, Any]) -> str:
    return json.dumps(event, ensure_ascii=False, separators=(",", ":"))


def generate(
    count: int, start: float, span: float, seed: int = 17, prefix: str = "s"
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[Truth]]:
    """``count`` conversations started in ``[start, start + span)``: event rows, handoff rows
    and the truth. Every fifth sender has a second session (a new conversation) a day later."""
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    handoffs: list[dict[str, Any]] = []
    truths: list[Truth] = []
    made = 0
    n = 0
    while made < count:
        sender = f"{prefix}{n:07d}"
        n += 1
        seq = 0
        sessions = 2 if n % 5 == 0 and made + 1 < count else 1
        at = start + rng.random() * span
        for session in range(sessions):
            at += session * 86_400.0

            def add(kind: str, stamp: float, who: str = sender, **fields: Any) -> None:
                nonlocal seq
                seq += 1
                event = {"event": kind, "timestamp": stamp, **fields}
                events.append(
                    {
                        "sender_id": who,
                        "seq": seq,
                        "type_name": kind,
                        "timestamp": stamp,
                        "data": _dump(event),
                    }
                )

            channel = rng.choice(CHANNELS)
            add("session_started", at - 1.0)
            add("action", at - 0.5, name="action_listen")  # before any user message
            truth = Truth(sender, at, channel, [], [], [])
            t = at
            for _ in range(rng.randint(1, 5)):
                intent = rng.choice(INTENTS)
                parse = {"intent": {"name": intent, "confidence": rng.random()}}
                add("user", t, text="…", parse_data=parse, input_channel=channel, metadata={})
                fallback = intent == "nlu_fallback" or rng.random() < 0.05
                action = "action_default_fallback" if fallback else f"utter_{intent}"
                if intent == "faq" and not fallback:
                    action = "action_answer_faq"
                add("action", t + 0.1, name=action, policy="RulePolicy", confidence=1.0)
                meta: dict[str, Any] = {"utter_action": "utter_x"}
                if action == "action_answer_faq":
                    entry = rng.choice(KB_ENTRIES)
                    meta["kb_entry"] = entry
                    truth.kb_entries.append(entry)
                add("bot", t + 0.2, text="…", data={}, metadata=meta)
                add("action", t + 0.3, name="action_listen")
                truth.intents.append(intent)
                truth.fallbacks.append(fallback)
                t += rng.uniform(5, 60)
            if rng.random() < 0.2:
                queued = t + 1.0
                assigned = queued + rng.uniform(1, 300) if rng.random() < 0.8 else None
                row = {
                    "id": hashlib.blake2b(
                        f"{sender}/{session}".encode(), digest_size=16
                    ).hexdigest(),
                    "conversation_id": sender,
                    "channel": channel,
                    "group_name": "信用卡",
                    "priority": 0,
                    "reason": rng.choice(REASONS),
                    "status": "closed" if assigned is not None else "waiting",
                    "enqueued_at": queued,
                    "assigned_at": assigned,
                    "rating": rng.randint(1, 5) if assigned and rng.random() < 0.5 else None,
                }
                if row["status"] == "waiting" and any(
                    h["conversation_id"] == sender and h["status"] == "waiting"
                    for h in handoffs[-2:]
                ):
                    row["status"] = "closed"  # one open handoff per conversation
                handoffs.append(row)
                truth.handoffs.append(row)
            truths.append(truth)
            made += 1
    return events, handoffs, truths


def write(
    engine: Engine,
    events: list[dict[str, Any]],
    handoffs: list[dict[str, Any]],
    table: str = "events",
    schema: str | None = None,
) -> None:
    """Bulk inserts into the tracker store's events table and the handoffs table (created
    when missing)."""
    t = events_table(table, schema)
    t.metadata.create_all(engine)
    create_schema(engine)
    with engine.begin() as conn:
        for i in range(0, len(events), BATCH):
            conn.execute(sa.insert(t), events[i : i + BATCH])
        for i in range(0, len(handoffs), BATCH):
            conn.execute(sa.insert(HANDOFFS), handoffs[i : i + BATCH])
