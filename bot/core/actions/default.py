"""Rasa's default actions (docs/rasa-compat.md). Their texts are built-in responses
(``bot/resources/responses/engine.yml``) that domain responses of the same name
(``utter_default``, ``utter_ask_rephrase``, ...) replace."""

from __future__ import annotations

from bot.core import events as ev
from bot.core.actions.interfaces import Action, ActionContext
from bot.core.actions.responses import utter
from bot.core.actions.slot_extraction import extract_slots
from bot.core.events import Event
from bot.core.tracker import LISTEN, DialogueStateTracker
from bot.domain import REQUESTED_SLOT, SESSION_START_METADATA_SLOT


def say(name: str, tracker: DialogueStateTracker, context: ActionContext) -> list[Event]:
    """The domain response ``name``, else the built-in one (``bot/resources/responses``)."""
    return utter(name, tracker, context)


class ActionListen(Action):
    async def run(self, tracker: DialogueStateTracker, context: ActionContext) -> list[Event]:
        return []


class ActionSessionStart(Action):
    """Starts a session; carries the slots over when ``session_config`` says so."""

    async def run(self, tracker: DialogueStateTracker, context: ActionContext) -> list[Event]:
        events: list[Event] = [ev.session_started()]
        if context.domain.session_config.carry_over_slots:
            for name, value in tracker.slots.items():
                slot = context.domain.slots.get(name)
                if slot and name != REQUESTED_SLOT and value not in (None, slot.initial_value):
                    events.append(ev.slot(name, value))
        metadata = (tracker.latest_message or {}).get("metadata")
        if metadata and SESSION_START_METADATA_SLOT in context.domain.slots:
            events.append(ev.slot(SESSION_START_METADATA_SLOT, metadata))
        return events


class ActionRestart(Action):
    async def run(self, tracker: DialogueStateTracker, context: ActionContext) -> list[Event]:
        return [*utter("utter_restart", tracker, context), ev.restart()]


class ActionDefaultFallback(Action):
    """Says it did not understand and forgets the message (Rasa's UserUtteranceReverted)."""

    async def run(self, tracker: DialogueStateTracker, context: ActionContext) -> list[Event]:
        return [*say("utter_default", tracker, context), ev.rewind()]


class ActionDeactivateLoop(Action):
    async def run(self, tracker: DialogueStateTracker, context: ActionContext) -> list[Event]:
        return [ev.active_loop(None), ev.slot(REQUESTED_SLOT, None)]


class ActionBack(Action):
    async def run(self, tracker: DialogueStateTracker, context: ActionContext) -> list[Event]:
        return [*say("utter_back", tracker, context), ev.rewind(), ev.rewind()]


class ActionExtractSlots(Action):
    async def run(self, tracker: DialogueStateTracker, context: ActionContext) -> list[Event]:
        return extract_slots(tracker, context.domain)


class ActionDefaultAskRephrase(Action):
    async def run(self, tracker: DialogueStateTracker, context: ActionContext) -> list[Event]:
        return [*say("utter_ask_rephrase", tracker, context), ev.followup(LISTEN)]
