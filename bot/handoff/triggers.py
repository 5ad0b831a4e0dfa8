"""When to hand off: decided after each bot turn from what the turn did and the recent
conversation. Pure functions (no I/O)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.builtin_responses import builtin_text
from bot.handoff.config import HandoffConfig
from bot.handoff.routing import Profile
from bot.privacy import mask_text

FALLBACK_ACTIONS = frozenset({"action_default_fallback", "action_two_stage_fallback"})
FALLBACK_INTENTS = frozenset({"nlu_fallback"})
# An explicit ask for a person: the entity the NLU finds in "转人工", "找真人", "我要投诉"
# (the project's nlu_data/human_ask.yml). The same test as actions/handoff.py.
HUMAN_ASK_ENTITY = "human_ask"
COMPLAINT_CONFIDENCE = 0.8
MAX_DETAIL_TEXT = 60  # characters of the customer's words in a decision's detail

REASON_CODES = (
    "customer_request",
    "complaint",
    "repeated_fallback",
    "negative_sentiment",
    "action_failed",
    "rule",
    "paused",
)
# The label agents read for each reason: built-in responses utter_handoff_reason_<code>.
REASONS = {code: builtin_text(f"utter_handoff_reason_{code}") for code in REASON_CODES}


def detail(reason: str, **values: object) -> str:
    """The agent-facing detail of a decision: ``utter_handoff_detail_<reason>`` filled."""
    return builtin_text(f"utter_handoff_detail_{reason}").format(**values)


@dataclass(frozen=True)
class Decision:
    reason: str  # a key of REASONS
    detail: str
    group: str | None = None
    priority: int = 0


def intent_of(parse_data: dict[str, Any] | None) -> str | None:
    intent = (parse_data or {}).get("intent") or {}
    name = intent.get("name") if isinstance(intent, dict) else None
    return str(name) if name else None


def negative_score(parse_data: dict[str, Any] | None) -> float | None:
    sentiment = (parse_data or {}).get("sentiment")
    if isinstance(sentiment, dict) and isinstance(sentiment.get("negative"), int | float):
        return float(sentiment["negative"])
    return None


def explicit_ask(parse_data: dict[str, Any] | None, text: str) -> bool:
    """Whether the message asks for a person in so many words: a button (``/request_human``),
    the ``human_ask`` entity, or a confident or negative complaint. An intent trigger
    (``triggers.intents``) needs one; a vague 我想问问手续费 read as ``request_human`` does
    not hand off (the bot asks what it is about)."""
    if text.strip().startswith("/"):
        return True
    data = parse_data or {}
    if any(e.get("entity") == HUMAN_ASK_ENTITY for e in data.get("entities") or []):
        return True
    intent = data.get("intent") or {}
    if not isinstance(intent, dict) or intent.get("name") != "complain":
        return False
    negative = negative_score(data)
    return float(intent.get("confidence") or 0.0) >= COMPLAINT_CONFIDENCE or (
        negative is not None and negative >= 0.5
    )


def is_fallback_turn(intent: str | None, actions: Sequence[str]) -> bool:
    return intent in FALLBACK_INTENTS or any(a in FALLBACK_ACTIONS for a in actions)


def fallback_streak(turns: Sequence[tuple[str | None, Sequence[str]]]) -> int:
    """How many of the latest turns ``(intent, actions)`` in a row were fallbacks."""
    streak = 0
    for intent, actions in reversed(turns):
        if not is_fallback_turn(intent, actions):
            break
        streak += 1
    return streak


def rule_decision(
    config: HandoffConfig, intent: str | None, text: str, profile: Profile | None
) -> Decision | None:
    for rule in config.rules:
        if rule.intents and intent not in rule.intents:
            continue
        if rule.keywords and not any(k in text for k in rule.keywords):
            continue
        if rule.min_age is not None and (
            profile is None or profile.age is None or profile.age < rule.min_age
        ):
            continue
        if rule.vip is not None and (profile is None or profile.vip != rule.vip):
            continue
        return Decision("rule", rule.name, rule.group, rule.priority)
    return None


def decide(
    config: HandoffConfig,
    *,
    intent: str | None,
    text: str,
    actions: Sequence[str],
    action_failed: bool,
    paused_by_bot: bool,
    fallbacks_in_a_row: int,
    negative_window: Sequence[float],
    profile: Profile | None,
) -> Decision | None:
    """The reason to hand off after this turn, or None.

    ``paused_by_bot``: the turn's own actions handed off (``action_handoff``);
    ``fallbacks_in_a_row``: including this turn; ``negative_window``: P(negative) of the latest
    customer messages, this one last."""
    t = config.triggers
    rule = rule_decision(config, intent, text, profile)
    if rule is not None:
        return rule
    if paused_by_bot or intent in t.intents:
        # the detail is what the customer said (the label already says why): no
        # 客户要求转人工：客户要求人工服务
        if text.strip().startswith("/"):
            said = detail("pressed_button")
        else:
            said = detail("said", text=mask_text(text.strip())[:MAX_DETAIL_TEXT])
        return Decision("complaint" if intent == "complain" else "customer_request", said)
    if t.action_failed and action_failed:
        return Decision("action_failed", detail("action_failed"))
    if t.fallbacks_in_a_row > 0 and fallbacks_in_a_row >= t.fallbacks_in_a_row:
        return Decision("repeated_fallback", detail("repeated_fallback", count=fallbacks_in_a_row))
    window = list(negative_window)[-t.sentiment_window :]
    if window and window[-1] >= 0.5:
        mean = sum(window) / len(window)
        if mean >= t.sentiment_threshold:
            return Decision(
                "negative_sentiment",
                detail("negative_sentiment", count=len(window), mean=f"{mean:.2f}"),
            )
    return None
