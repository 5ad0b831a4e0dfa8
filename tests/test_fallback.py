"""FallbackClassifier with Rasa's semantics: strictly below ``threshold``, or the top two
closer than ``ambiguity_threshold``, gives ``nlu_fallback`` with confidence = threshold,
prepended to the ranking."""

from __future__ import annotations

from typing import Any

import pytest

from bot.nlu.fallback import FALLBACK_INTENT, FallbackClassifier
from bot.nlu.interfaces import Message


def ranked(*pairs: tuple[str, float]) -> Message:
    ranking = [{"name": n, "confidence": c} for n, c in pairs]
    return Message("x", intent=dict(ranking[0]) if ranking else None, intent_ranking=ranking)


def run(message: Message, threshold: float = 0.5, ambiguity: float = 0.25) -> Message:
    FallbackClassifier({"threshold": threshold, "ambiguity_threshold": ambiguity}).process(message)
    return message


def test_below_threshold_falls_back() -> None:
    message = run(ranked(("faq", 0.49), ("greet", 0.01)))
    assert message.intent == {"name": FALLBACK_INTENT, "confidence": 0.5}
    assert message.intent_ranking == [
        {"name": FALLBACK_INTENT, "confidence": 0.5},
        {"name": "faq", "confidence": 0.49},
        {"name": "greet", "confidence": 0.01},
    ]


def test_exactly_at_threshold_does_not_fall_back() -> None:
    message = run(ranked(("faq", 0.5), ("greet", 0.125)))
    assert message.intent == {"name": "faq", "confidence": 0.5}
    assert [r["name"] for r in message.intent_ranking] == ["faq", "greet"]


def test_ambiguous_top_two_fall_back() -> None:
    message = run(ranked(("faq", 0.625), ("complain", 0.5)))  # margin 0.125 < 0.25
    assert message.intent == {"name": FALLBACK_INTENT, "confidence": 0.5}
    assert [r["name"] for r in message.intent_ranking] == [FALLBACK_INTENT, "faq", "complain"]


def test_margin_equal_to_ambiguity_threshold_is_not_ambiguous() -> None:
    message = run(ranked(("faq", 0.75), ("complain", 0.5)))  # margin exactly 0.25
    assert message.intent is not None and message.intent["name"] == "faq"


def test_clear_winner_is_kept() -> None:
    message = run(ranked(("faq", 0.9), ("complain", 0.05), ("greet", 0.05)))
    assert message.intent == {"name": "faq", "confidence": 0.9}
    assert len(message.intent_ranking) == 3


def test_single_intent_ranking_has_no_ambiguity() -> None:
    message = run(ranked(("faq", 0.6)), ambiguity=0.9)
    assert message.intent is not None and message.intent["name"] == "faq"


def test_zero_ambiguity_threshold_only_checks_the_threshold() -> None:
    message = run(ranked(("faq", 0.5), ("greet", 0.5)), threshold=0.4, ambiguity=0.0)
    assert message.intent is not None and message.intent["name"] == "faq"


def test_no_intent_falls_back_with_full_confidence() -> None:
    message = run(ranked())
    assert message.intent == {"name": FALLBACK_INTENT, "confidence": 1.0}
    assert [r["name"] for r in message.intent_ranking] == [FALLBACK_INTENT]


def test_defaults_match_rasa() -> None:
    assert FallbackClassifier({}).config == {"threshold": 0.4, "ambiguity_threshold": 0.1}
    assert FALLBACK_INTENT == "nlu_fallback"


@pytest.mark.parametrize("text", ["查下尾号5678的余额", "你好"])
def test_in_a_pipeline_a_high_threshold_turns_everything_into_fallback(
    tiny_model: Any, text: str
) -> None:
    pipeline = tiny_model.model.nlu
    fallback = pipeline.components[-1]
    assert isinstance(fallback, FallbackClassifier)
    before = pipeline.parse(text)
    assert before["intent"]["name"] != FALLBACK_INTENT
    strict = FallbackClassifier({"threshold": 1.01, "ambiguity_threshold": 0.0})
    message = Message(text)
    for component in pipeline.components[:-1]:
        component.process(message)
    strict.process(message)
    result = message.parse_result()
    assert result["intent"] == {"name": FALLBACK_INTENT, "confidence": 1.01}
    assert result["intent_ranking"][1:] == before["intent_ranking"]
    assert result["entities"] == before["entities"]  # entities survive the fallback
