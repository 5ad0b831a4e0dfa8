"""Retrieval actions (``utter_chitchat``, ``respond_chitchat``): the response the NLU's
ResponseSelector chose for the latest message, the domain's fallback otherwise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bot.builtin_responses import builtin_responses
from bot.core.actions.retrieval import RetrievalAction
from bot.core.messages import UserMessage
from bot.core.processor import MessageProcessor
from bot.domain import parse_domain

DOMAIN_YAML = """
version: "3.1"
intents: [greet, chitchat, faq]
actions: [utter_chitchat, respond_faq]
responses:
  utter_greet: [{text: 您好}]
  utter_chitchat/whoyouare: [{text: 我是银行的智能客服小招。}]
  utter_chitchat/weather:
    - text: 天气的事我不太懂，银行业务可以问我。
      buttons: [{title: 查余额, payload: /query_balance}]
  utter_faq/opening_hours: [{text: 网点营业时间为9:00-17:00。}]
"""
WITH_DEFAULT = DOMAIN_YAML + "  utter_default: [{text: 这个问题我还不会，换个说法试试？}]\n"
RULES = """
rules:
- rule: chitchat
  steps:
  - intent: chitchat
  - action: utter_chitchat
- rule: faq
  steps:
  - intent: faq
  - action: respond_faq
- rule: greet
  steps:
  - intent: greet
  - action: utter_greet
"""


def selector(intent: str, key: str | None, *, under: str | None = None) -> dict[str, Any]:
    """The shape the NLU's ResponseSelector adds to parse data."""
    entry: dict[str, Any] = {
        "response": {
            "responses": [],
            "confidence": 0.93,
            "intent_response_key": key,
            "utter_action": f"utter_{key}" if key else None,
        },
        "ranking": [{"intent_response_key": key, "confidence": 0.93}],
    }
    return {"all_retrieval_intents": [intent], under or intent: entry}


def parse(intent: str, response_selector: dict[str, Any] | None) -> dict[str, Any]:
    data: dict[str, Any] = {
        "text": "x",
        "intent": {"name": intent, "confidence": 0.95},
        "intent_ranking": [],
        "entities": [],
    }
    if response_selector is not None:
        data["response_selector"] = response_selector
    return data


def test_retrieval_intents_come_from_the_domain_response_keys() -> None:
    domain = parse_domain(yaml.safe_load(DOMAIN_YAML), Path("domain.yml"))
    assert domain.retrieval_intents == {"chitchat", "faq"}
    assert domain.retrieval_intent_of("utter_chitchat") == "chitchat"
    assert domain.retrieval_intent_of("respond_faq") == "faq"
    assert domain.retrieval_intent_of("utter_greet") is None
    assert domain.retrieval_intent_of("utter_chitchat/whoyouare") is None


async def test_the_selected_response_is_uttered(dialogue) -> None:  # type: ignore[no-untyped-def]
    p = MessageProcessor(*dialogue(DOMAIN_YAML, RULES, [("RulePolicy", {})]))
    assert isinstance(p.action("utter_chitchat"), RetrievalAction)
    result = await p.handle(
        UserMessage("你是谁", "c"),
        parse=parse("chitchat", selector("chitchat", "chitchat/whoyouare")),
    )
    assert result.messages == [{"recipient_id": "c", "text": "我是银行的智能客服小招。"}]
    result = await p.handle(
        UserMessage("今天天气怎么样", "c"),
        parse=parse("chitchat", selector("chitchat", "chitchat/weather")),
    )
    assert result.messages == [
        {
            "recipient_id": "c",
            "text": "天气的事我不太懂，银行业务可以问我。",
            "buttons": [{"title": "查余额", "payload": "/query_balance"}],
        }
    ]
    tracker = await p.get_tracker("c")
    bots = [e for e in tracker.events if e["event"] == "bot"]
    assert [b["metadata"]["utter_action"] for b in bots] == [
        "utter_chitchat/whoyouare",
        "utter_chitchat/weather",
    ]
    assert {b["metadata"]["retrieval_intent"] for b in bots} == {"chitchat"}
    assert [a for a, _, _ in result.actions] == ["utter_chitchat", "action_listen"]


async def test_respond_prefix_and_the_default_selector(dialogue) -> None:  # type: ignore[no-untyped-def]
    p = MessageProcessor(*dialogue(DOMAIN_YAML, RULES, [("RulePolicy", {})]))
    # a selector trained for all retrieval intents at once answers under "default"
    result = await p.handle(
        UserMessage("几点开门", "f"),
        parse=parse("faq", selector("faq", "faq/opening_hours", under="default")),
    )
    assert [m["text"] for m in result.messages] == ["网点营业时间为9:00-17:00。"]


async def test_no_selector_result_gives_the_domains_fallback(dialogue) -> None:  # type: ignore[no-untyped-def]
    p = MessageProcessor(*dialogue(WITH_DEFAULT, RULES, [("RulePolicy", {})]))
    fallback = "这个问题我还不会，换个说法试试？"
    for selected in (
        None,
        selector("chitchat", None),
        selector("chitchat", "chitchat/unknown"),
        {"chitchat": "not an object"},
        ["not", "a", "mapping"],
    ):
        result = await p.handle(UserMessage("嗯", "n"), parse=parse("chitchat", selected))  # type: ignore[arg-type]
        assert [m["text"] for m in result.messages] == [fallback], selected
    # another retrieval intent's result is not used for this one
    result = await p.handle(
        UserMessage("嗯", "n"), parse=parse("chitchat", selector("faq", "faq/opening_hours"))
    )
    assert [m["text"] for m in result.messages] == [fallback]


async def test_without_utter_default_the_engine_fallback_text(dialogue) -> None:  # type: ignore[no-untyped-def]
    p = MessageProcessor(*dialogue(DOMAIN_YAML, RULES, [("RulePolicy", {})]))
    result = await p.handle(UserMessage("嗯", "e"), parse=parse("chitchat", None))
    assert [m["text"] for m in result.messages] == [builtin_responses()["utter_default"][0]["text"]]
    # the conversation carries on
    result = await p.handle(UserMessage("/greet", "e"))
    assert [m["text"] for m in result.messages] == ["您好"]
