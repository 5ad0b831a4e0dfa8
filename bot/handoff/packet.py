"""The context packet: everything an agent (or an external desk, through the webhook) needs to
take over without asking the customer again. Built from the tracker's events; personal data
(ID, phone and card numbers, the customer's name) is masked. Format: docs/handoff.md."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from bot.handoff.records import Handoff
from bot.handoff.routing import Profile
from bot.handoff.triggers import REASONS, intent_of, negative_score
from bot.privacy import mask_entity_value, mask_text

VERSION = 1
INTERNAL_SLOTS = frozenset({"requested_slot", "session_started_metadata"})

# (query) -> [(entry id, question, answer, category, score)]
Search = Callable[[str], Sequence[tuple[str, str, str, str, float]]]

# Knowledge suggestions for the agent come from the conversation's topic: the latest customer
# messages that carry one (not button payloads such as /request_human, not small talk), the
# latest weighing most; entries below MIN_SUGGESTION are hidden, and the knowledge the bot
# tried is listed from MIN_TRIED (a 0.00 match is noise, not something the bot tried).
SMALL_TALK = frozenset({"greet", "goodbye", "thank", "affirm", "deny", "rate_service"})
TOPIC_MESSAGES = 3
RECENCY = (1.0, 0.85, 0.7)
MIN_SUGGESTION = 0.3
MIN_TRIED = 0.1
MAX_SUGGESTIONS = 3


def mask_name(name: str | None) -> str | None:
    """张伟 → 张*; 欧阳娜娜 → 欧***."""
    if not name:
        return name
    return name[0] + "*" * (len(name) - 1)


def transcript(events: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The messages of a conversation, masked: ``{"index", "at", "from", "text", ...}``."""
    out: list[dict[str, Any]] = []
    for event in events:
        kind = event.get("event")
        if kind == "user":
            parse = event.get("parse_data") or {}
            item: dict[str, Any] = {
                "from": "customer",
                "text": mask_text(event.get("text") or ""),
                "intent": intent_of(parse),
                "confidence": (parse.get("intent") or {}).get("confidence"),
                "channel": event.get("input_channel"),
            }
            score = negative_score(parse)
            if score is not None:
                item["negative"] = round(score, 3)
        elif kind == "bot":
            meta = event.get("metadata") or {}
            item = {
                "from": "agent" if meta.get("agent") else "bot",
                "text": mask_text(event.get("text") or ""),
            }
            if meta.get("agent"):
                item["agent"] = meta["agent"]
            buttons = (event.get("data") or {}).get("buttons")
            if buttons:
                item["buttons"] = [
                    {"title": b.get("title"), "payload": b.get("payload")}
                    for b in buttons
                    if isinstance(b, dict)
                ]
        else:
            continue
        item["at"] = event.get("timestamp")
        item["index"] = len(out)
        out.append(item)
    return out


def topic_texts(messages: Sequence[dict[str, Any]]) -> list[str]:
    """The customer's latest messages with a topic (transcript items), latest first."""
    texts = [
        str(m["text"])
        for m in messages
        if m.get("from") == "customer"
        and m.get("text")
        and not str(m["text"]).startswith("/")
        and m.get("intent") not in SMALL_TALK
    ]
    return list(reversed(texts))[:TOPIC_MESSAGES]


def topic_suggestions(
    messages: Sequence[dict[str, Any]],
    search: Search | None,
    limit: int = MAX_SUGGESTIONS,
    min_score: float = MIN_SUGGESTION,
) -> list[dict[str, Any]]:
    """Knowledge entries for the conversation's topic: every entry's best score over the
    latest topic messages (weighted by recency), at least ``min_score``, best first."""
    if search is None:
        return []
    best: dict[str, dict[str, Any]] = {}
    for weight, text in zip(RECENCY, topic_texts(messages), strict=False):
        for entry_id, question, answer, category, score in search(text)[:5]:
            weighted = round(score * weight, 3)
            if weighted >= min_score and weighted > best.get(entry_id, {}).get("score", -1.0):
                best[entry_id] = {
                    "id": entry_id,
                    "question": question,
                    "answer": answer,
                    "category": category,
                    "score": weighted,
                }
    return sorted(best.values(), key=lambda s: -float(s["score"]))[:limit]


def labels(domain_raw: dict[str, Any]) -> dict[str, Any]:
    """What the agent console shows for intents, slots and reasons: the domain's
    ``intent_labels`` and ``slot_labels`` (a trainer edits them), the handoff's reason labels."""
    return {
        "intents": {str(k): str(v) for k, v in (domain_raw.get("intent_labels") or {}).items()},
        "slots": {str(k): str(v) for k, v in (domain_raw.get("slot_labels") or {}).items()},
        "reasons": dict(REASONS),
    }


def build_packet(
    handoff: Handoff,
    events: Sequence[dict[str, Any]],
    slots: dict[str, Any],
    profile: Profile | None,
    search: Search | None = None,
) -> dict[str, Any]:
    messages = transcript(events)
    customer_turns = [m for m in messages if m["from"] == "customer"]
    intents = [
        {"intent": m["intent"], "confidence": m["confidence"], "at": m["at"], "text": m["text"]}
        for m in customer_turns
        if m.get("intent")
    ]
    trend = [m["negative"] for m in customer_turns if "negative" in m]
    knowledge: list[dict[str, Any]] = []
    suggestions: list[dict[str, Any]] = []
    if search is not None:
        seen: set[str] = set()
        for event in events:  # what the bot looked up for the customer's questions
            if event.get("event") == "user" and intent_of(event.get("parse_data")) == "faq":
                for entry_id, question, _answer, category, score in search(event.get("text") or "")[
                    :3
                ]:
                    if entry_id not in seen and score >= MIN_TRIED:
                        seen.add(entry_id)
                        knowledge.append(
                            {
                                "id": entry_id,
                                "question": question,
                                "category": category,
                                "score": round(score, 3),
                            }
                        )
        suggestions = [
            {k: v for k, v in item.items() if k != "category"}
            for item in topic_suggestions(messages, search)
        ]
    return {
        "version": VERSION,
        "handoff_id": handoff.id,
        "conversation_id": handoff.conversation_id,
        "channel": handoff.channel,
        "customer": {
            "id": handoff.customer_id,
            "verified": handoff.customer_id is not None,
            "name": mask_name(profile.name) if profile else None,
            "age": profile.age if profile else None,
            "vip": profile.vip if profile else False,
        },
        "reason": {
            "code": handoff.reason,
            "label": REASONS.get(handoff.reason, handoff.reason),
            "detail": handoff.reason_detail,
        },
        "group": handoff.group,
        "priority": handoff.priority,
        "enqueued_at": handoff.enqueued_at,
        "transcript": messages,
        "intents": intents,
        "slots": {
            k: mask_entity_value(k, v) if not isinstance(v, str) else mask_text(v)
            for k, v in slots.items()
            if v is not None and k not in INTERNAL_SLOTS
        },
        "sentiment": {
            "trend": trend,
            "latest": trend[-1] if trend else None,
            "average": round(sum(trend) / len(trend), 3) if trend else None,
        },
        "knowledge_tried": knowledge,
        "suggestions": suggestions,
    }
