"""Events are the plain Rasa event dicts: the same names and keys ``rasa_sdk`` uses."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from rasa_sdk import events as sdk

from bot.core import events as ev

# (our constructor call, the rasa_sdk event of the same kind)
PAIRS: list[tuple[str, Callable[[], dict[str, Any]], Callable[[], dict[str, Any]]]] = [
    (
        "user",
        lambda: ev.user("你好", {"intent": {"name": "greet"}}),
        lambda: sdk.UserUttered("你好", {"intent": {"name": "greet"}}),
    ),
    ("bot", lambda: ev.bot("您好"), lambda: sdk.BotUttered("您好")),
    ("action", lambda: ev.action("utter_greet"), lambda: sdk.ActionExecuted("utter_greet")),
    ("slot", lambda: ev.slot("card_last4", "1234"), lambda: sdk.SlotSet("card_last4", "1234")),
    ("active_loop", lambda: ev.active_loop("loss_form"), lambda: sdk.ActiveLoop("loss_form")),
    ("session_started", ev.session_started, sdk.SessionStarted),
    ("restart", ev.restart, sdk.Restarted),
    ("pause", ev.pause, sdk.ConversationPaused),
    ("resume", ev.resume, sdk.ConversationResumed),
    ("followup", lambda: ev.followup("utter_x"), lambda: sdk.FollowupAction("utter_x")),
    ("reset_slots", ev.reset_slots, sdk.AllSlotsReset),
    ("rewind", ev.rewind, sdk.UserUtteranceReverted),
    ("undo", ev.undo, sdk.ActionReverted),
    (
        "action_execution_rejected",
        lambda: ev.action_execution_rejected("loss_form"),
        lambda: sdk.ActionExecutionRejected("loss_form"),
    ),
    ("loop_interrupted", lambda: ev.loop_interrupted(True), lambda: sdk.LoopInterrupted(True)),
]


@pytest.mark.parametrize(("kind", "ours", "theirs"), PAIRS, ids=[p[0] for p in PAIRS])
def test_event_names_and_keys_match_rasa_sdk(
    kind: str, ours: Callable[[], dict[str, Any]], theirs: Callable[[], dict[str, Any]]
) -> None:
    mine, sdk_event = ours(), theirs()
    assert mine["event"] == sdk_event["event"] == kind
    # Every key rasa_sdk writes is there (ours may carry more, e.g. message_id).
    assert set(sdk_event) <= set(mine)
    for key in set(sdk_event) - {
        "timestamp",
        "data",
        "metadata",
        "parse_data",
        "policy",
        "confidence",
        "input_channel",
    }:
        assert mine[key] == sdk_event[key], key


@pytest.mark.parametrize(("kind", "ours", "theirs"), PAIRS, ids=[p[0] for p in PAIRS])
def test_events_carry_a_numeric_timestamp_and_are_json(
    kind: str, ours: Callable[[], dict[str, Any]], theirs: Callable[[], dict[str, Any]]
) -> None:
    event = ours()
    assert isinstance(event["timestamp"], float)
    assert json.loads(json.dumps(event, ensure_ascii=False)) == event


def test_explicit_timestamp_is_kept() -> None:
    assert ev.slot("a", 1, timestamp=12.5)["timestamp"] == 12.5
    assert ev.user("x", {}, timestamp=0.0)["timestamp"] == 0.0  # 0 is a timestamp, not "unset"
    assert ev.rewind(timestamp=3.0) == {"event": "rewind", "timestamp": 3.0}


def test_user_event_fields() -> None:
    parse = {
        "intent": {"name": "query_balance", "confidence": 0.9},
        "entities": [{"entity": "card_last4", "value": "1234"}],
    }
    event = ev.user(
        "查尾号1234",
        parse,
        input_channel="rest",
        message_id="m1",
        metadata={"k": "v"},
        timestamp=1.0,
    )
    assert event == {
        "event": "user",
        "timestamp": 1.0,
        "text": "查尾号1234",
        "parse_data": parse,
        "input_channel": "rest",
        "message_id": "m1",
        "metadata": {"k": "v"},
    }
    assert ev.user("x", {})["metadata"] == {}


def test_bot_event_defaults_data_and_metadata_to_dicts() -> None:
    event = ev.bot("hi", timestamp=1.0)
    assert event == {"event": "bot", "timestamp": 1.0, "text": "hi", "data": {}, "metadata": {}}
    buttons = {"buttons": [{"title": "转人工", "payload": "/request_human"}]}
    assert ev.bot("hi", buttons)["data"] == buttons


def test_action_event_records_policy_and_confidence() -> None:
    event = ev.action("utter_greet", "RulePolicy", 1.0, timestamp=2.0)
    assert event == {
        "event": "action",
        "timestamp": 2.0,
        "name": "utter_greet",
        "policy": "RulePolicy",
        "confidence": 1.0,
    }


def test_events_are_independent_dicts() -> None:
    a, b = ev.user("x", {}), ev.user("x", {})
    a["metadata"]["changed"] = True
    assert b["metadata"] == {}
