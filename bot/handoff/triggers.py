"""When to hand off: decided after each bot turn from what the turn did and the recent
conversation. Pure functions (no I/O)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.handoff.config import HandoffConfig
from bot.handoff.routing import Profile

FALLBACK_ACTIONS = frozenset({"action_default_fallback", "action_two_stage_fallback"})
FALLBACK_INTENTS = frozenset({"nlu_fallback"})

REASONS = {
    "customer_request": "客户要求转人工",
    "complaint": "客户投诉",
    "repeated_fallback": "机器人连续未能理解",
    "negative_sentiment": "客户情绪负面",
    "action_failed": "业务处理失败",
    "rule": "业务规则",
    "paused": "会话已暂停，等待人工",
}


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


def rule_decision(config: HandoffConfig, intent: str | None, text: str,
                  profile: Profile | None) -> Decision | None:
    for rule in config.rules:
        if rule.intents and intent not in rule.intents:
            continue
        if rule.keywords and not any(k in text for k in rule.keywords):
            continue
        if rule.min_age is not None and (profile is None or profile.age is None
                                         or profile.age < rule.min_age):
            continue
        if rule.vip is not None and (profile is None or profile.vip != rule.vip):
            continue
        return Decision("rule", rule.name, rule.group, rule.priority)
    return None


def decide(config: HandoffConfig, *, intent: str | None, text: str, actions: Sequence[str],
           action_failed: bool, paused_by_bot: bool, fallbacks_in_a_row: int,
           negative_window: Sequence[float], profile: Profile | None) -> Decision | None:
    """The reason to hand off after this turn, or None.

    ``paused_by_bot``: the turn's own actions handed off (``action_handoff``);
    ``fallbacks_in_a_row``: including this turn; ``negative_window``: P(negative) of the latest
    customer messages, this one last."""
    t = config.triggers
    rule = rule_decision(config, intent, text, profile)
    if rule is not None:
        return rule
    if paused_by_bot or intent in t.intents:
        if intent == "complain":
            return Decision("complaint", "客户表达不满或投诉")
        return Decision("customer_request", "客户要求人工服务")
    if t.action_failed and action_failed:
        return Decision("action_failed", "业务操作失败")
    if t.fallbacks_in_a_row > 0 and fallbacks_in_a_row >= t.fallbacks_in_a_row:
        return Decision("repeated_fallback", f"连续{fallbacks_in_a_row}次未能理解客户")
    window = list(negative_window)[-t.sentiment_window:]
    if window and window[-1] >= 0.5:
        mean = sum(window) / len(window)
        if mean >= t.sentiment_threshold:
            return Decision("negative_sentiment",
                            f"最近{len(window)}条消息负面概率平均{mean:.2f}")
    return None
