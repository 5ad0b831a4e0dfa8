"""Responses: variations, ``{slot}`` templates, buttons, images, custom payloads and
per-channel variants, as bot events and as REST messages."""

from __future__ import annotations

import random
from pathlib import Path

import yaml

from bot.core.actions.interfaces import ActionContext
from bot.core.actions.responses import bot_message, choose_variation, render, utter
from bot.core.messages import UserMessage
from bot.core.processor import MessageProcessor
from bot.core.tracker import DialogueStateTracker
from bot.domain import parse_domain

DOMAIN_YAML = """
version: "3.1"
intents: [greet, inform, card, offer, hello, affirm, deny]
entities: [card_last4, name]
slots:
  card_last4:
    type: text
    mappings: [{type: from_entity, entity: card_last4}]
  name:
    type: text
    mappings: [{type: from_entity, entity: name}]
responses:
  utter_greet:
    - text: 您好
    - text: 你好
    - text: 欢迎
  utter_confirm:
    - text: "确认挂失尾号{card_last4}的卡吗？{name}"
      buttons:
        - title: "确认挂失{card_last4}"
          payload: '/affirm{{"card_last4": "{card_last4}"}}'
        - title: 先不挂失
          payload: /deny
  utter_card:
    - text: 这是您的卡面
      image: https://bank.example/cards/{card_last4}.png
  utter_offer:
    - custom:
        type: offer_card
        card: "{card_last4}"
        rate: 0.035
  utter_hello:
    - text: 网页端您好
    - text: 微信您好
      channel: wechat
  utter_wechat_only:
    - text: 只在微信
      channel: wechat
"""

DOMAIN = parse_domain(yaml.safe_load(DOMAIN_YAML), Path("domain.yml"))

RULES = """
rules:
- rule: greet
  steps:
  - intent: greet
  - action: utter_greet
- rule: confirm
  steps:
  - intent: inform
  - action: utter_confirm
- rule: card
  steps:
  - intent: card
  - action: utter_card
- rule: offer
  steps:
  - intent: offer
  - action: utter_offer
- rule: hello
  steps:
  - intent: hello
  - action: utter_hello
"""


def tracker(**slots: str | None) -> DialogueStateTracker:
    t = DialogueStateTracker.from_events("s", [], DOMAIN)
    t.slots.update(slots)
    return t


def test_every_variation_is_used() -> None:
    rng = random.Random(1)
    seen = {
        choose_variation(DOMAIN.responses["utter_greet"], None, rng)["text"] for _ in range(200)
    }
    assert seen == {"您好", "你好", "欢迎"}


def test_variation_choice_follows_the_seed() -> None:
    picks = [
        [
            choose_variation(DOMAIN.responses["utter_greet"], None, random.Random(seed))["text"]
            for _ in range(3)
        ]
        for seed in (5, 5)
    ]
    assert picks[0] == picks[1]


def test_slot_templates_fill_text_and_buttons() -> None:
    (event,) = utter("utter_confirm", tracker(card_last4="1234", name=None), ActionContext(DOMAIN))
    assert event["text"] == "确认挂失尾号1234的卡吗？"  # an empty slot gives ""
    assert event["data"]["buttons"] == [
        {"title": "确认挂失1234", "payload": '/affirm{"card_last4": "1234"}'},
        {"title": "先不挂失", "payload": "/deny"},
    ]
    assert event["metadata"] == {"utter_action": "utter_confirm"}


def test_unknown_template_names_stay_visible() -> None:
    event = render({"text": "尾号{card_last4}，{unknown}"}, {"card_last4": "9"})
    assert event["text"] == "尾号9，{unknown}"


def test_braces_escape_as_in_rasa() -> None:
    values = {"card_last4": "9"}
    assert render({"text": "{{card_last4}} = {card_last4}"}, values)["text"] == ("{card_last4} = 9")
    # JSON written without escapes (no template in it) is left alone, as Rasa does
    raw = '/inform{"account": {"type": "credit_card"}}'
    assert render({"text": raw}, values)["text"] == raw


def test_image_and_custom_payloads() -> None:
    (card,) = utter("utter_card", tracker(card_last4="5678"), ActionContext(DOMAIN))
    assert card["data"] == {"image": "https://bank.example/cards/5678.png"}
    (offer,) = utter("utter_offer", tracker(card_last4="5678"), ActionContext(DOMAIN))
    assert offer["text"] is None
    assert offer["data"]["custom"] == {"type": "offer_card", "card": "5678", "rate": 0.035}


def test_channel_variants() -> None:
    rng = random.Random(0)
    variations = DOMAIN.responses["utter_hello"]
    for _ in range(20):
        assert choose_variation(variations, "wechat", rng)["text"] == "微信您好"
        assert choose_variation(variations, "rest", rng)["text"] == "网页端您好"
        assert choose_variation(variations, None, rng)["text"] == "网页端您好"
    # a response written only for one channel is still sent elsewhere
    only = DOMAIN.responses["utter_wechat_only"]
    assert choose_variation(only, "rest", rng)["text"] == "只在微信"


def test_conditional_variations_as_in_rasa() -> None:
    """Variations whose ``condition`` holds come first, then those without one; when every
    condition fails nothing is sent."""
    variations = [
        {
            "text": "您好，张先生",
            "condition": [{"type": "slot", "name": "logged_in", "value": True}],
        },
        {"text": "您好"},
    ]
    rng = random.Random(0)
    for _ in range(10):
        assert (
            choose_variation(variations, None, rng, {"logged_in": True})["text"] == "您好，张先生"
        )
        assert choose_variation(variations, None, rng, {"logged_in": False})["text"] == "您好"
        assert choose_variation(variations, None, rng)["text"] == "您好"
    only_conditioned = variations[:1]
    assert choose_variation(only_conditioned, None, rng, {"logged_in": None}) is None
    domain = parse_domain({"responses": {"utter_hi": variations}}, Path("domain.yml"))
    (event,) = utter("utter_hi", tracker(logged_in=True), ActionContext(domain))
    assert event["text"] == "您好，张先生"
    assert (
        utter(
            "utter_hi",
            tracker(),
            ActionContext(
                parse_domain({"responses": {"utter_hi": only_conditioned}}, Path("domain.yml"))
            ),
        )
        == []
    )


def test_unknown_response_gives_nothing() -> None:
    assert utter("utter_missing", tracker(), ActionContext(DOMAIN)) == []


def test_rest_message_shape() -> None:
    event = render(
        {
            "text": "hi",
            "buttons": [{"title": "a", "payload": "/a"}],
            "image": "https://x/y.png",
            "custom": {"k": 1},
        },
        {},
    )
    assert bot_message(event, "u1") == {
        "recipient_id": "u1",
        "text": "hi",
        "buttons": [{"title": "a", "payload": "/a"}],
        "image": "https://x/y.png",
        "custom": {"k": 1},
    }
    assert bot_message(render({"image": "https://x/y.png"}, {}), "u1") == {
        "recipient_id": "u1",
        "image": "https://x/y.png",
    }


async def test_responses_through_the_processor(dialogue) -> None:  # type: ignore[no-untyped-def]
    p = MessageProcessor(*dialogue(DOMAIN_YAML, RULES, [("RulePolicy", {})]), seed=3)
    (confirm,) = await p.handle_message(
        UserMessage('/inform{"card_last4": "4321", "name": "王女士"}', "s")
    )
    assert confirm == {
        "recipient_id": "s",
        "text": "确认挂失尾号4321的卡吗？王女士",
        "buttons": [
            {"title": "确认挂失4321", "payload": '/affirm{"card_last4": "4321"}'},
            {"title": "先不挂失", "payload": "/deny"},
        ],
    }
    # the button's payload is a valid intent payload again
    from bot.core.processor import parse_payload

    clicked = parse_payload(confirm["buttons"][0]["payload"], p.domain)
    assert clicked is not None
    assert [(e["entity"], e["value"]) for e in clicked["entities"]] == [("card_last4", "4321")]
    assert await p.handle_message(UserMessage("/card", "s")) == [
        {
            "recipient_id": "s",
            "text": "这是您的卡面",
            "image": "https://bank.example/cards/4321.png",
        }
    ]
    assert await p.handle_message(UserMessage("/offer", "s")) == [
        {"recipient_id": "s", "custom": {"type": "offer_card", "card": "4321", "rate": 0.035}}
    ]
    wechat = await p.handle_message(UserMessage("/hello", "w", input_channel="wechat"))
    rest = await p.handle_message(UserMessage("/hello", "r", input_channel="rest"))
    assert [m["text"] for m in wechat + rest] == ["微信您好", "网页端您好"]
    tracker = await p.get_tracker("s")
    bots = [e for e in tracker.events if e["event"] == "bot"]
    assert [b["metadata"]["utter_action"] for b in bots] == [
        "utter_confirm",
        "utter_card",
        "utter_offer",
    ]


async def test_seeded_processors_choose_the_same_variations(dialogue) -> None:  # type: ignore[no-untyped-def]
    domain, ensemble = dialogue(DOMAIN_YAML, RULES, [("RulePolicy", {})])
    runs = []
    for _ in range(2):
        p = MessageProcessor(domain, ensemble, seed=11)
        runs.append(
            [(await p.handle_message(UserMessage("/greet", "s")))[0]["text"] for _ in range(10)]
        )
    assert runs[0] == runs[1]
    assert len(set(runs[0])) > 1


async def test_domain_responses_replace_default_texts(dialogue) -> None:  # type: ignore[no-untyped-def]
    from bot.builtin_responses import builtin_responses

    domain_yaml = """
    intents: [nlu_fallback]
    responses:
      utter_default:
        - text: 抱歉没听懂
          buttons: [{title: 转人工, payload: /request_human}]
    """
    rules = """
    rules:
    - rule: fallback
      steps:
      - intent: nlu_fallback
      - action: action_default_fallback
    """
    p = MessageProcessor(*dialogue(domain_yaml, rules, [("RulePolicy", {})]))
    assert await p.handle_message(UserMessage("/nlu_fallback", "s")) == [
        {
            "recipient_id": "s",
            "text": "抱歉没听懂",
            "buttons": [{"title": "转人工", "payload": "/request_human"}],
        }
    ]
    plain = MessageProcessor(*dialogue("intents: [nlu_fallback]", rules, [("RulePolicy", {})]))
    assert await plain.handle_message(UserMessage("/nlu_fallback", "s")) == [
        {"recipient_id": "s", "text": builtin_responses()["utter_default"][0]["text"]}
    ]
