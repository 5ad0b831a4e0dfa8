"""``bot test core`` helpers: retrieval intents as test stories write them, and steps that
hold during the turn (a form opened and closed by one message)."""

from __future__ import annotations

from typing import Any

from bot.core.actions.retrieval import selected_response
from bot.core.stories import ANY_VALUE
from bot.evaluation.stories import _full_intent, _slot_holds, _use_expected_intent


def selector_parse(intent: str, key: str) -> dict[str, Any]:
    return {
        "intent": {"name": intent, "confidence": 0.9},
        "response_selector": {
            "default": {"response": {"intent_response_key": key, "utter_action": f"utter_{key}"}}
        },
    }


def test_a_retrieval_intent_is_compared_with_the_selected_key() -> None:
    parse = selector_parse("chitchat", "chitchat/ask_name")
    assert _full_intent(parse, "chitchat/ask_name") == "chitchat/ask_name"
    assert _full_intent(parse, "chitchat") == "chitchat"  # the story names the base intent
    assert (
        _full_intent(selector_parse("greet", "chitchat/ask_name"), "chitchat/ask_name") == "greet"
    )
    assert _full_intent({"intent": {"name": "chitchat"}}, "chitchat/ask_name") == "chitchat"


def test_a_missed_retrieval_intent_goes_on_with_the_storys_key() -> None:
    parse = selector_parse("greet", "chitchat/ask_age")
    _use_expected_intent(parse, "chitchat/ask_name")
    assert parse["intent"]["name"] == "chitchat"
    assert selected_response(parse, "chitchat") == "utter_chitchat/ask_name"
    plain = selector_parse("chitchat", "chitchat/ask_age")
    _use_expected_intent(plain, "greet")
    assert plain["intent"]["name"] == "greet"
    assert plain["response_selector"]["default"]["response"]["intent_response_key"] == (
        "chitchat/ask_age"
    )


def test_a_slot_step_holds_at_the_end_or_during_the_turn() -> None:
    assert _slot_holds("上海", ["上海"])
    assert _slot_holds(None, ["上海", None])  # requested_slot: null after the form closed
    assert not _slot_holds("北京", ["上海"])
    assert _slot_holds(ANY_VALUE, [None, "x"]) and not _slot_holds(ANY_VALUE, [None])
