"""``action_handoff``: asks for a human agent, when the customer asked for one.

A person is asked for explicitly: a button (``/request_human``), a message naming a person or
a complaint (the ``human_ask`` entity, ``nlu_data/human_ask.yml``), or a confident
complaint. Then it tells the customer (``utter_handoff_complaint`` after a complaint, else
``utter_handoff_request``: built-in handoff responses a domain may override), forgets an
abandoned form's answers and pauses the conversation (Rasa's ``ConversationPaused``: the bot
predicts nothing while an agent has it). Routing and queueing are the handoff stage's
(:class:`bot.handoff.stage.HandoffStage`), later in the same turn and lock.

A vague message the NLU read as ``request_human`` (我想问问手续费) is not handed off: the
customer gets a clarifying question (``utter_clarify_topic``) with the likely topics as
buttons: the knowledge base's closest questions and the self-service topics of the NLU
ranking, then 转人工.
"""

from __future__ import annotations

import json
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ConversationPaused, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.common import knowledge_base, logger
from actions.wording import phrase

# An abandoned form's answers must not leak into questions after the agent is done.
FORGET = ("card_last4", "loss_confirmed", "account_type", "business_type", "application_id")
# Kept equal to bot.handoff.triggers (the engine's own trigger applies the same test).
COMPLAINT_CONFIDENCE = 0.8
NEGATIVE = 0.5
# The self-service topics a clarifying question may offer: intent -> its button's title.
TOPICS = {
    "query_balance": "utter_part_topic_query_balance",
    "query_progress": "utter_part_topic_query_progress",
    "report_loss": "utter_part_topic_report_loss",
}
MIN_TOPIC_CONFIDENCE = 0.05
MAX_KB_BUTTONS = 3


def explicit_ask(message: dict[str, Any]) -> bool:
    """Whether the customer's message asks for a person (or complains) in so many words."""
    text = str(message.get("text") or "").strip()
    if text.startswith("/"):  # a button: 转人工
        return True
    if any(e.get("entity") == "human_ask" for e in message.get("entities") or []):
        return True
    intent = message.get("intent") or {}
    if intent.get("name") != "complain":
        return False
    sentiment = message.get("sentiment") or {}
    negative = sentiment.get("negative") if isinstance(sentiment, dict) else None
    confident = float(intent.get("confidence") or 0.0) >= COMPLAINT_CONFIDENCE
    return confident or (isinstance(negative, int | float) and negative >= NEGATIVE)


def topic_buttons(tracker: Tracker, domain: dict[str, Any]) -> list[dict[str, str]]:
    """The likely topics of a vague message: the knowledge base's closest questions, the
    self-service intents of the NLU ranking (all of them when the ranking names none)."""
    message = tracker.latest_message
    text = str(message.get("text") or "")
    buttons: list[dict[str, str]] = []
    try:
        kb = knowledge_base()
        floor = kb.settings.thresholds.candidate
        hits = kb.search(text, top=MAX_KB_BUTTONS, channel=tracker.get_latest_input_channel())
        buttons += [
            {"title": h.question, "payload": "/faq" + json.dumps({"topic": h.id})}
            for h in hits
            if h.score >= floor
        ]
    except Exception as exc:  # no knowledge base: the self-service topics still help
        logger.warning("knowledge base unavailable for a clarifying question: %s", exc)
    ranking = message.get("intent_ranking") or []
    ranked = [
        str(r.get("name"))
        for r in ranking
        if r.get("name") in TOPICS and float(r.get("confidence") or 0.0) >= MIN_TOPIC_CONFIDENCE
    ]
    for intent in ranked or list(TOPICS):
        buttons.append({"title": phrase(domain, TOPICS[intent]), "payload": f"/{intent}"})
    buttons.append(
        {"title": phrase(domain, "utter_part_topic_request_human"), "payload": "/request_human"}
    )
    return buttons


class ActionHandoff(Action):
    def name(self) -> str:
        return "action_handoff"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        message = tracker.latest_message
        if not explicit_ask(message):
            dispatcher.utter_message(
                response="utter_clarify_topic", buttons=topic_buttons(tracker, domain)
            )
            return []
        intent = (message.get("intent") or {}).get("name")
        complaint = intent == "complain"
        dispatcher.utter_message(
            response="utter_handoff_complaint" if complaint else "utter_handoff_request"
        )
        return [*(SlotSet(name, None) for name in FORGET), ConversationPaused()]
