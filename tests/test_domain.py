"""``domain.yml`` (Rasa 3.x): intents, entities, slots and their types, mappings, responses,
forms, actions and session configuration."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.domain import (
    DEFAULT_ACTIONS,
    REQUESTED_SLOT,
    Slot,
    load_domain,
    parse_domain,
)
from bot.errors import ConfigError

DOMAIN = """\
version: "3.1"
intents:
  - greet
  - inform:
      use_entities: true
  - report_loss
entities: [card_last4, account_type, amount]
slots:
  card_last4:
    type: text
    influence_conversation: false
    mappings:
      - type: from_entity
        entity: card_last4
  account_type:
    type: categorical
    values: [debit_card, credit_card]
    mappings:
      - type: from_entity
        entity: account_type
        role: main
  amount:
    type: float
    min_value: 0
    max_value: 100000
    mappings:
      - type: from_entity
        entity: amount
  loss_confirmed:
    type: bool
    mappings:
      - type: from_intent
        intent: affirm
        value: true
        conditions:
          - active_loop: loss_form
            requested_slot: loss_confirmed
  note:
    type: text
    mappings:
      - type: from_text
        not_intent: [greet]
  tags:
    type: list
    initial_value: []
    mappings:
      - type: custom
  anything:
    type: any
    mappings:
      - type: custom
forms:
  loss_form:
    required_slots: [card_last4, loss_confirmed]
    ignored_intents: [greet]
actions: [action_check, utter_greet]
responses:
  utter_greet:
    - text: 您好
    - text: 你好呀
      channel: wechat
  utter_card:
    - image: https://example.com/card.png
  utter_custom:
    - custom: {type: card, id: 1}
session_config:
  session_expiration_time: 30
  carry_over_slots_to_new_session: false
"""


def parse(text: str) -> Any:
    return parse_domain(yaml.safe_load(textwrap.dedent(text)), Path("domain.yml"))


def test_reads_every_section() -> None:
    domain = parse(DOMAIN)
    assert domain.intents == ("greet", "inform", "report_loss")
    assert domain.entities == ("card_last4", "account_type", "amount")
    assert {s: domain.slots[s].type for s in domain.slots} == {
        "card_last4": "text",
        "account_type": "categorical",
        "amount": "float",
        "loss_confirmed": "bool",
        "note": "text",
        "tags": "list",
        "anything": "any",
        REQUESTED_SLOT: "text",
    }
    assert domain.slots["account_type"].values == ("debit_card", "credit_card")
    assert domain.slots["amount"].max_value == 100000.0
    assert domain.slots["tags"].initial_value == []
    assert domain.forms["loss_form"].required_slots == ("card_last4", "loss_confirmed")
    assert domain.forms["loss_form"].ignored_intents == ("greet",)
    assert domain.actions == ("action_check", "utter_greet")
    assert [v.get("channel") for v in domain.responses["utter_greet"]] == [None, "wechat"]
    assert domain.session_config.expiration_minutes == 30.0
    assert domain.session_config.carry_over_slots is False


def test_slot_mappings_are_read_with_conditions() -> None:
    domain = parse(DOMAIN)
    (entity,) = domain.slots["account_type"].mappings
    assert (entity.type, entity.entity, entity.role) == ("from_entity", "account_type", "main")
    (intent,) = domain.slots["loss_confirmed"].mappings
    assert intent.type == "from_intent"
    assert intent.intent == ("affirm",)
    assert intent.value is True
    assert intent.conditions == (("loss_form", "loss_confirmed"),)
    (text,) = domain.slots["note"].mappings
    assert text.not_intent == ("greet",)


def test_influence_conversation_defaults() -> None:
    domain = parse(DOMAIN)
    assert domain.slots["amount"].influence_conversation is True
    assert domain.slots["card_last4"].influence_conversation is False
    assert domain.slots["anything"].influence_conversation is False  # 'any' never influences
    assert domain.slots[REQUESTED_SLOT].influence_conversation is False


def test_requested_slot_is_added_only_with_forms() -> None:
    assert REQUESTED_SLOT in parse(DOMAIN).slots
    assert REQUESTED_SLOT not in parse("intents: [greet]").slots


def test_action_names_start_with_rasa_defaults_without_duplicates() -> None:
    names = parse(DOMAIN).action_names
    assert names[: len(DEFAULT_ACTIONS)] == list(DEFAULT_ACTIONS)
    for expected in (
        "action_listen",
        "action_restart",
        "action_session_start",
        "action_default_fallback",
        "action_deactivate_loop",
        "action_two_stage_fallback",
        "action_back",
    ):
        assert expected in names
    assert len(names) == len(set(names))
    assert {"utter_greet", "utter_card", "utter_custom", "action_check", "loss_form"} <= set(names)


def test_session_config_defaults() -> None:
    domain = parse("intents: [greet]")
    assert domain.session_config.expiration_minutes == 60.0
    assert domain.session_config.carry_over_slots is True


@pytest.mark.parametrize(
    ("slot_type", "value", "expected"),
    [
        ("bool", "true", True),
        ("bool", "false", False),
        ("bool", "是", True),
        ("bool", 0, False),
        ("bool", 1, True),
        ("float", "3.5", 3.5),
        ("float", 7, 7.0),
        ("float", "很多", None),
        ("list", "a", ["a"]),
        ("list", ["a", "b"], ["a", "b"]),
        ("text", 1234, "1234"),
        ("text", "尾号", "尾号"),
        ("any", {"k": 1}, {"k": 1}),
        ("categorical", "credit_card", "credit_card"),
        ("text", None, None),
        ("bool", None, None),
    ],
)
def test_slot_coercion(slot_type: str, value: Any, expected: Any) -> None:
    slot = Slot("s", slot_type, values=("credit_card",) if slot_type == "categorical" else ())
    coerced = slot.coerce(value)
    assert coerced == expected
    assert type(coerced) is type(expected)


def test_as_rasa_dict_is_what_an_action_server_expects() -> None:
    data = parse(DOMAIN).as_rasa_dict()
    assert {
        "intents",
        "entities",
        "slots",
        "responses",
        "actions",
        "forms",
        "session_config",
    } <= set(data)
    assert data["forms"] == {"loss_form": {"required_slots": ["card_last4", "loss_confirmed"]}}
    assert data["slots"]["loss_confirmed"]["mappings"] == [
        {
            "type": "from_intent",
            "intent": ["affirm"],
            "value": True,
            "conditions": [{"active_loop": "loss_form", "requested_slot": "loss_confirmed"}],
        }
    ]
    assert data["slots"]["account_type"]["values"] == ["debit_card", "credit_card"]
    assert data["session_config"] == {
        "session_expiration_time": 30.0,
        "carry_over_slots_to_new_session": False,
    }
    # rasa_sdk's FormValidationAction reads required slots from this shape
    from rasa_sdk.forms import FormValidationAction

    class Validate(FormValidationAction):
        def name(self) -> str:
            return "validate_loss_form"

    assert Validate().domain_slots(data) == ["card_last4", "loss_confirmed"]


def test_as_rasa_dict_is_built_once_per_domain() -> None:
    # every custom action call sends it: the hot path must not rebuild it
    domain = parse(DOMAIN)
    assert domain.as_rasa_dict() is domain.as_rasa_dict()
    assert parse(DOMAIN).as_rasa_dict() == domain.as_rasa_dict()


@pytest.mark.parametrize(
    ("snippet", "message"),
    [
        ("slots: {s: {type: number}}", "slot 's' needs 'type'"),
        ("slots: {s: {type: categorical}}", "categorical slot 's' needs 'values'"),
        ("slots: {s: {type: text, mappings: [{type: from_entity}]}}", "needs 'entity'"),
        ("slots: {s: {type: text, mappings: [{type: from_llm}]}}", "'type' must be one of"),
        ("responses: {utter_x: [{buttons_typo: []}]}", "needs 'text'"),
        ("responses: {utter_x: []}", "needs a list of variations"),
        ("forms: {f: {required_slots: [missing]}}", "requires slot 'missing'"),
        ("forms: {f: {}}", "needs 'required_slots"),
        ("intents: greet", "'intents' must be a list"),
        ("intents: [{a: 1, b: 2}]", "cannot read intents entry"),
    ],
)
def test_errors_name_the_problem(snippet: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse(snippet)


def test_rasa2_style_required_slots_mapping_is_accepted() -> None:
    domain = parse("""
        slots:
          a: {type: text}
          b: {type: text}
        forms:
          f:
            required_slots:
              a: []
              b: []
    """)
    assert domain.forms["f"].required_slots == ("a", "b")


def test_load_domain_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_domain(tmp_path / "domain.yml")
    bad = tmp_path / "bad.yml"
    bad.write_text("intents: [greet\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_domain(bad)
    scalar = tmp_path / "scalar.yml"
    scalar.write_text("just text\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_domain(scalar)


def test_load_domain_reads_the_shipped_domain() -> None:
    domain = load_domain(Path(__file__).resolve().parents[1] / "domain.yml")
    assert "customer_id" in domain.slots
    assert "report_loss_form" in domain.forms
    for form in domain.forms.values():
        assert set(form.required_slots) <= set(domain.slots)
