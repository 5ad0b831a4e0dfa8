"""Retrieval actions: ``utter_<intent>`` (and Rasa 1's ``respond_<intent>``) for a retrieval
intent such as ``chitchat`` answer with the response the NLU's ResponseSelector picked for
the latest user message.

The selector's result is ``parse_data["response_selector"][<intent>]`` (or its ``default``
entry when the selector was trained for every retrieval intent at once); its
``response.utter_action`` (e.g. ``utter_chitchat/whoyouare``) names the domain response to
send. Without a result, or when it names a response the domain lacks, the domain's fallback
(``utter_default``, else the engine's default text) is sent instead, so a customer never gets
silence or another intent's answer.
"""

from __future__ import annotations

import logging
from typing import Any

from bot.core.actions.default import say
from bot.core.actions.interfaces import Action, ActionContext
from bot.core.actions.responses import utter
from bot.core.events import Event
from bot.core.tracker import DialogueStateTracker

logger = logging.getLogger(__name__)

DEFAULT_SELECTOR = "default"


def selected_response(parse_data: dict[str, Any], intent: str) -> str | None:
    """The response the selector picked for ``intent`` (its own entry, else ``default``)."""
    selector = parse_data.get("response_selector")
    if not isinstance(selector, dict):
        return None
    for key in (intent, DEFAULT_SELECTOR):
        entry = selector.get(key)
        if not isinstance(entry, dict):
            continue
        response = entry.get("response")
        if not isinstance(response, dict):
            continue
        action = response.get("utter_action")
        if isinstance(action, str) and action:
            return action
        key_name = response.get("intent_response_key")
        if isinstance(key_name, str) and key_name:
            return f"utter_{key_name}"
    return None


class RetrievalAction(Action):
    """``utter_<retrieval intent>``: the response the ResponseSelector chose."""

    def __init__(self, name: str, intent: str) -> None:
        super().__init__(name)
        self.intent = intent

    async def run(self, tracker: DialogueStateTracker, context: ActionContext) -> list[Event]:
        chosen = selected_response(tracker.latest_message, self.intent)
        if chosen is not None and chosen in context.domain.responses:
            events = utter(chosen, tracker, context)
            for event in events:
                event["metadata"] = {
                    **(event.get("metadata") or {}),
                    "retrieval_intent": self.intent,
                }
            if events:
                return events
        if chosen is None:
            logger.info(
                "%s: %s found no response selector result for '%s'; falling back",
                tracker.sender_id,
                self.name,
                self.intent,
            )
        else:
            logger.warning(
                "%s: %s: the selector chose %s, which the domain has no response for; falling back",
                tracker.sender_id,
                self.name,
                chosen,
            )
        return say("utter_default", tracker, context)
