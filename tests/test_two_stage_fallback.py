"""Two-stage fallback: "您是想问「…」吗？" with the top intents as buttons; a yes or a button
replays the original message with that intent; a no asks to rephrase; a second failure
gives the default fallback."""

from __future__ import annotations

from typing import Any

import pytest

from bot.core.messages import UserMessage
from bot.core.processor import MessageProcessor
from bot.core.tracker import LISTEN, applied_events

DOMAIN = """
version: "3.1"
intents: [greet, query_balance, report_loss, affirm, deny, out_of_scope, nlu_fallback]
entities: [card_last4]
intent_labels:
  query_balance: 查询余额
  report_loss: 挂失卡片
slots:
  card_last4:
    type: text
    mappings: [{type: from_entity, entity: card_last4}]
responses:
  utter_greet: [{text: 您好}]
  utter_balance: [{text: 余额请在App查看}]
  utter_loss: [{text: "请拨打热线挂失尾号{card_last4}的卡"}]
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
- rule: loss
  steps:
  - intent: report_loss
  - action: utter_loss
- rule: two-stage fallback
  steps:
  - intent: nlu_fallback
  - action: action_two_stage_fallback
  - active_loop: action_two_stage_fallback
"""

UNCLEAR = "卡里那个怎么弄一下"


class NLU:
    """Unclear text: nlu_fallback on top, balance and loss next; anything else: unclear
    without a ranking."""

    def parse(self, text: str) -> dict[str, Any]:
        if text.startswith(UNCLEAR):
            ranking = [
                {"name": "nlu_fallback", "confidence": 0.45},
                {"name": "query_balance", "confidence": 0.3},
                {"name": "report_loss", "confidence": 0.2},
                {"name": "out_of_scope", "confidence": 0.05},
            ]
            entities = (
                [{"entity": "card_last4", "value": "6789", "start": 0, "end": 1}]
                if "6789" in text
                else []
            )
            return {
                "text": text,
                "intent": ranking[0],
                "intent_ranking": ranking,
                "entities": entities,
            }
        intent = {"name": "nlu_fallback", "confidence": 0.2}
        return {"text": text, "intent": intent, "intent_ranking": [intent], "entities": []}


@pytest.fixture
def processor(dialogue) -> MessageProcessor:  # type: ignore[no-untyped-def]
    return MessageProcessor(*dialogue(DOMAIN, RULES, [("RulePolicy", {})]), nlu=NLU())


async def turn(p: MessageProcessor, text: str) -> tuple[list[dict[str, Any]], list[str]]:
    result = await p.handle(UserMessage(text, "s"))
    return result.messages, [a for a, _, _ in result.actions]


async def test_asks_for_affirmation_with_the_top_intents(processor: MessageProcessor) -> None:
    messages, actions = await turn(processor, UNCLEAR)
    assert actions == ["action_two_stage_fallback", LISTEN]
    assert messages == [
        {
            "recipient_id": "s",
            "text": "您是想问「查询余额」吗？",
            "buttons": [
                {"title": "查询余额", "payload": "/query_balance"},
                {"title": "挂失卡片", "payload": "/report_loss"},
                {"title": "都不是", "payload": "/out_of_scope"},
            ],
        }
    ]
    tracker = await processor.get_tracker("s")
    assert tracker.active_loop.name == "action_two_stage_fallback"


async def test_affirm_replays_the_original_message_with_the_top_intent(
    processor: MessageProcessor,
) -> None:
    await turn(processor, UNCLEAR)
    messages, actions = await turn(processor, "/affirm")
    assert actions == ["action_two_stage_fallback", "utter_balance", LISTEN]
    assert [m["text"] for m in messages] == ["余额请在App查看"]
    tracker = await processor.get_tracker("s")
    assert tracker.active_loop.name is None
    assert tracker.latest_message["text"] == UNCLEAR
    assert tracker.latest_message["intent"] == {"name": "query_balance", "confidence": 1.0}
    # the history now reads as if the customer had been understood at once
    applied = applied_events(tracker.events)
    assert [e["text"] for e in applied if e["event"] == "user"] == [UNCLEAR]
    assert [a for _, a in tracker.past_states()] == [LISTEN, "utter_balance", LISTEN, None]
    # the full log keeps everything for audit
    assert sum(e["event"] == "user" for e in tracker.events) == 3


async def test_a_button_picks_another_suggestion(processor: MessageProcessor) -> None:
    await turn(processor, UNCLEAR + "，尾号6789")
    messages, actions = await turn(processor, "/report_loss")
    assert actions == ["action_two_stage_fallback", "utter_loss", LISTEN]
    # the original message's entities come along and fill their slots
    assert [m["text"] for m in messages] == ["请拨打热线挂失尾号6789的卡"]
    tracker = await processor.get_tracker("s")
    assert tracker.get_slot("card_last4") == "6789"
    assert tracker.latest_intent == "report_loss"


async def test_deny_asks_to_rephrase_then_the_new_message_stands(
    processor: MessageProcessor,
) -> None:
    await turn(processor, UNCLEAR)
    messages, actions = await turn(processor, "/deny")
    assert actions == ["action_two_stage_fallback", LISTEN]
    assert [m["text"] for m in messages] == ["抱歉，我还是没太明白，您能换个说法再说一遍吗？"]
    assert (await processor.get_tracker("s")).active_loop.name == "action_two_stage_fallback"
    messages, actions = await turn(processor, "/greet")
    assert actions == ["action_two_stage_fallback", "utter_greet", LISTEN]
    tracker = await processor.get_tracker("s")
    assert tracker.active_loop.name is None
    assert [e["text"] for e in applied_events(tracker.events) if e["event"] == "user"] == ["/greet"]


async def test_the_none_of_these_button_asks_to_rephrase(processor: MessageProcessor) -> None:
    await turn(processor, UNCLEAR)
    messages, _ = await turn(processor, "/out_of_scope")
    assert [m["text"] for m in messages] == ["抱歉，我还是没太明白，您能换个说法再说一遍吗？"]


@pytest.mark.parametrize("second", ["/deny", "还是说不清楚"])
async def test_two_failures_give_the_default_fallback(
    processor: MessageProcessor, second: str
) -> None:
    await turn(processor, UNCLEAR)
    await turn(processor, "/deny")
    messages, actions = await turn(processor, second)
    assert actions == ["action_two_stage_fallback", LISTEN]
    assert [m["text"] for m in messages] == ["抱歉，我没有理解您的意思，能换个说法再说一次吗？"]
    tracker = await processor.get_tracker("s")
    assert tracker.active_loop.name is None
    # the conversation goes on normally afterwards
    assert (await turn(processor, "/greet"))[1] == ["utter_greet", LISTEN]


async def test_without_suggestions_it_asks_to_rephrase_at_once(
    processor: MessageProcessor,
) -> None:
    messages, actions = await turn(processor, "？？")
    assert actions == ["action_two_stage_fallback", LISTEN]
    assert [m["text"] for m in messages] == ["抱歉，我还是没太明白，您能换个说法再说一遍吗？"]
    assert "buttons" not in messages[0]


async def test_labels_default_to_the_intent_name(dialogue) -> None:  # type: ignore[no-untyped-def]
    domain = DOMAIN.replace("intent_labels:\n  query_balance: 查询余额\n", "intent_labels:\n")
    p = MessageProcessor(*dialogue(domain, RULES, [("RulePolicy", {})]), nlu=NLU())
    messages, _ = await turn(p, UNCLEAR)
    assert messages[0]["text"] == "您是想问「query_balance」吗？"
    assert [b["title"] for b in messages[0]["buttons"]] == ["query_balance", "挂失卡片", "都不是"]


async def test_two_conversations_do_not_mix(processor: MessageProcessor) -> None:
    await processor.handle(UserMessage(UNCLEAR, "a"))
    await processor.handle(UserMessage(UNCLEAR + "6789", "b"))
    result = await processor.handle(UserMessage("/affirm", "a"))
    assert [m["text"] for m in result.messages] == ["余额请在App查看"]
    result = await processor.handle(UserMessage("/report_loss", "b"))
    assert [m["text"] for m in result.messages] == ["请拨打热线挂失尾号6789的卡"]


async def test_a_domain_rewords_the_question(dialogue) -> None:  # type: ignore[no-untyped-def]
    """``utter_ask_affirmation`` is a built-in response: the domain's wins, and its buttons
    come after the top intents."""
    domain = (
        DOMAIN
        + """  utter_ask_affirmation:
    - text: "请问您要办理「{intent_label}」吗？"
      buttons: [{title: 其他问题, payload: /out_of_scope}]
"""
    )
    p = MessageProcessor(*dialogue(domain, RULES, [("RulePolicy", {})]), nlu=NLU())
    messages, _ = await turn(p, UNCLEAR)
    assert messages[0]["text"] == "请问您要办理「查询余额」吗？"
    assert [b["title"] for b in messages[0]["buttons"]] == ["查询余额", "挂失卡片", "其他问题"]
    tracker = await p.get_tracker("s")
    [asked] = [e for e in tracker.events if e["event"] == "bot"]
    assert asked["metadata"] == {
        "utter_action": "action_default_ask_affirmation",
        "suggested_intents": ["query_balance", "report_loss"],
    }
