"""When to hand off (bot/handoff/triggers.py): every reason of decide(), their order, the
fallback streak and the sentiment window."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from bot.handoff.config import HandoffConfig, parse
from bot.handoff.routing import Profile
from bot.handoff.triggers import (
    REASONS,
    Decision,
    decide,
    fallback_streak,
    intent_of,
    is_fallback_turn,
    negative_score,
    rule_decision,
)

CONFIG = parse(
    {
        "groups": ["账户", "贷款", "老年客户专线", "贵宾"],
        "triggers": {
            "intents": ["request_human", "complain"],
            "fallbacks_in_a_row": 2,
            "sentiment": {"threshold": 0.75, "window": 3},
            "action_failed": True,
            "rules": [
                {"name": "loan_advice", "keywords": ["贷款方案", "推荐贷款"], "group": "贷款"},
                {
                    "name": "elderly_asks",
                    "intents": ["request_human"],
                    "min_age": 60,
                    "group": "老年客户专线",
                    "priority": 1,
                },
                {
                    "name": "vip_transfer",
                    "intents": ["transfer_money"],
                    "keywords": ["大额"],
                    "vip": True,
                    "group": "贵宾",
                    "priority": 2,
                },
            ],
        },
    },
    {},
)
YOUNG = Profile("C1", "张伟", age=30)
OLD = Profile("C2", "李秀英", age=60)
VIP = Profile("C3", "王芳", age=40, vip=True)


def run(
    config: HandoffConfig = CONFIG,
    *,
    intent: str | None = "greet",
    text: str = "你好",
    actions: Sequence[str] = ("utter_greet",),
    action_failed: bool = False,
    paused_by_bot: bool = False,
    fallbacks: int = 0,
    negative: Sequence[float] = (),
    profile: Profile | None = None,
) -> Decision | None:
    return decide(
        config,
        intent=intent,
        text=text,
        actions=actions,
        action_failed=action_failed,
        paused_by_bot=paused_by_bot,
        fallbacks_in_a_row=fallbacks,
        negative_window=negative,
        profile=profile,
    )


def test_a_normal_turn_hands_nothing_off() -> None:
    assert run() is None
    assert (
        run(
            intent="query_balance",
            text="查余额",
            negative=[0.1, 0.2, 0.3],
            fallbacks=1,
            profile=YOUNG,
        )
        is None
    )


def test_customer_request() -> None:
    decision = run(intent="request_human", text="转人工", profile=YOUNG)
    assert decision is not None and decision.reason == "customer_request"
    assert decision.group is None and decision.priority == 0
    assert decision.reason in REASONS


def test_the_bots_own_handoff_action_counts_as_a_request() -> None:
    decision = run(intent="faq", actions=["action_handoff"], paused_by_bot=True)
    assert decision is not None and decision.reason == "customer_request"


def test_complaint() -> None:
    decision = run(intent="complain", text="我要投诉")
    assert decision is not None and decision.reason == "complaint"
    assert run(intent="complain", paused_by_bot=True).reason == "complaint"  # type: ignore[union-attr]


def test_trigger_intents_come_from_the_config() -> None:
    config = parse({"triggers": {"intents": ["speak_to_manager"]}}, {})
    assert run(config, intent="request_human") is None
    decision = run(config, intent="speak_to_manager")
    assert decision is not None and decision.reason == "customer_request"


def test_rule_by_keyword() -> None:
    decision = run(intent="faq", text="能帮我做个贷款方案吗")
    assert decision == Decision("rule", "loan_advice", "贷款", 0)
    assert run(intent="faq", text="贷款利率多少") is None  # no keyword of the rule


def test_rule_by_intent_and_min_age() -> None:
    decision = run(intent="request_human", text="转人工", profile=OLD)
    assert decision == Decision("rule", "elderly_asks", "老年客户专线", 1)
    # younger, unknown age or no profile: an ordinary request
    for profile in (YOUNG, Profile("C", "x", age=None), None):
        found = run(intent="request_human", text="转人工", profile=profile)
        assert found is not None and found.reason == "customer_request"


def test_rule_by_intent_keyword_and_vip_needs_all_of_them() -> None:
    decision = run(intent="transfer_money", text="我要大额转账", profile=VIP)
    assert decision == Decision("rule", "vip_transfer", "贵宾", 2)
    assert run(intent="transfer_money", text="我要大额转账", profile=YOUNG) is None
    assert run(intent="transfer_money", text="我要大额转账", profile=None) is None
    assert run(intent="transfer_money", text="我要转账", profile=VIP) is None
    assert run(intent="faq", text="我要大额转账", profile=VIP) is None


def test_a_vip_false_rule_matches_only_non_vips() -> None:
    config = parse(
        {"triggers": {"rules": [{"name": "std", "keywords": ["经理"], "vip": False}]}}, {}
    )
    assert rule_decision(config, None, "找经理", YOUNG) == Decision("rule", "std", None, 0)
    assert rule_decision(config, None, "找经理", VIP) is None


def test_rules_come_first_and_in_order() -> None:
    config = parse(
        {
            "groups": ["a", "b"],
            "triggers": {
                "rules": [
                    {"name": "first", "keywords": ["贷款"], "group": "a"},
                    {"name": "second", "keywords": ["贷款方案"], "group": "b"},
                ]
            },
        },
        {},
    )
    decision = run(config, intent="complain", text="贷款方案太差我要投诉", action_failed=True)
    assert decision == Decision("rule", "first", "a", 0)


def test_action_failed() -> None:
    decision = run(intent="query_balance", action_failed=True)
    assert decision is not None and decision.reason == "action_failed"
    off = parse({"triggers": {"action_failed": False}}, {})
    assert run(off, intent="query_balance", action_failed=True) is None


def test_request_beats_action_failed_beats_fallback_beats_sentiment() -> None:
    everything = {"action_failed": True, "fallbacks": 5, "negative": [0.9, 0.9, 0.9]}
    assert run(intent="request_human", **everything).reason == "customer_request"  # type: ignore[union-attr, arg-type]
    assert run(intent="nlu_fallback", **everything).reason == "action_failed"  # type: ignore[union-attr, arg-type]
    decision = run(intent="nlu_fallback", fallbacks=5, negative=[0.9, 0.9, 0.9])
    assert decision is not None and decision.reason == "repeated_fallback"


@pytest.mark.parametrize(
    ("streak", "expected"),
    [(0, None), (1, None), (2, "repeated_fallback"), (3, "repeated_fallback")],
)
def test_repeated_fallback(streak: int, expected: str | None) -> None:
    decision = run(intent="nlu_fallback", actions=["action_default_fallback"], fallbacks=streak)
    assert (decision.reason if decision else None) == expected
    if decision:
        assert str(streak) in decision.detail


def test_repeated_fallback_can_be_switched_off() -> None:
    off = parse({"triggers": {"fallbacks_in_a_row": 0}}, {})
    assert run(off, intent="nlu_fallback", fallbacks=10) is None


@pytest.mark.parametrize(
    ("window", "expected"),
    [
        ([0.8, 0.8, 0.8], True),
        ([0.75, 0.75, 0.75], True),  # the mean reaches the threshold exactly
        ([0.7, 0.8, 0.74], False),  # mean 0.7467
        ([0.1, 0.95, 0.95, 0.95], True),  # only the last 3 count
        ([0.95, 0.95, 0.95, 0.1], False),  # the latest message is not negative
        ([0.99, 0.99, 0.49], False),  # mean 0.82 but the latest is below 0.5
        ([0.9], True),  # fewer messages than the window: their mean
        ([], False),
    ],
)
def test_negative_sentiment(window: list[float], expected: bool) -> None:
    decision = run(intent="query_balance", negative=window)
    assert (decision is not None and decision.reason == "negative_sentiment") is expected
    if decision:
        assert decision.group is None and "平均" in decision.detail


def test_sentiment_threshold_and_window_from_the_config() -> None:
    config = parse({"triggers": {"sentiment": {"threshold": 0.5, "window": 1}}}, {})
    assert run(config, intent="greet", negative=[0.1, 0.1, 0.55]) is not None
    strict = parse({"triggers": {"sentiment": {"threshold": 0.95, "window": 2}}}, {})
    assert run(strict, intent="greet", negative=[0.9, 0.9]) is None


# --- helpers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("intent", "actions", "expected"),
    [
        ("nlu_fallback", [], True),
        ("greet", ["action_default_fallback"], True),
        ("greet", ["action_two_stage_fallback", "action_listen"], True),
        (None, ["action_listen"], False),
        ("greet", ["utter_greet", "action_listen"], False),
        ("faq", [], False),
    ],
)
def test_is_fallback_turn(intent: str | None, actions: list[str], expected: bool) -> None:
    assert is_fallback_turn(intent, actions) is expected


def test_fallback_streak_counts_the_latest_turns_in_a_row() -> None:
    fb: tuple[str | None, list[str]] = ("nlu_fallback", ["action_default_fallback"])
    ok: tuple[str | None, list[str]] = ("greet", ["utter_greet"])
    assert fallback_streak([]) == 0
    assert fallback_streak([ok]) == 0
    assert fallback_streak([fb]) == 1
    assert fallback_streak([fb, fb, ok]) == 0
    assert fallback_streak([fb, ok, fb, fb]) == 2
    assert fallback_streak([("greet", ["action_two_stage_fallback"]), fb, fb]) == 3


def test_intent_of_and_negative_score() -> None:
    data: dict[str, Any] = {
        "intent": {"name": "greet", "confidence": 0.9},
        "sentiment": {"negative": 0.8},
    }
    assert intent_of(data) == "greet" and negative_score(data) == 0.8
    assert intent_of(None) is None and negative_score(None) is None
    assert intent_of({"intent": "greet"}) is None  # not the parse-data shape
    assert intent_of({"intent": {"name": ""}}) is None
    assert negative_score({"sentiment": {"negative": "high"}}) is None
    assert negative_score({"sentiment": {"negative": 1}}) == 1.0
