"""Forms: activation, asking each required slot, rejection → an interruption handled by a
rule → the form resumes, corrections, rules that end a form, and validation by a
``rasa_sdk`` FormValidationAction (in-process) or any executor object."""

from __future__ import annotations

import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest

from bot.core.actions.custom import InProcessExecutor
from bot.core.messages import UserMessage
from bot.core.processor import MessageProcessor
from bot.core.tracker import LISTEN
from bot.domain import REQUESTED_SLOT

DOMAIN = """
version: "3.1"
intents: [greet, report_loss, inform, affirm, deny, faq, request_human]
entities: [card_last4]
slots:
  card_last4:
    type: text
    influence_conversation: false
    mappings:
      - type: from_entity
        entity: card_last4
  loss_confirmed:
    type: bool
    mappings:
      - type: from_intent
        intent: affirm
        value: true
        conditions:
          - active_loop: card_loss_form
            requested_slot: loss_confirmed
      - type: from_intent
        intent: deny
        value: false
        conditions:
          - active_loop: card_loss_form
            requested_slot: loss_confirmed
forms:
  card_loss_form:
    required_slots: [card_last4, loss_confirmed]
actions: [action_handoff_stub]
responses:
  utter_greet: [{text: 您好}]
  utter_faq: [{text: 挂失免费}]
  utter_ask_card_last4: [{text: 请问尾号？}]
  utter_ask_loss_confirmed: [{text: "确认挂失尾号{card_last4}吗？"}]
  utter_done: [{text: "已为尾号{card_last4}登记挂失"}]
  utter_cancelled: [{text: 已取消挂失}]
  utter_handoff: [{text: 正在转人工}]
"""

RULES = """
version: "3.1"
rules:
- rule: greet
  steps:
  - intent: greet
  - action: utter_greet
- rule: faq
  steps:
  - intent: faq
  - action: utter_faq
- rule: start the form
  steps:
  - intent: report_loss
  - action: card_loss_form
  - active_loop: card_loss_form
- rule: submit
  condition:
  - active_loop: card_loss_form
  steps:
  - action: card_loss_form
  - active_loop: null
  - slot_was_set:
    - loss_confirmed: true
  - action: utter_done
- rule: cancelled
  condition:
  - active_loop: card_loss_form
  steps:
  - action: card_loss_form
  - active_loop: null
  - slot_was_set:
    - loss_confirmed: false
  - action: utter_cancelled
- rule: a human is asked for in the middle of the form
  condition:
  - active_loop: card_loss_form
  steps:
  - intent: request_human
  - action: action_deactivate_loop
  - active_loop: null
  - action: utter_handoff
"""


@pytest.fixture
def built(dialogue):  # type: ignore[no-untyped-def]
    return dialogue(DOMAIN, RULES, [("RulePolicy", {})])


async def say(p: MessageProcessor, text: str, sender: str = "s") -> list[str]:
    return [m.get("text", "") for m in await p.handle_message(UserMessage(text, sender))]


async def test_activation_asks_the_first_slot(built) -> None:  # type: ignore[no-untyped-def]
    p = MessageProcessor(*built)
    result = await p.handle(UserMessage("/report_loss", "s"))
    assert [a for a, _, _ in result.actions] == ["card_loss_form", LISTEN]
    assert [m["text"] for m in result.messages] == ["请问尾号？"]
    tracker = await p.get_tracker("s")
    assert tracker.active_loop.name == "card_loss_form"
    assert tracker.get_slot(REQUESTED_SLOT) == "card_last4"


async def test_happy_path_fills_every_slot_and_submits(built) -> None:  # type: ignore[no-untyped-def]
    p = MessageProcessor(*built)
    await say(p, "/report_loss")
    assert await say(p, '/inform{"card_last4": "1234"}') == ["确认挂失尾号1234吗？"]
    assert await say(p, "/affirm") == ["已为尾号1234登记挂失"]
    tracker = await p.get_tracker("s")
    assert tracker.active_loop.name is None
    assert tracker.get_slot(REQUESTED_SLOT) is None
    assert tracker.get_slot("loss_confirmed") is True


async def test_slot_given_with_the_request_is_not_asked_again(built) -> None:  # type: ignore[no-untyped-def]
    p = MessageProcessor(*built)
    assert await say(p, '/report_loss{"card_last4": "8888"}') == ["确认挂失尾号8888吗？"]
    assert (await p.get_tracker("s")).get_slot(REQUESTED_SLOT) == "loss_confirmed"


async def test_deny_cancels(built) -> None:  # type: ignore[no-untyped-def]
    p = MessageProcessor(*built)
    await say(p, '/report_loss{"card_last4": "8888"}')
    assert await say(p, "/deny") == ["已取消挂失"]
    assert (await p.get_tracker("s")).active_loop.name is None


async def test_interruption_is_handled_by_a_rule_and_the_form_resumes(built) -> None:  # type: ignore[no-untyped-def]
    p = MessageProcessor(*built)
    await say(p, "/report_loss")
    result = await p.handle(UserMessage("/faq", "s"))
    # the form rejects the message, the faq rule answers, the form asks again
    assert result.rejected == ["card_loss_form"]
    assert [a for a, _, _ in result.actions] == ["utter_faq", "card_loss_form", LISTEN]
    assert [m["text"] for m in result.messages] == ["挂失免费", "请问尾号？"]
    tracker = await p.get_tracker("s")
    assert any(e["event"] == "action_execution_rejected" for e in tracker.events)
    assert tracker.active_loop.name == "card_loss_form"
    assert tracker.active_loop.rejected is False
    # at the second slot too, and then the form completes normally
    await say(p, '/inform{"card_last4": "1234"}')
    assert await say(p, "/greet") == ["您好", "确认挂失尾号1234吗？"]
    assert await say(p, "/affirm") == ["已为尾号1234登记挂失"]


async def test_correcting_a_slot_in_the_middle(built) -> None:  # type: ignore[no-untyped-def]
    p = MessageProcessor(*built)
    await say(p, '/report_loss{"card_last4": "1234"}')
    # "no wait, it is 5678": the form takes the new value and asks to confirm that one
    assert await say(p, '/inform{"card_last4": "5678"}') == ["确认挂失尾号5678吗？"]
    assert await say(p, "/affirm") == ["已为尾号5678登记挂失"]


async def test_a_rule_with_the_form_as_condition_ends_it(built) -> None:  # type: ignore[no-untyped-def]
    p = MessageProcessor(*built)
    await say(p, "/report_loss")
    result = await p.handle(UserMessage("/request_human", "s"))
    assert [a for a, _, _ in result.actions] == ["action_deactivate_loop", "utter_handoff", LISTEN]
    tracker = await p.get_tracker("s")
    assert tracker.active_loop.name is None
    assert tracker.get_slot(REQUESTED_SLOT) is None


async def test_ask_responses_fall_back_in_rasa_order(dialogue) -> None:  # type: ignore[no-untyped-def]
    domain = DOMAIN.replace(
        "  utter_ask_card_last4: [{text: 请问尾号？}]\n",
        "  utter_ask_card_last4: [{text: 请问尾号？}]\n"
        "  utter_ask_card_loss_form_card_last4: [{text: 挂失哪张卡的尾号？}]\n",
    ).replace('  utter_ask_loss_confirmed: [{text: "确认挂失尾号{card_last4}吗？"}]\n', "")
    p = MessageProcessor(*dialogue(domain, RULES, [("RulePolicy", {})]))
    assert await say(p, "/report_loss") == ["挂失哪张卡的尾号？"]  # form-specific first
    assert await say(p, '/inform{"card_last4": "1"}') == ["请提供loss_confirmed。"]  # built-in


# --- validation and asking by custom actions ------------------------------------------------


class FakeExecutor:
    """An executor object: ``names()`` and ``run()``, recording what it was sent."""

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def names(self) -> set[str]:
        return set(self.answers)

    async def run(
        self, name: str, tracker: dict[str, Any], domain: dict[str, Any]
    ) -> dict[str, Any]:
        self.calls.append((name, tracker))
        answer = self.answers[name]
        return answer(tracker) if callable(answer) else answer


def validate_card(tracker: dict[str, Any]) -> dict[str, Any]:
    value = tracker["slots"].get("card_last4")
    if value is None or (len(str(value)) == 4 and str(value).isdigit()):
        return {"events": [], "responses": []}
    return {
        "events": [{"event": "slot", "name": "card_last4", "value": None, "timestamp": None}],
        "responses": [{"text": "卡号后四位是4位数字"}],
    }


async def test_validation_by_an_executor_object(built) -> None:  # type: ignore[no-untyped-def]
    executor = FakeExecutor({"validate_card_loss_form": validate_card})
    p = MessageProcessor(*built, executor=executor)
    await say(p, "/report_loss")
    assert await say(p, '/inform{"card_last4": "12"}') == ["卡号后四位是4位数字", "请问尾号？"]
    name, sent = executor.calls[-1]
    assert name == "validate_card_loss_form"
    # the candidate value is in the trailing slot events, where rasa_sdk looks for it
    assert sent["events"][-1]["event"] == "slot"
    assert sent["events"][-1]["name"] == "card_last4"
    assert sent["active_loop"]["name"] == "card_loss_form"
    assert (await p.get_tracker("s")).get_slot("card_last4") is None
    assert await say(p, '/inform{"card_last4": "1234"}') == ["确认挂失尾号1234吗？"]


async def test_ask_by_a_custom_action(built) -> None:  # type: ignore[no-untyped-def]
    executor = FakeExecutor(
        {
            "action_ask_card_last4": {
                "events": [],
                "responses": [
                    {
                        "text": "请输入卡号后四位",
                        "buttons": [
                            {"title": "尾号1234", "payload": '/inform{"card_last4": "1234"}'}
                        ],
                    }
                ],
            }
        }
    )
    p = MessageProcessor(*built, executor=executor)
    (message,) = await p.handle_message(UserMessage("/report_loss", "s"))
    assert message["text"] == "请输入卡号后四位"
    assert message["buttons"][0]["payload"] == '/inform{"card_last4": "1234"}'
    # the tracker it saw already has the form active and the slot requested
    sent = executor.calls[0][1]
    assert sent["slots"][REQUESTED_SLOT] == "card_last4"
    assert sent["active_loop"]["name"] == "card_loss_form"


VALIDATION_PACKAGE = """
from rasa_sdk import FormValidationAction


class ValidateCardLossForm(FormValidationAction):
    def name(self):
        return "validate_card_loss_form"

    def validate_card_last4(self, slot_value, dispatcher, tracker, domain):
        value = str(slot_value)
        if len(value) == 4 and value.isdigit():
            return {"card_last4": value}
        dispatcher.utter_message(text=f"“{value}”不是4位数字，请重新输入")
        return {"card_last4": None}
"""


@pytest.fixture
def validation_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    name = f"form_actions_{uuid.uuid4().hex[:8]}"
    (tmp_path / name).mkdir()
    (tmp_path / name / "__init__.py").write_text(
        textwrap.dedent(VALIDATION_PACKAGE), encoding="utf-8"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    for module in [m for m in sys.modules if m.startswith(name)]:
        del sys.modules[module]


async def test_validation_by_a_rasa_sdk_form_validation_action(  # type: ignore[no-untyped-def]
    built, validation_package: str
) -> None:
    executor = InProcessExecutor(validation_package)
    assert "validate_card_loss_form" in executor.names()
    p = MessageProcessor(*built, executor=executor)
    await say(p, "/report_loss")
    assert await say(p, '/inform{"card_last4": "12a"}') == [
        "“12a”不是4位数字，请重新输入",
        "请问尾号？",
    ]
    tracker = await p.get_tracker("s")
    assert tracker.get_slot("card_last4") is None
    assert tracker.active_loop.name == "card_loss_form"
    assert await say(p, '/inform{"card_last4": "4321"}') == ["确认挂失尾号4321吗？"]
    assert await say(p, "/affirm") == ["已为尾号4321登记挂失"]


ONE_TURN_DOMAIN = """
version: "3.1"
intents: [lock_card, greet]
entities: [card_last4]
slots:
  card_last4:
    type: text
    influence_conversation: false
    mappings:
      - type: from_entity
        entity: card_last4
forms:
  lock_form:
    required_slots: [card_last4]
responses:
  utter_greet: [{text: 您好}]
  utter_ask_card_last4: [{text: 请问尾号？}]
  utter_locked: [{text: "已锁定尾号{card_last4}"}]
"""

ONE_TURN_RULES = """
version: "3.1"
rules:
- rule: greet
  steps:
  - intent: greet
  - action: utter_greet
- rule: open the form
  steps:
  - intent: lock_card
  - action: lock_form
  - active_loop: lock_form
- rule: submit
  condition:
  - active_loop: lock_form
  steps:
  - action: lock_form
  - active_loop: null
  - slot_was_set:
    - requested_slot: null
  - action: utter_locked
"""


async def test_a_form_filled_by_its_opening_message_submits_in_the_same_turn(  # type: ignore[no-untyped-def]
    dialogue,
) -> None:
    """As Rasa: the form opens, finds every slot filled, closes, and the rule whose condition
    is the form submits it at once."""
    p = MessageProcessor(*dialogue(ONE_TURN_DOMAIN, ONE_TURN_RULES, [("RulePolicy", {})]))
    result = await p.handle(UserMessage('/lock_card{"card_last4": "1234"}', "s"))
    assert [a for a, _, _ in result.actions] == ["lock_form", "utter_locked", LISTEN]
    assert [m["text"] for m in result.messages] == ["已锁定尾号1234"]
    assert (await p.get_tracker("s")).active_loop.name is None
    # without the slot, the form asks and the submit rule waits for the answer
    result = await p.handle(UserMessage("/lock_card", "t"))
    assert [a for a, _, _ in result.actions] == ["lock_form", LISTEN]
    assert await say(p, '/lock_card{"card_last4": "5678"}', "t") == ["已锁定尾号5678"]
    # the greeting rule is not disturbed after a submitted form
    assert await say(p, "/greet", "s") == ["您好"]
