"""Slot mappings after each message (``action_extract_slots``): from_entity, from_text,
from_intent, conditions on the active loop, and the protected ``customer_id``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.core import events as ev
from bot.core.actions.slot_extraction import extract_slots
from bot.core.messages import UserMessage
from bot.core.processor import MessageProcessor
from bot.core.tracker import LISTEN, DialogueStateTracker
from bot.domain import REQUESTED_SLOT, parse_domain

DOMAIN_YAML = """
version: "3.1"
intents: [greet, inform, affirm, deny, transfer, report_loss, chitchat, query_balance]
entities: [card_last4, account, amount, customer_id, city]
slots:
  customer_id:
    type: any
    influence_conversation: false
    mappings:
      - type: from_entity
        entity: customer_id
  card_last4:
    type: text
    mappings:
      - type: from_entity
        entity: card_last4
  cards:
    type: list
    mappings:
      - type: from_entity
        entity: card_last4
  from_account:
    type: text
    mappings:
      - type: from_entity
        entity: account
        role: from
  to_account:
    type: text
    mappings:
      - type: from_entity
        entity: account
        role: to
  amount:
    type: float
    mappings:
      - type: from_entity
        entity: amount
        intent: transfer
  note:
    type: text
    mappings:
      - type: from_text
  reason:
    type: text
    mappings:
      - type: from_text
        not_intent: [chitchat]
        conditions:
          - active_loop: loss_form
            requested_slot: reason
  city:
    type: text
    mappings:
      - type: from_entity
        entity: city
        conditions:
          - active_loop: loss_form
  confirmed:
    type: bool
    mappings:
      - type: from_intent
        intent: affirm
        value: true
        conditions:
          - active_loop: loss_form
            requested_slot: confirmed
      - type: from_intent
        intent: deny
        value: false
        conditions:
          - active_loop: loss_form
            requested_slot: confirmed
  polite:
    type: bool
    mappings:
      - type: from_intent
        intent: [greet]
        value: true
  wants_balance:
    type: bool
    mappings:
      - type: from_trigger_intent
        intent: query_balance
        value: true
forms:
  loss_form:
    required_slots: [reason, confirmed]
responses:
  utter_ok: [{text: 好的}]
"""
DOMAIN = parse_domain(yaml.safe_load(DOMAIN_YAML), Path("domain.yml"))


def tracker_after(
    intent: str,
    entities: list[dict[str, Any]] | None = None,
    text: str = "x",
    loop: str | None = None,
    requested: str | None = None,
    slots: dict[str, Any] | None = None,
) -> DialogueStateTracker:
    events: list[dict[str, Any]] = []
    if loop:
        events.append(ev.active_loop(loop))
    if requested:
        events.append(ev.slot(REQUESTED_SLOT, requested))
    events += [ev.slot(k, v) for k, v in (slots or {}).items()]
    events += [
        ev.action(LISTEN),
        ev.user(text, {"intent": {"name": intent}, "entities": entities or []}),
    ]
    return DialogueStateTracker.from_events("s", events, DOMAIN)


def filled(t: DialogueStateTracker) -> dict[str, Any]:
    return {e["name"]: e["value"] for e in extract_slots(t, DOMAIN)}


def test_from_entity_takes_the_last_value_and_lists_take_all() -> None:
    """As Rasa's action_extract_slots (``value[-1]`` unless the slot is a list)."""
    t = tracker_after(
        "inform",
        [{"entity": "card_last4", "value": "1234"}, {"entity": "card_last4", "value": "5678"}],
    )
    assert filled(t) == {"card_last4": "5678", "cards": ["1234", "5678"]}


def test_entity_roles_pick_the_slot() -> None:
    t = tracker_after(
        "transfer",
        [
            {"entity": "account", "value": "A", "role": "from"},
            {"entity": "account", "value": "B", "role": "to"},
            {"entity": "amount", "value": "500"},
        ],
    )
    assert filled(t) == {"from_account": "A", "to_account": "B", "amount": "500"}


def test_intent_filter_on_a_mapping() -> None:
    assert "amount" not in filled(tracker_after("inform", [{"entity": "amount", "value": "5"}]))


def test_from_text_fills_only_when_asked() -> None:
    assert filled(tracker_after("inform", text="随便说说")) == {}
    assert filled(tracker_after("inform", text="出差", requested="note")) == {"note": "出差"}


def test_from_text_with_conditions_and_not_intent() -> None:
    in_form = {"loop": "loss_form", "requested": "reason"}
    assert filled(tracker_after("inform", text="卡被偷了", **in_form)) == {"reason": "卡被偷了"}
    assert filled(tracker_after("chitchat", text="今天天气", **in_form)) == {}
    assert (
        filled(tracker_after("inform", text="卡被偷了", loop="loss_form", requested="confirmed"))
        == {}
    )
    assert filled(tracker_after("inform", text="卡被偷了")) == {}


def test_condition_on_the_active_loop_only() -> None:
    city = [{"entity": "city", "value": "上海"}]
    assert filled(tracker_after("inform", city)) == {}
    assert filled(tracker_after("inform", city, loop="loss_form")) == {"city": "上海"}


def test_from_intent_with_conditions() -> None:
    asked = {"loop": "loss_form", "requested": "confirmed"}
    assert filled(tracker_after("affirm", **asked)) == {"confirmed": True}
    assert filled(tracker_after("deny", **asked)) == {"confirmed": False}
    assert filled(tracker_after("affirm")) == {}  # no form asking: a plain "yes"
    assert filled(tracker_after("greet")) == {"polite": True}


def test_from_trigger_intent_only_outside_a_loop() -> None:
    assert filled(tracker_after("query_balance")) == {"wants_balance": True}
    assert "wants_balance" not in filled(tracker_after("query_balance", loop="loss_form"))


def test_unchanged_values_give_no_event() -> None:
    t = tracker_after(
        "inform",
        [{"entity": "card_last4", "value": "1234"}],
        slots={"card_last4": "1234", "cards": ["1234"]},
    )
    assert filled(t) == {}


def test_customer_id_is_never_taken_from_entities() -> None:
    t = tracker_after("inform", [{"entity": "customer_id", "value": "C1002"}])
    assert "customer_id" not in filled(t)
    # (it is the protection that keeps it out: the domain does map the entity)
    unprotected = extract_slots(t, DOMAIN, protected=frozenset())
    assert [(e["name"], e["value"]) for e in unprotected] == [("customer_id", "C1002")]


# --- through the processor --------------------------------------------------------------------

RULES = """
rules:
- rule: hi
  steps:
  - intent: greet
  - action: utter_ok
- rule: inform
  steps:
  - intent: inform
  - action: utter_ok
- rule: transfer
  steps:
  - intent: transfer
  - action: utter_ok
"""


@pytest.fixture
def processor(dialogue) -> MessageProcessor:  # type: ignore[no-untyped-def]
    return MessageProcessor(*dialogue(DOMAIN_YAML, RULES, [("RulePolicy", {})]))


async def test_payload_cannot_set_customer_id(processor: MessageProcessor) -> None:
    result = await processor.handle(
        UserMessage('/inform{"customer_id": "C1002", "card_last4": "1234"}', "anon")
    )
    tracker = await processor.get_tracker("anon")
    assert tracker.get_slot("customer_id") is None
    assert tracker.get_slot("card_last4") == "1234"
    # the entity is dropped before it is stored or shown to actions
    assert all(e["entity"] != "customer_id" for e in result.parse_data["entities"])
    user = next(e for e in tracker.events if e["event"] == "user")
    assert [e["entity"] for e in user["parse_data"]["entities"]] == ["card_last4"]


async def test_verified_customer_cannot_be_switched_by_a_payload(
    processor: MessageProcessor,
) -> None:
    await processor.handle(UserMessage("/greet", "v", customer_id="C1001"))
    await processor.handle(UserMessage('/inform{"customer_id": "C1002"}', "v", customer_id="C1001"))
    tracker = await processor.get_tracker("v")
    assert tracker.get_slot("customer_id") == "C1001"
    assert [
        e["value"] for e in tracker.events if e["event"] == "slot" and e["name"] == "customer_id"
    ] == ["C1001"]


async def test_customer_id_follows_the_channel_not_the_text(
    processor: MessageProcessor,
) -> None:
    await processor.handle(UserMessage('/inform{"card_last4": "1002"}', "w", customer_id="C1001"))
    assert (await processor.get_tracker("w")).get_slot("customer_id") == "C1001"
    # a message the channel did not verify clears it
    await processor.handle(UserMessage('/inform{"customer_id": "C1001"}', "w"))
    assert (await processor.get_tracker("w")).get_slot("customer_id") is None


async def test_nlu_entities_for_customer_id_are_dropped(dialogue) -> None:  # type: ignore[no-untyped-def]
    class NLU:
        def parse(self, text: str) -> dict[str, Any]:
            return {
                "text": text,
                "intent": {"name": "inform", "confidence": 0.9},
                "intent_ranking": [],
                "entities": [{"entity": "customer_id", "value": "C1002", "start": 2, "end": 7}],
            }

    domain, ensemble = dialogue(DOMAIN_YAML, RULES, [("RulePolicy", {})])
    p = MessageProcessor(domain, ensemble, nlu=NLU())
    await p.handle(UserMessage("我是C1002", "n"))
    assert (await p.get_tracker("n")).get_slot("customer_id") is None


async def test_extracted_values_are_coerced_to_the_slot_type(
    processor: MessageProcessor,
) -> None:
    await processor.handle(UserMessage('/transfer{"amount": "2500.5"}', "t"))
    assert (await processor.get_tracker("t")).get_slot("amount") == 2500.5


# --- roles, groups and forms (Rasa 3 semantics) ------------------------------------------------

ROLES_YAML = """
version: "3.1"
intents: [inform, transfer, chitchat, greet]
entities:
  - card_last4:
      roles: [from, to]
      groups: [1, 2]
  - city
slots:
  card_last4:
    type: text
    mappings:
      - type: from_entity
        entity: card_last4
  from_card:
    type: text
    mappings:
      - type: from_entity
        entity: card_last4
        role: from
  to_card:
    type: text
    mappings:
      - type: from_entity
        entity: card_last4
        role: to
  first_group_card:
    type: text
    mappings:
      - type: from_entity
        entity: card_last4
        group: "1"
  departure:
    type: text
    mappings:
      - type: from_entity
        entity: city
        conditions:
          - active_loop: trip_form
            requested_slot: departure
  arrival:
    type: text
    mappings:
      - type: from_entity
        entity: city
        conditions:
          - active_loop: trip_form
            requested_slot: arrival
  pay_from:
    type: text
    mappings:
      - type: from_entity
        entity: card_last4
  pay_to:
    type: text
    mappings:
      - type: from_entity
        entity: card_last4
  memo:
    type: text
    mappings:
      - type: from_text
        conditions:
          - active_loop: pay_form
            requested_slot: memo
forms:
  trip_form:
    required_slots: [departure, arrival]
  pay_form:
    required_slots: [pay_from, pay_to, memo]
    ignored_intents: [chitchat]
"""
ROLES = parse_domain(yaml.safe_load(ROLES_YAML), Path("domain.yml"))


def roles_filled(
    intent: str,
    entities: list[dict[str, Any]],
    text: str = "x",
    loop: str | None = None,
    requested: str | None = None,
) -> dict[str, Any]:
    events: list[dict[str, Any]] = []
    if loop:
        events.append(ev.active_loop(loop))
    if requested:
        events.append(ev.slot(REQUESTED_SLOT, requested))
    events += [ev.action(LISTEN), ev.user(text, {"intent": {"name": intent}, "entities": entities})]
    t = DialogueStateTracker.from_events("s", events, ROLES)
    return {e["name"]: e["value"] for e in extract_slots(t, ROLES)}


def test_a_mapping_without_a_role_takes_only_entities_without_one() -> None:
    assert roles_filled(
        "transfer",
        [
            {"entity": "card_last4", "value": "1111", "role": "from"},
            {"entity": "card_last4", "value": "2222", "role": "to"},
        ],
    ) == {"from_card": "1111", "to_card": "2222"}
    plain = roles_filled("inform", [{"entity": "card_last4", "value": "3333"}])
    assert plain == {"card_last4": "3333", "pay_from": "3333", "pay_to": "3333"}


def test_the_same_span_with_and_without_a_role() -> None:
    """Two extractors give one span, one with a role (DIET) and one without (a regex or
    lookup): the role's slot and the plain slots each take theirs, as in Rasa."""
    twice = [
        {"entity": "card_last4", "value": "1111", "start": 2, "end": 6, "role": "from"},
        {"entity": "card_last4", "value": "1111", "start": 2, "end": 6},
        {"entity": "card_last4", "value": "2222", "start": 9, "end": 13, "role": "to"},
    ]
    assert roles_filled("transfer", twice) == {
        "from_card": "1111",
        "to_card": "2222",
        "card_last4": "1111",
        "pay_from": "1111",
        "pay_to": "1111",
    }
    # in a form asking for pay_to, the plain mapping shared by pay_from fills only pay_to
    assert roles_filled("transfer", twice, loop="pay_form", requested="pay_to") == {
        "from_card": "1111",
        "to_card": "2222",
        "card_last4": "1111",
        "pay_to": "1111",
    }


def test_groups_must_match_too() -> None:
    grouped = [{"entity": "card_last4", "value": "4444", "group": "1"}]
    assert roles_filled("inform", grouped) == {"first_group_card": "4444"}
    assert roles_filled("inform", [{"entity": "card_last4", "value": "5555", "group": "2"}]) == {}
    both = [{"entity": "card_last4", "value": "6666", "group": "1", "role": "from"}]
    assert roles_filled("inform", both) == {}  # no mapping names that role and group


def test_conditions_with_requested_slot_pick_the_asked_slot() -> None:
    city = [{"entity": "city", "value": "上海"}]
    assert roles_filled("inform", city) == {}
    assert roles_filled("inform", city, loop="trip_form", requested="departure") == {
        "departure": "上海"
    }
    assert roles_filled("inform", city, loop="trip_form", requested="arrival") == {
        "arrival": "上海"
    }


def test_a_shared_entity_fills_only_the_slot_the_form_asks_for() -> None:
    card = [{"entity": "card_last4", "value": "7777"}]
    asked = roles_filled("inform", card, loop="pay_form", requested="pay_to")
    assert asked == {"card_last4": "7777", "pay_to": "7777"}
    asked = roles_filled("inform", card, loop="pay_form", requested="pay_from")
    assert asked == {"card_last4": "7777", "pay_from": "7777"}
    # asking for the memo: the card number fills neither of the form's card slots
    assert roles_filled("inform", card, text="尾号7777", loop="pay_form", requested="memo") == {
        "card_last4": "7777",
        "memo": "尾号7777",
    }


def test_the_forms_ignored_intents_fill_nothing_of_the_form() -> None:
    assert roles_filled("chitchat", [], text="今天天气", loop="pay_form", requested="memo") == {}
    assert roles_filled("inform", [], text="房租", loop="pay_form", requested="memo") == {
        "memo": "房租"
    }


FORM_RULES = """
rules:
- rule: start the payment form
  steps:
  - intent: transfer
  - action: pay_form
  - active_loop: pay_form
- rule: submit
  condition:
  - active_loop: pay_form
  steps:
  - action: pay_form
  - active_loop: null
  - slot_was_set:
    - requested_slot: null
  - action: utter_done
"""


async def test_a_form_fills_shared_entity_slots_one_by_one(dialogue) -> None:  # type: ignore[no-untyped-def]
    domain_yaml = (
        ROLES_YAML
        + """
responses:
  utter_ask_pay_from: [{text: 从哪张卡转出？}]
  utter_ask_pay_to: [{text: 转到哪张卡？}]
  utter_ask_memo: [{text: 备注写什么？}]
  utter_done: [{text: 好的}]
"""
    )
    p = MessageProcessor(*dialogue(domain_yaml, FORM_RULES, [("RulePolicy", {})]))
    replies = await p.handle_message(UserMessage("/transfer", "f"))
    assert [r["text"] for r in replies] == ["从哪张卡转出？"]
    replies = await p.handle_message(UserMessage('/inform{"card_last4": "1234"}', "f"))
    assert [r["text"] for r in replies] == ["转到哪张卡？"]
    replies = await p.handle_message(UserMessage('/inform{"card_last4": "5678"}', "f"))
    assert [r["text"] for r in replies] == ["备注写什么？"]
    replies = await p.handle_message(UserMessage("房租", "f"))
    tracker = await p.get_tracker("f")
    assert (tracker.get_slot("pay_from"), tracker.get_slot("pay_to"), tracker.get_slot("memo")) == (
        "1234",
        "5678",
        "房租",
    )
    assert [r["text"] for r in replies] == ["好的"]
