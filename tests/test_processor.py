"""One turn of a conversation: payload messages, sessions (expiry and carry-over with a
fake clock), pause and resume, restart and back, and persistence across a restart of the
server (a new processor and store on the same SQLite file)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.core import events as ev
from bot.core.messages import UserMessage
from bot.core.policies.ensemble import PolicyEnsemble
from bot.core.processor import MessageProcessor, parse_payload
from bot.core.tracker import LISTEN
from bot.core.tracker_store import InMemoryTrackerStore, SQLTrackerStore
from bot.domain import REQUESTED_SLOT

DOMAIN = """
version: "3.1"
intents: [greet, query_balance, report_loss, inform, affirm, deny, restart, back, thank]
entities: [card_last4, account_type]
slots:
  card_last4:
    type: text
    influence_conversation: false
    mappings: [{type: from_entity, entity: card_last4}]
  account_type:
    type: categorical
    values: [debit_card, credit_card]
    influence_conversation: false
    mappings: [{type: from_entity, entity: account_type}]
  loss_confirmed:
    type: bool
    mappings:
      - type: from_intent
        intent: affirm
        value: true
        conditions: [{active_loop: loss_form, requested_slot: loss_confirmed}]
      - type: from_intent
        intent: deny
        value: false
        conditions: [{active_loop: loss_form, requested_slot: loss_confirmed}]
forms:
  loss_form:
    required_slots: [card_last4, loss_confirmed]
responses:
  utter_greet: [{text: 您好}]
  utter_balance: [{text: "{account_type}余额请在App查看"}]
  utter_thank: [{text: 不客气}]
  utter_ask_card_last4: [{text: 请问尾号？}]
  utter_ask_loss_confirmed: [{text: "确认挂失尾号{card_last4}吗？"}]
  utter_done: [{text: "已挂失尾号{card_last4}"}]
  utter_restart: [{text: 已重新开始}]
session_config:
  session_expiration_time: 30
  carry_over_slots_to_new_session: true
"""

RULES = """
version: "3.1"
rules:
- rule: greet
  steps:
  - intent: greet
  - action: utter_greet
- rule: balance
  steps:
  - intent: query_balance
  - action: utter_balance
- rule: thank
  steps:
  - intent: thank
  - action: utter_thank
- rule: restart
  steps:
  - intent: restart
  - action: action_restart
- rule: back
  steps:
  - intent: back
  - action: action_back
- rule: start the form
  steps:
  - intent: report_loss
  - action: loss_form
  - active_loop: loss_form
- rule: submit
  condition:
  - active_loop: loss_form
  steps:
  - action: loss_form
  - active_loop: null
  - slot_was_set:
    - loss_confirmed: true
  - action: utter_done
"""


class Clock:
    def __init__(self, now: float = 1_767_225_600.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def built(dialogue):  # type: ignore[no-untyped-def]
    return dialogue(DOMAIN, RULES, [("RulePolicy", {})])


async def say(p: MessageProcessor, text: str, sender: str = "s", **kw: Any) -> list[str]:
    return [m.get("text", "") for m in await p.handle_message(UserMessage(text, sender, **kw))]


# --- payloads ---------------------------------------------------------------------------------


def test_parse_payload(built) -> None:  # type: ignore[no-untyped-def]
    domain, _ = built
    parsed = parse_payload('/inform{"card_last4": "1234", "account_type": ["a", "b"]}', domain)
    assert parsed is not None
    assert parsed["intent"] == {"name": "inform", "confidence": 1.0}
    assert parsed["intent_ranking"] == [parsed["intent"]]
    assert [(e["entity"], e["value"]) for e in parsed["entities"]] == [
        ("card_last4", "1234"),
        ("account_type", "a"),
        ("account_type", "b"),
    ]
    assert parse_payload("/greet", domain)["entities"] == []  # type: ignore[index]
    assert parse_payload(" /greet ", domain) is not None
    assert parse_payload("/greet{not json}", domain)["entities"] == []  # type: ignore[index]
    for bad in ("NaN", "Infinity", "-Infinity", "1e999"):  # not JSON values: nothing kept
        parsed = parse_payload(f'/inform{{"card_last4": {bad}}}', domain)
        assert parsed is not None and parsed["entities"] == [], bad
    assert parse_payload("/unknown_intent", domain) is None
    assert parse_payload("greet", domain) is None


async def test_text_without_nlu_has_no_intent(built) -> None:  # type: ignore[no-untyped-def]
    p = MessageProcessor(*built)
    assert p.parse("你好")["intent"]["name"] is None
    assert p.parse("/unknown")["intent"]["name"] is None


async def test_nlu_is_used_for_text(built) -> None:  # type: ignore[no-untyped-def]
    class NLU:
        def parse(self, text: str) -> dict[str, Any]:
            return {
                "text": text,
                "intent": {"name": "greet", "confidence": 0.9},
                "intent_ranking": [],
                "entities": [],
            }

    p = MessageProcessor(*built, nlu=NLU())
    result = await p.handle(UserMessage("早上好", "s"))
    assert result.parse_data["intent"]["name"] == "greet"
    assert [m["text"] for m in result.messages] == ["您好"]


# --- the turn and what is stored -----------------------------------------------------------------


async def test_first_message_starts_a_session(built) -> None:  # type: ignore[no-untyped-def]
    store = InMemoryTrackerStore()
    p = MessageProcessor(*built, tracker_store=store, clock=Clock())
    result = await p.handle(UserMessage("/greet", "s", metadata={"app": "ios"}, message_id="m1"))
    kinds = [(e["event"], e.get("name")) for e in result.events]
    assert kinds == [
        ("action", "action_session_start"),
        ("session_started", None),
        ("action", LISTEN),
        ("user", None),
        ("action", "utter_greet"),
        ("bot", None),
        ("action", LISTEN),
    ]
    assert await store.events("s") == result.events
    user = result.events[3]
    assert (user["text"], user["message_id"], user["metadata"], user["input_channel"]) == (
        "/greet",
        "m1",
        {"app": "ios"},
        "rest",
    )
    assert all(e["timestamp"] == 1_767_225_600.0 for e in result.events)
    # the next message does not start another session
    second = await p.handle(UserMessage("/thank", "s"))
    assert [e["event"] for e in second.events] == ["user", "action", "bot", "action"]
    assert await store.count("s") == len(result.events) + len(second.events)


async def test_trackers_of_different_senders_are_separate(built) -> None:  # type: ignore[no-untyped-def]
    p = MessageProcessor(*built)
    await say(p, '/query_balance{"account_type": "credit_card"}', "a")
    assert await say(p, "/query_balance", "b") == ["余额请在App查看"]
    assert (await p.get_tracker("a")).get_slot("account_type") == "credit_card"


async def test_two_processors_on_one_store_see_each_others_events(built) -> None:  # type: ignore[no-untyped-def]
    store = InMemoryTrackerStore()
    first = MessageProcessor(*built, tracker_store=store)
    second = MessageProcessor(*built, tracker_store=store)
    await say(first, "/report_loss")
    assert await say(second, '/inform{"card_last4": "2468"}') == ["确认挂失尾号2468吗？"]
    assert await say(first, "/affirm") == ["已挂失尾号2468"]  # its cached tracker caught up
    assert (await first.get_tracker("s")).events == await store.events("s")


async def test_max_predictions_stops_a_runaway_turn(dialogue) -> None:  # type: ignore[no-untyped-def]
    from bot.core.policies.interfaces import Policy, PolicyPrediction

    class Chatty(Policy):
        name = "Chatty"

        def train(self, *args: Any) -> None:
            pass

        def predict(self, *args: Any) -> PolicyPrediction:
            return PolicyPrediction("utter_greet", 1.0, "Chatty", 9)

    domain, _ = dialogue(DOMAIN, RULES, [("RulePolicy", {})])
    p = MessageProcessor(domain, PolicyEnsemble([Chatty({})]), max_predictions=4)
    result = await p.handle(UserMessage("/greet", "s"))
    assert len(result.messages) == 4
    tracker = await p.get_tracker("s")
    assert tracker.latest_action_name == LISTEN
    assert tracker.events[-1]["policy"] == "max_predictions"


# --- pause and resume ---------------------------------------------------------------------------


async def test_paused_conversation_stores_messages_but_predicts_nothing(built) -> None:  # type: ignore[no-untyped-def]
    p = MessageProcessor(*built)
    await say(p, "/greet")
    await p.append_events("s", [ev.pause()])
    result = await p.handle(UserMessage('/query_balance{"account_type": "debit_card"}', "s"))
    assert result.messages == [] and result.actions == []
    assert [e["event"] for e in result.events] == ["user", "slot"]
    tracker = await p.get_tracker("s")
    assert tracker.paused
    assert tracker.get_slot("account_type") == "debit_card"  # what the customer said counts
    await p.append_events("s", [ev.resume()])
    assert await say(p, "/query_balance") == ["debit_card余额请在App查看"]


async def test_a_pause_outlives_a_session_expiry(built) -> None:  # type: ignore[no-untyped-def]
    # A project decision (tests/stories/handoff.yml), unlike Rasa where a new session
    # unpauses: only an agent's resume gives the conversation back to the bot.
    clock = Clock()
    p = MessageProcessor(*built, clock=clock)
    await say(p, "/greet")
    await p.append_events("s", [ev.pause(timestamp=clock.now)])
    clock.now += 24 * 3600
    result = await p.handle(UserMessage("/greet", "s"))
    assert result.messages == []
    assert [e["event"] for e in result.events][:2] == ["action", "session_started"]
    assert (await p.get_tracker("s")).paused
    await p.append_events("s", [ev.resume(timestamp=clock.now)])
    assert await say(p, "/greet") == ["您好"]


# --- sessions -------------------------------------------------------------------------------------


async def test_expired_session_starts_a_new_one_carrying_slots(built) -> None:  # type: ignore[no-untyped-def]
    clock = Clock()
    p = MessageProcessor(*built, clock=clock)
    await say(p, '/query_balance{"account_type": "credit_card"}', customer_id="C1001")
    await say(p, "/report_loss", customer_id="C1001")  # a form left half-way
    clock.now += 29 * 60
    result = await p.handle(UserMessage("/greet", "s", customer_id="C1001"))
    assert "session_started" not in [e["event"] for e in result.events]  # still fresh
    clock.now += 31 * 60
    result = await p.handle(UserMessage("/greet", "s", customer_id="C1001"))
    kinds = [(e["event"], e.get("name")) for e in result.events]
    assert kinds[:2] == [("action", "action_session_start"), ("session_started", None)]
    assert ("slot", "account_type") in kinds[: kinds.index(("user", None))]
    assert [m["text"] for m in result.messages] == ["您好"]  # a fresh session: no form
    tracker = await p.get_tracker("s")
    assert tracker.get_slot("account_type") == "credit_card"
    assert tracker.get_slot(REQUESTED_SLOT) is None
    assert tracker.active_loop.name is None
    assert sum(e["event"] == "session_started" for e in tracker.events) == 2
    assert all(e["timestamp"] == clock.now for e in result.events)


async def test_slots_are_not_carried_over_when_configured_so(dialogue) -> None:  # type: ignore[no-untyped-def]
    domain_yaml = DOMAIN.replace(
        "carry_over_slots_to_new_session: true", "carry_over_slots_to_new_session: false"
    )
    clock = Clock()
    p = MessageProcessor(*dialogue(domain_yaml, RULES, [("RulePolicy", {})]), clock=clock)
    await say(p, '/query_balance{"account_type": "credit_card"}')
    clock.now += 3600
    assert await say(p, "/query_balance") == ["余额请在App查看"]
    assert (await p.get_tracker("s")).get_slot("account_type") is None


async def test_zero_expiration_never_expires(dialogue) -> None:  # type: ignore[no-untyped-def]
    clock = Clock()
    domain_yaml = DOMAIN.replace("session_expiration_time: 30", "session_expiration_time: 0")
    p = MessageProcessor(*dialogue(domain_yaml, RULES, [("RulePolicy", {})]), clock=clock)
    await say(p, "/greet")
    clock.now += 365 * 24 * 3600
    await say(p, "/greet")
    events = (await p.get_tracker("s")).events
    assert sum(e["event"] == "session_started" for e in events) == 1


# --- restart and back ---------------------------------------------------------------------------


async def test_restart_forgets_the_conversation(built) -> None:  # type: ignore[no-untyped-def]
    p = MessageProcessor(*built)
    await say(p, '/report_loss{"card_last4": "1234"}')
    result = await p.handle(UserMessage("/restart", "s"))
    assert [m["text"] for m in result.messages] == ["已重新开始"]  # and nothing after it
    assert [a for a, _, _ in result.actions] == ["action_restart", LISTEN]
    tracker = await p.get_tracker("s")
    assert tracker.get_slot("card_last4") is None
    assert tracker.active_loop.name is None
    assert await say(p, "/greet") == ["您好"]


async def test_back_undoes_the_last_turn(built) -> None:  # type: ignore[no-untyped-def]
    p = MessageProcessor(*built)
    await say(p, "/greet")
    await say(p, '/query_balance{"account_type": "credit_card"}')
    result = await p.handle(UserMessage("/back", "s"))
    assert [a for a, _, _ in result.actions] == ["action_back", LISTEN]
    assert [m["text"] for m in result.messages] == ["好的，我们回到上一步。"]
    tracker = await p.get_tracker("s")
    assert tracker.get_slot("account_type") is None
    assert tracker.latest_intent == "greet"
    assert tracker.latest_action_name == LISTEN


# --- a server restart in the middle of a form ----------------------------------------------------


async def test_new_processor_on_the_same_sqlite_file_continues_the_form(
    built,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    domain, ensemble = built
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    ensemble.persist(tmp_path / "core")
    store = SQLTrackerStore(url)
    try:
        before = MessageProcessor(domain, ensemble, tracker_store=store)
        assert await say(before, "/report_loss") == ["请问尾号？"]
        assert await say(before, '/inform{"card_last4": "1357"}') == ["确认挂失尾号1357吗？"]
        events_before = await store.events("s")
    finally:
        await store.close()

    store = SQLTrackerStore(url)  # the "restarted server": new store, policies from disk
    try:
        after = MessageProcessor(
            domain, PolicyEnsemble.load(tmp_path / "core"), tracker_store=store
        )
        tracker = await after.get_tracker("s")
        assert tracker.events == events_before
        assert tracker.active_loop.name == "loss_form"
        assert tracker.get_slot(REQUESTED_SLOT) == "loss_confirmed"
        assert await say(after, "/affirm") == ["已挂失尾号1357"]
        events = await store.events("s")
        assert events[: len(events_before)] == events_before  # appended, never rewritten
        assert (await after.get_tracker("s")).active_loop.name is None
    finally:
        await store.close()


# --- the featurised history kept between predictions ---------------------------------------------


async def test_kept_featurisation_equals_a_replay_of_every_event(built) -> None:  # type: ignore[no-untyped-def]
    """The tracker continues its featurised states over new events instead of replaying the
    conversation for every prediction; through forms, back, restart and a new session it must
    give exactly what a replay gives."""
    from bot.core.tracker import DialogueStateTracker, applied_events, states_from_events

    checked = 0

    class Checking(MessageProcessor):
        def predict(self, tracker: DialogueStateTracker):  # type: ignore[no-untyped-def]
            nonlocal checked
            replayed = states_from_events(applied_events(tracker.events), tracker.domain)
            assert tracker.past_states() == replayed
            assert tracker.past_states() == replayed  # asked twice without new events
            checked += 1
            return super().predict(tracker)

    clock = Clock()
    p = Checking(*built, clock=clock)
    script = [
        "/greet",
        "/report_loss",
        '/inform{"card_last4": "1234"}',
        "/back",
        "/thank",
        '/inform{"card_last4": "5678"}',
        "/affirm",
        "/restart",
        "/greet",
        '/query_balance{"account_type": "credit_card"}',
    ]
    for text in script:
        await say(p, text)
    clock.now += 3600  # the session expires: the next message starts another
    await say(p, "/greet")
    tracker = await p.get_tracker("s")
    tracker.events = tracker.events[:-3]  # a replaced list starts afresh
    assert tracker.past_states() == states_from_events(
        applied_events(tracker.events), tracker.domain
    )
    assert checked >= 2 * len(script)
