"""``action_handoff``: hands the conversation to a human agent.

The conversation is paused (the bot predicts nothing while an agent has it) and the
customer is told. The agent queue and console build on this.
"""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ConversationPaused, SlotSet
from rasa_sdk.executor import CollectingDispatcher


class ActionHandoff(Action):
    def name(self) -> str:
        return "action_handoff"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        intent = (tracker.latest_message.get("intent") or {}).get("name")
        if intent == "complain":
            dispatcher.utter_message(
                text="非常抱歉给您带来不好的体验。我已为您转接人工客服，请稍候，客服人员会尽快处理您的问题。"
            )
        else:
            dispatcher.utter_message(
                text="好的，正在为您转接人工客服，请稍候，人工客服会尽快接入。"
            )
        # An abandoned form's answers must not leak into questions after the agent is done.
        forget = ["card_last4", "loss_confirmed", "account_type", "business_type",
                  "application_id"]
        return [*(SlotSet(name, None) for name in forget), ConversationPaused()]
