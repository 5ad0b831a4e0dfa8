"""The engine's own sentences are built-in responses (``bot/resources/responses/``): sent as
written there, and replaced by a response of the same name in the project's domain."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from bot.channels.base import MessageRefused
from bot.channels.wechat.channel import WeChatChannel, WeChatSettings, render_messages
from bot.core.actions.interfaces import ActionContext
from bot.core.actions.loops import FormAction
from bot.core.tracker import DialogueStateTracker
from bot.domain import Domain, parse_domain

DOMAIN: dict[str, Any] = {
    "version": "3.1",
    "slots": {"card_last4": {"type": "text", "mappings": [{"type": "custom"}]}},
    "forms": {"loss_form": {"required_slots": ["card_last4"]}},
}


def domain_with(responses: dict[str, Any]) -> Domain:
    return parse_domain({**DOMAIN, "responses": responses}, Path("domain.yml"))


def wechat(domain: Domain, run: Any = None) -> WeChatChannel:
    return WeChatChannel(run, WeChatSettings(), domain=domain)


async def ask(domain: Domain) -> list[str | None]:
    tracker = DialogueStateTracker("s", domain)
    events = await FormAction("loss_form").run(tracker, ActionContext(domain))
    return [e.get("text") for e in events if e["event"] == "bot"]


def test_a_form_asks_for_a_slot_without_a_question() -> None:
    assert asyncio.run(ask(domain_with({}))) == ["请提供card_last4。"]
    reworded = domain_with({"utter_ask_missing_slot": [{"text": "请告诉我{slot}"}]})
    assert asyncio.run(ask(reworded)) == ["请告诉我card_last4"]


def test_wechat_says_its_built_in_sentences() -> None:
    channel = wechat(domain_with({}))
    assert channel.say("utter_busy") == "您的消息太频繁了，请稍后再试。"
    assert (
        channel.say("utter_text_only")
        == "目前只能处理文字消息，请用文字描述您的问题，或发送“转人工”。"
    )
    content, _ = render_messages([{"text": "请选择", "buttons": [{"title": "转人工"}]}])
    assert content == "请选择\n1. 转人工\n\n回复数字即可选择。"


def test_wechat_words_come_from_the_domain() -> None:
    async def busy(message: Any) -> list[dict[str, Any]]:
        raise MessageRefused(429, "slow down")

    async def buttons(message: Any) -> list[dict[str, Any]]:
        return [{"text": "请选择", "buttons": [{"title": "转人工", "payload": "/request_human"}]}]

    domain = domain_with(
        {
            "utter_busy": [{"text": "请慢一点"}, {"text": "微信里请慢一点", "channel": "wechat"}],
            "utter_choose_by_number": [{"text": "请回复序号。"}],
        }
    )
    assert asyncio.run(wechat(domain, busy).turn("o1", "hi", {})) == "微信里请慢一点"
    assert (
        asyncio.run(wechat(domain, buttons).turn("o1", "hi", {}))
        == "请选择\n1. 转人工\n\n请回复序号。"
    )


@pytest.mark.parametrize(
    "name",
    [
        "utter_busy",
        "utter_text_only",
        "utter_choose_by_number",
        "utter_ask_missing_slot",
        "utter_ask_affirmation",
    ],
)
def test_built_in_responses_have_a_text(name: str) -> None:
    variations = domain_with({}).variations(name) or []
    assert variations and all(v.get("text") for v in variations)
