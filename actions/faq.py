"""``action_answer_faq``: answers from the knowledge base, or asks 您是想问：, or says
honestly that it is not sure (the question is logged as a knowledge gap)."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.common import HUMAN_BUTTON, knowledge_base, logger


def _answer(dispatcher: CollectingDispatcher, entry: Any) -> None:
    text = entry.answer.strip()
    links = getattr(entry, "links", None) or []
    if links:
        text += "\n" + "\n".join(f"{link.title}：{link.url}" for link in links)
    buttons = [
        {"title": b.title, "payload": b.payload} for b in getattr(entry, "buttons", None) or []
    ]
    dispatcher.utter_message(text=text, buttons=buttons or None)


class ActionAnswerFaq(Action):
    def name(self) -> str:
        return "action_answer_faq"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        try:
            kb = knowledge_base()
        except Exception as exc:  # not built, unreadable: say so, offer a person
            logger.error("knowledge base unavailable: %s", exc)
            dispatcher.utter_message(
                text="抱歉，业务知识库暂时无法使用。您可以点击“转人工”由人工客服为您解答。",
                buttons=[HUMAN_BUTTON],
            )
            return []
        topic = next(tracker.get_latest_entity_values("topic"), None)
        if topic:
            entry = next((e for e in kb.entries if e.id == topic), None)
            if entry is not None:
                _answer(dispatcher, entry)
                return []
        text = tracker.latest_message.get("text") or ""
        decision = kb.decide(text, channel=tracker.get_latest_input_channel())
        if decision.kind == "answer":
            _answer(dispatcher, decision.hits[0].entry)
        elif decision.kind == "clarify":
            dispatcher.utter_message(text="您是想问：", buttons=decision.buttons())
        else:
            dispatcher.utter_message(
                text="抱歉，这个问题我暂时没有把握回答，已记录下来改进。"
                "您可以换个说法再问，或点击“转人工”由人工客服为您解答。",
                buttons=[HUMAN_BUTTON],
            )
        return []
