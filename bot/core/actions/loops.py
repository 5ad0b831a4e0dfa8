"""Loops: forms (``required_slots`` asked one by one) and the two-stage fallback."""

from __future__ import annotations

from typing import Any

from bot.core import events as ev
from bot.core.actions.custom import run_custom_action
from bot.core.actions.default import say
from bot.core.actions.interfaces import Action, ActionContext
from bot.core.actions.responses import utter
from bot.core.events import Event
from bot.core.tracker import LISTEN, DialogueStateTracker, applied_events
from bot.domain import REQUESTED_SLOT
from bot.nlu.fallback import FALLBACK_INTENT


def _slots_set_this_turn(tracker: DialogueStateTracker) -> dict[str, Any]:
    """Slot events after the latest user message (what the message filled)."""
    found: dict[str, Any] = {}
    for event in reversed(tracker.events):
        if event.get("event") == "user":
            break
        if event.get("event") == "slot":
            found.setdefault(str(event["name"]), event.get("value"))
    return found


class FormAction(Action):
    """Asks for each empty required slot (``utter_ask_<form>_<slot>``, ``utter_ask_<slot>``
    or a custom ``action_ask_<slot>``), validates with a custom ``validate_<form>`` action
    when one exists, and deactivates itself when every slot is filled. A reply that fills
    nothing is rejected, so rules and stories can handle it (an interruption)."""

    async def run(self, tracker: DialogueStateTracker, context: ActionContext) -> list[Event]:
        form = context.domain.forms[self.name]
        events: list[Event] = []
        candidates = _slots_set_this_turn(tracker)
        if tracker.active_loop.name != self.name:
            events.append(ev.active_loop(self.name))
        else:
            requested = tracker.slots.get(REQUESTED_SLOT)
            if (
                requested
                and not set(candidates) & set(form.required_slots)
                and not tracker.active_loop.rejected
                and tracker.latest_action_name == LISTEN
            ):
                return [ev.action_execution_rejected(self.name)]
        validator = f"validate_{self.name}"
        if context.executor is not None and validator in context.executor.names():
            # rasa_sdk's FormValidationAction reads the trailing slot events as candidates.
            pending = [*events, *(ev.slot(k, v) for k, v in candidates.items())]
            events.extend(await run_custom_action(validator, tracker, context, pending))
        slots = dict(tracker.slots)
        for event in events:
            if event.get("event") == "slot":
                slots[str(event["name"])] = event.get("value")
        missing = [s for s in form.required_slots if slots.get(s) is None]
        if not missing:
            return [*events, ev.slot(REQUESTED_SLOT, None), ev.active_loop(None)]
        next_slot = missing[0]
        events.append(ev.slot(REQUESTED_SLOT, next_slot))
        return [*events, *await self._ask(next_slot, tracker, context, events)]

    async def _ask(
        self,
        slot: str,
        tracker: DialogueStateTracker,
        context: ActionContext,
        pending: list[Event],
    ) -> list[Event]:
        for name in (f"action_ask_{self.name}_{slot}", f"action_ask_{slot}"):
            if context.executor is not None and name in context.executor.names():
                return await run_custom_action(name, tracker, context, pending)
        for name in (f"utter_ask_{self.name}_{slot}", f"utter_ask_{slot}"):
            asked = utter(name, tracker, context)
            if asked:
                return asked
        return utter("utter_ask_missing_slot", tracker, context, {"slot": slot})


TWO_STAGE = "action_two_stage_fallback"


def _intent_label(domain_raw: dict[str, Any], intent: str) -> str:
    labels = domain_raw.get("intent_labels") or {}
    return str(labels.get(intent, intent))


class TwoStageFallbackAction(Action):
    """Rasa's two-stage fallback: "您是想问「…」吗？" with the top intents as buttons; on a
    clear answer the original message is replayed with that intent; otherwise the customer
    is asked to rephrase once; a second failure gives the default fallback."""

    async def run(self, tracker: DialogueStateTracker, context: ActionContext) -> list[Event]:
        if tracker.active_loop.name != TWO_STAGE:
            return [ev.active_loop(TWO_STAGE), *self._ask_affirmation(tracker, context)]
        loop_events = self._loop_events(tracker)
        users = [e for e in loop_events if e.get("event") == "user"]
        asked_rephrase = any(
            (e.get("metadata") or {}).get("two_stage") == "rephrase" for e in loop_events
        )
        intent = tracker.latest_intent
        unclear = intent in (None, FALLBACK_INTENT, "deny", "out_of_scope")
        if unclear and (asked_rephrase or intent in (None, FALLBACK_INTENT)):
            # Two unclear messages in a row (Rasa's _two_fallbacks_in_a_row), or the
            # rephrased message was unclear too: give up and offer a human.
            return [
                ev.active_loop(None),
                *say("utter_default", tracker, context),
                ev.followup(LISTEN),
            ]
        if unclear:
            rephrase = say("utter_ask_rephrase", tracker, context)
            for event in rephrase:
                event["metadata"] = {**(event.get("metadata") or {}), "two_stage": "rephrase"}
            return [*rephrase, ev.followup(LISTEN)]
        original = self._original_message(tracker)
        latest = tracker.latest_message
        suggested = self._suggested(loop_events)
        replay = (
            not asked_rephrase
            and original is not None
            and (intent == "affirm" or intent in suggested)
        )
        if not replay or original is None:
            # The rephrased message stands for itself.
            text = latest.get("text")
            parse = {k: v for k, v in latest.items() if k != "text"}
        else:
            chosen = intent
            if intent == "affirm":
                chosen = suggested[0] if suggested else intent
            parse = dict(original.get("parse_data") or {})
            parse["intent"] = {"name": chosen, "confidence": 1.0}
            parse["intent_ranking"] = [parse["intent"]]
            parse["entities"] = [*(parse.get("entities") or []), *(latest.get("entities") or [])]
            text = original.get("text")
        rewinds = [ev.rewind() for _ in range(len(users) + 1)]
        return [
            *rewinds,
            ev.action(LISTEN),  # a rewind also removes the listen before the message
            ev.user(text, parse, input_channel=tracker.latest_input_channel),
        ]

    @staticmethod
    def _loop_events(tracker: DialogueStateTracker) -> list[Event]:
        applied = applied_events(tracker.events)
        for i in range(len(applied) - 1, -1, -1):
            e = applied[i]
            if e.get("event") == "active_loop" and e.get("name") == TWO_STAGE:
                return applied[i:]
        return []

    @staticmethod
    def _original_message(tracker: DialogueStateTracker) -> Event | None:
        applied = applied_events(tracker.events)
        for i in range(len(applied) - 1, -1, -1):
            e = applied[i]
            if e.get("event") == "active_loop" and e.get("name") == TWO_STAGE:
                for j in range(i - 1, -1, -1):
                    if applied[j].get("event") == "user":
                        return applied[j]
        return None

    @staticmethod
    def _suggested(loop_events: list[Event]) -> list[str]:
        for e in loop_events:
            suggested = (e.get("metadata") or {}).get("suggested_intents")
            if suggested:
                return list(suggested)
        return []

    def _ask_affirmation(
        self, tracker: DialogueStateTracker, context: ActionContext
    ) -> list[Event]:
        ranking = tracker.latest_message.get("intent_ranking") or []
        top = [
            r["name"]
            for r in ranking
            if r.get("name") not in (FALLBACK_INTENT, None, "out_of_scope")
        ][:2]
        if not top:
            return [*say("utter_ask_rephrase", tracker, context)]
        raw = context.domain.raw
        asked = utter(
            "utter_ask_affirmation", tracker, context, {"intent_label": _intent_label(raw, top[0])}
        )
        if not asked:  # the project's variations all have a failing condition
            return [*say("utter_ask_rephrase", tracker, context)]
        event = asked[0]
        data = event.setdefault("data", {})
        # the top intents as buttons, then the response's own ("都不是" in the built-in one)
        data["buttons"] = [
            {"title": _intent_label(raw, i), "payload": f"/{i}"} for i in top
        ] + list(data.get("buttons") or [])
        event["metadata"] = {
            "utter_action": "action_default_ask_affirmation",
            "suggested_intents": top,
        }
        return [event]
