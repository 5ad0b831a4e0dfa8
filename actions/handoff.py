"""``action_handoff``: asks for a human agent.

It tells the customer (``utter_handoff_complaint`` after a complaint, else
``utter_handoff_request``: built-in handoff responses a domain may override), forgets an
abandoned form's answers and pauses the conversation (Rasa's ``ConversationPaused``: the bot
predicts nothing while an agent has it). Routing and queueing are the handoff stage's
(:class:`bot.handoff.stage.HandoffStage`), later in the same turn and lock.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ConversationPaused, SlotSet
from rasa_sdk.executor import CollectingDispatcher

# An abandoned form's answers must not leak into questions after the agent is done.
FORGET = ("card_last4", "loss_confirmed", "account_type", "business_type", "application_id")


class ActionHandoff(Action):
    def name(self) -> str:
        return "action_handoff"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        complaint = intent == "complain"
        dispatcher.utter_message(
            response="utter_handoff_complaint" if complaint else "utter_handoff_request"
        )
        return [*(SlotSet(name, None) for name in FORGET), ConversationPaused()]
