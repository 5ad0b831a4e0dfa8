"""The tracker: state replayed from events, the tracker JSON of docs/rasa-compat.md, and the
featurised history the policies read."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from rasa_sdk.interfaces import Tracker

from bot.core import events as ev
from bot.core.messages import UserMessage
from bot.core.processor import MessageProcessor
from bot.core.tracker import LISTEN, DialogueStateTracker, applied_events
from bot.domain import REQUESTED_SLOT, parse_domain

COMPAT = Path(__file__).resolve().parents[1] / "docs" / "rasa-compat.md"
# The tracker keys as docs/rasa-compat.md lists them.
TRACKER_KEYS = {
    "sender_id",
    "slots",
    "latest_message",
    "latest_event_time",
    "followup_action",
    "paused",
    "events",
    "latest_input_channel",
    "active_loop",
    "latest_action",
    "latest_action_name",
}

DOMAIN = parse_domain(
    yaml.safe_load("""
intents: [greet, report_loss, inform, affirm]
entities: [card_last4, account_type]
slots:
  card_last4:
    type: text
    mappings: [{type: from_entity, entity: card_last4}]
  account_type:
    type: categorical
    values: [debit_card, credit_card]
    mappings: [{type: from_entity, entity: account_type}]
  verified:
    type: bool
    initial_value: false
    mappings: [{type: custom}]
  hidden:
    type: text
    influence_conversation: false
    mappings: [{type: custom}]
forms:
  loss_form:
    required_slots: [card_last4]
responses:
  utter_greet:
    - text: 您好
      buttons: [{title: 挂失, payload: /report_loss}]
  utter_ask_card_last4: [{text: 尾号？}]
"""),
    Path("domain.yml"),
)


def compat_tracker_keys() -> set[str]:
    text = COMPAT.read_text(encoding="utf-8")
    match = re.search(r"`tracker` holds `([^.]*)`", text, re.DOTALL)
    assert match, "docs/rasa-compat.md no longer lists the tracker keys"
    keys = {k.strip(" `\n") for k in match.group(1).replace("\n", " ").split(",")}
    assert keys == TRACKER_KEYS  # the list above must follow the document
    return keys


def turn(
    intent: str,
    entities: list[dict[str, Any]] | None = None,
    t: float = 1.0,
    text: str | None = None,
) -> list[dict[str, Any]]:
    parse = {"intent": {"name": intent, "confidence": 1.0}, "entities": entities or []}
    return [
        ev.action(LISTEN, timestamp=t),
        ev.user(text or f"/{intent}", parse, input_channel="rest", timestamp=t),
    ]


def tracker(events: list[dict[str, Any]]) -> DialogueStateTracker:
    return DialogueStateTracker.from_events("s1", events, DOMAIN)


async def real_conversation() -> DialogueStateTracker:
    """A conversation made by the engine: greeting, then a form asking a slot."""
    from bot.config import ComponentSpec
    from bot.core.policies.ensemble import PolicyEnsemble
    from bot.core.policies.rule import RulePolicy
    from bot.core.stories import ActionStep, LoopStep, Story, UserStep

    rules = [
        Story("greet", (UserStep("greet"), ActionStep("utter_greet")), "rule"),
        Story(
            "form",
            (UserStep("report_loss"), ActionStep("loss_form"), LoopStep("loss_form")),
            "rule",
        ),
    ]
    ensemble = PolicyEnsemble([RulePolicy(ComponentSpec("RulePolicy").options)])
    ensemble.train([], rules, DOMAIN)
    processor = MessageProcessor(DOMAIN, ensemble, clock=lambda: 1_700_000_000.0)
    await processor.handle(UserMessage("/greet", "s1", metadata={"m": 1}, message_id="id-1"))
    await processor.handle(UserMessage('/report_loss{"account_type": "credit_card"}', "s1"))
    return await processor.get_tracker("s1")


# --- the tracker JSON ------------------------------------------------------------------------


async def test_current_state_has_every_key_of_rasa_compat() -> None:
    state = (await real_conversation()).current_state()
    assert set(state) == compat_tracker_keys()
    assert state["sender_id"] == "s1"
    assert state["slots"]["account_type"] == "credit_card"
    assert state["slots"][REQUESTED_SLOT] == "card_last4"
    assert state["active_loop"] == {"name": "loss_form", "validate": True, "rejected": False}
    assert state["latest_action_name"] == LISTEN
    assert state["latest_action"] == {"action_name": LISTEN}
    assert state["latest_message"]["intent"]["name"] == "report_loss"
    assert state["latest_input_channel"] == "rest"
    assert state["latest_event_time"] == 1_700_000_000.0
    assert state["paused"] is False
    assert state["followup_action"] is None


async def test_tracker_json_round_trip() -> None:
    original = await real_conversation()
    state = original.current_state()
    wire = json.loads(json.dumps(state, ensure_ascii=False))
    assert wire == state  # nothing in the state is lost by JSON
    again = DialogueStateTracker.from_events(wire["sender_id"], wire["events"], DOMAIN)
    assert again.current_state() == state
    assert again.past_states() == original.past_states()


async def test_rasa_sdk_reads_the_tracker_unchanged() -> None:
    state = json.loads(json.dumps((await real_conversation()).current_state()))
    sdk = Tracker.from_dict(state)
    assert sdk.events == state["events"]
    assert sdk.current_state()["events"] == state["events"]
    assert sdk.sender_id == "s1"
    assert sdk.get_slot("account_type") == "credit_card"
    assert sdk.get_intent_of_latest_message() == "report_loss"
    assert sdk.active_loop_name == "loss_form"
    assert sdk.latest_action_name == LISTEN
    assert sdk.get_latest_input_channel() == "rest"
    assert sdk.is_paused() is False
    user_events = [e for e in sdk.events if e["event"] == "user"]
    assert [e["metadata"] for e in user_events] == [{"m": 1}, {}]
    assert user_events[0]["message_id"] == "id-1"
    assert sdk.slots_to_validate() == {}


def test_empty_tracker_state() -> None:
    state = tracker([]).current_state()
    assert set(state) == TRACKER_KEYS
    assert state["events"] == []
    assert state["latest_event_time"] is None
    assert state["active_loop"] == {}
    assert state["latest_message"] == {"intent": {}, "entities": [], "text": None}
    assert state["slots"]["verified"] is False  # initial value
    Tracker.from_dict(state)  # rasa_sdk accepts it


# --- state from events -------------------------------------------------------------------------


def test_user_slot_and_action_events_update_the_state() -> None:
    t = tracker(
        [
            ev.session_started(timestamp=0.0),
            *turn("inform", [{"entity": "card_last4", "value": "1234"}], text="尾号1234"),
            ev.slot("card_last4", 1234, timestamp=1.0),
            ev.action("utter_greet", timestamp=2.0),
        ]
    )
    assert t.latest_intent == "inform"
    assert t.latest_message["text"] == "尾号1234"
    assert t.latest_message["entities"] == [{"entity": "card_last4", "value": "1234"}]
    assert t.get_slot("card_last4") == "1234"  # coerced to the text slot type
    assert t.latest_action_name == "utter_greet"
    assert t.latest_event_time == 2.0


def test_restart_forgets_everything_but_keeps_the_log() -> None:
    events = [
        *turn("greet"),
        ev.slot("card_last4", "1234"),
        ev.active_loop("loss_form"),
        ev.restart(timestamp=5.0),
    ]
    t = tracker(events)
    assert t.get_slot("card_last4") is None
    assert t.get_slot("verified") is False
    assert t.active_loop.name is None
    assert t.latest_message == {}
    assert t.latest_action_name is None
    assert len(t.events) == len(events)  # events are never dropped from the log
    assert applied_events(t.events) == []


def test_session_started_starts_afresh_then_applies_carried_slots() -> None:
    t = tracker(
        [
            *turn("greet"),
            ev.slot("card_last4", "1234"),
            ev.slot("hidden", "x"),
            ev.action("action_session_start"),
            ev.session_started(),
            ev.slot("card_last4", "1234"),
        ]
    )
    assert t.get_slot("card_last4") == "1234"
    assert t.get_slot("hidden") is None
    assert [e["event"] for e in applied_events(t.events)] == ["session_started", "slot"]


def test_rewind_removes_the_last_user_message_and_what_followed() -> None:
    before = [ev.session_started(), *turn("greet"), ev.action("utter_greet"), ev.bot("您好")]
    t = tracker(
        [
            *before,
            *turn("inform", [{"entity": "card_last4", "value": "9999"}]),
            ev.slot("card_last4", "9999"),
            ev.action("action_default_fallback"),
            ev.bot("没听懂"),
            ev.rewind(),
        ]
    )
    assert t.latest_intent == "greet"
    assert t.get_slot("card_last4") is None
    # As Rasa's UserUtteranceReverted: the action_listen before the message goes too, so
    # the conversation is back where the bot had just answered.
    assert applied_events(t.events) == before
    assert t.latest_action_name == "utter_greet"


def test_two_rewinds_go_back_two_turns() -> None:
    first = [ev.session_started(), *turn("greet"), ev.action("utter_greet")]
    t = tracker(
        [
            *first,
            *turn("report_loss"),
            ev.action("loss_form"),
            *turn("inform"),
            ev.action("action_back"),
            ev.rewind(),
            ev.rewind(),
        ]
    )
    assert applied_events(t.events) == first


def test_undo_removes_the_last_action_and_what_followed() -> None:
    t = tracker(
        [
            *turn("greet"),
            ev.action("utter_greet"),
            ev.bot("您好"),
            ev.slot("hidden", "x"),
            ev.undo(),
        ]
    )
    assert t.latest_action_name == LISTEN
    assert t.get_slot("hidden") is None
    assert t.latest_intent == "greet"


def test_reset_slots_returns_to_initial_values() -> None:
    t = tracker([ev.slot("verified", True), ev.slot("card_last4", "1"), ev.reset_slots()])
    assert t.get_slot("verified") is False
    assert t.get_slot("card_last4") is None


def test_pause_and_resume() -> None:
    assert tracker([*turn("greet"), ev.pause()]).paused is True
    assert tracker([*turn("greet"), ev.pause(), *turn("greet")]).paused is True
    assert tracker([ev.pause(), ev.resume()]).paused is False
    assert tracker([ev.pause(), ev.restart()]).paused is False
    assert tracker([ev.session_started(), ev.pause()]).paused is True
    assert tracker([ev.pause(), ev.session_started()]).paused is True  # see test_processor
    # a pause is not undone by rewinding the message it came after
    assert tracker([*turn("greet"), ev.pause(), ev.rewind()]).paused is True


def test_followup_action_is_cleared_when_it_runs() -> None:
    t = tracker([*turn("greet"), ev.followup("utter_greet")])
    assert t.followup_action == "utter_greet"
    assert t.current_state()["followup_action"] == "utter_greet"
    t.update(ev.action("utter_greet"))
    assert t.followup_action is None


def test_loop_rejection_is_cleared_by_the_next_message() -> None:
    t = tracker(
        [ev.active_loop("loss_form"), *turn("greet"), ev.action_execution_rejected("loss_form")]
    )
    assert t.active_loop.rejected is True
    assert t.current_state()["active_loop"]["rejected"] is True
    t.extend(turn("inform"))
    assert t.active_loop.rejected is False
    t.update(ev.action_execution_rejected("other_form"))
    assert t.active_loop.rejected is False


def test_update_equals_replay() -> None:
    events = [
        ev.session_started(),
        *turn("greet"),
        ev.slot("verified", "true"),
        ev.action("utter_greet"),
        ev.pause(),
        ev.rewind(),
        *turn("report_loss"),
        ev.active_loop("loss_form"),
        ev.slot(REQUESTED_SLOT, "card_last4"),
        ev.undo(),
        ev.followup("utter_greet"),
        ev.resume(),
    ]
    built = DialogueStateTracker("s1", DOMAIN)
    built._reset_state()
    built.extend([dict(e) for e in events])
    assert built.current_state() == tracker(events).current_state()


def test_user_turns_since() -> None:
    t = tracker(
        [
            *turn("greet"),
            ev.action("utter_greet"),
            ev.active_loop("loss_form"),
            *turn("inform"),
            *turn("inform"),
        ]
    )
    assert t.user_turns_since("active_loop", "loss_form") == 2
    assert t.user_turns_since("action", "utter_greet") == 2
    assert t.user_turns_since("restart") == 3


# --- featurised states -------------------------------------------------------------------------


def test_past_states_pair_each_action_with_the_state_before_it() -> None:
    t = tracker(
        [
            ev.action("action_session_start"),
            ev.session_started(),
            ev.slot("hidden", "x"),
            *turn("report_loss", [{"entity": "account_type", "value": "gold_card"}]),
            ev.slot("account_type", "gold_card"),
            ev.slot("verified", True),
            ev.action("loss_form"),
            ev.active_loop("loss_form"),
            ev.slot(REQUESTED_SLOT, "card_last4"),
        ]
    )
    states = t.past_states()
    assert [a for _, a in states] == [LISTEN, "loss_form", None]
    before_form = dict(states[1][0])
    assert before_form["intent"] == "report_loss"
    assert before_form["prev_action"] == LISTEN
    assert before_form["active_loop"] is None
    slots = dict(v for k, v in states[1][0] if k == "slot")
    # categorical outside its values, bool by value, influence_conversation false left out,
    # requested_slot never featurised
    assert slots == {"account_type": "__other__", "verified": True}
    assert ("entity", "account_type") in states[1][0]
    assert dict(states[2][0])["active_loop"] == "loss_form"
    assert dict(states[2][0])["prev_action"] == "loss_form"


def test_states_are_hashable() -> None:
    states = tracker([*turn("greet"), ev.slot("verified", True)]).past_states()
    assert len({s for s, _ in states}) == len(states)


@pytest.mark.parametrize("value", [None, False])
def test_unset_and_false_bool_slots_differ(value: Any) -> None:
    state = tracker([*turn("greet"), ev.slot("verified", value)]).past_states()[-1][0]
    slots = dict(v for k, v in state if k == "slot")
    assert slots == ({} if value is None else {"verified": False})
