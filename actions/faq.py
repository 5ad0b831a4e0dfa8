"""``action_answer_faq``: answers from the knowledge base, or asks 您是想问：, or says
honestly that it is not sure (the question is logged as a knowledge gap). The words
around the knowledge base's answers are responses in ``domain.yml``."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.common import knowledge_base, logger
from actions.wording import phrase


def _answer(dispatcher: CollectingDispatcher, entry: Any, domain: dict[str, Any]) -> None:
    lines = [entry.answer.strip()]
    lines += [
        phrase(domain, "utter_part_link", title=link.title, url=link.url)
        for link in getattr(entry, "links", None) or []
    ]
    buttons = [
        {"title": b.title, "payload": b.payload} for b in getattr(entry, "buttons", None) or []
    ]
    dispatcher.utter_message(
        response="utter_faq_answer",
        answer="\n".join(lines),
        buttons=buttons,
        metadata={"kb_entry": entry.id},  # counted by `bot report` (docs/analytics.md)
    )


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
            dispatcher.utter_message(response="utter_kb_unavailable")
            return []
        topic = next(tracker.get_latest_entity_values("topic"), None)
        if topic:
            entry = next((e for e in kb.entries if e.id == topic), None)
            if entry is not None:
                _answer(dispatcher, entry, domain)
                return []
        text = tracker.latest_message.get("text") or ""
        decision = kb.decide(text, channel=tracker.get_latest_input_channel())
        if decision.kind == "answer":
            _answer(dispatcher, decision.hits[0].entry, domain)
        elif decision.kind == "clarify":
            dispatcher.utter_message(response="utter_faq_clarify", buttons=decision.buttons())
        else:
            dispatcher.utter_message(response="utter_faq_not_sure")
        return []
