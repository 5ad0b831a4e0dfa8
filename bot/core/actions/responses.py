"""Responses from the domain: a variation for the channel, ``{slot}`` templates filled."""

from __future__ import annotations

import random
import re
from typing import Any

from bot.core import events as ev
from bot.core.actions.interfaces import Action, ActionContext
from bot.core.events import Event
from bot.core.tracker import DialogueStateTracker
from bot.domain import Domain

_TEMPLATE = re.compile(r"\{(\w+)\}")
# Rasa fills templates with str.format, so ``{{`` / ``}}`` stand for literal braces, e.g. a
# button payload '/inform{{"card_last4": "{card_last4}"}}'.
_ESCAPED_TEMPLATE = re.compile(r"\{\{|\}\}|\{(\w+)\}")
_RNG = random.Random()
MESSAGE_KEYS = ("buttons", "image", "custom", "attachment", "elements", "quick_replies")


def _fill(text: str, values: dict[str, Any]) -> str:
    if "{" not in text:  # most texts and payloads have no template
        return text

    def replace(match: re.Match[str]) -> str:
        key = match.group(1)
        if key is None:  # an escaped brace
            return match.group(0)[0]
        if key not in values:
            return match.group(0)
        value = values[key]
        return "" if value is None else str(value)

    return (_ESCAPED_TEMPLATE if "{{" in text else _TEMPLATE).sub(replace, text)


def _fill_any(value: Any, values: dict[str, Any]) -> Any:
    if isinstance(value, str):
        return _fill(value, values)
    if isinstance(value, list):
        return [_fill_any(v, values) for v in value]
    if isinstance(value, dict):
        return {k: _fill_any(v, values) for k, v in value.items()}
    return value


def _condition_holds(variation: dict[str, Any], slots: dict[str, Any]) -> bool:
    """Rasa's conditional variations: every ``{type: slot, name, value}`` of ``condition``
    matches the slot's value (a variation without ``condition`` always holds)."""
    conditions = variation.get("condition")
    if not conditions:
        return True
    if not isinstance(conditions, list):
        return False
    return all(
        isinstance(c, dict)
        and c.get("type", "slot") == "slot"
        and slots.get(str(c.get("name"))) == c.get("value")
        for c in conditions
    )


def choose_variation(
    variations: list[dict[str, Any]],
    channel: str | None,
    rng: random.Random,
    slots: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    """A variation for ``channel``: those whose ``condition`` holds come first (as in Rasa),
    then those without one; ``None`` when every variation's condition fails."""
    usable = [v for v in variations if _condition_holds(v, slots or {})]
    usable = [v for v in usable if v.get("condition")] or usable
    if not usable:
        return None
    for_channel = [v for v in usable if channel and v.get("channel") == channel]
    generic = [v for v in usable if not v.get("channel")]
    candidates = for_channel or generic or usable
    return candidates[0] if len(candidates) == 1 else rng.choice(candidates)


def render(variation: dict[str, Any], values: dict[str, Any], response: str | None = None) -> Event:
    """One bot event from a response variation; ``values`` fill ``{name}`` templates."""
    text = variation.get("text")
    data = {k: _fill_any(variation[k], values) for k in MESSAGE_KEYS if k in variation}
    metadata = {"utter_action": response} if response else {}
    return ev.bot(_fill(text, values) if isinstance(text, str) else None, data, metadata)


def bot_message(event: Event, recipient_id: str) -> dict[str, Any]:
    """A bot event as the REST channel sends it."""
    message: dict[str, Any] = {"recipient_id": recipient_id}
    if event.get("text"):
        message["text"] = event["text"]
    data = event.get("data") or {}
    for key in MESSAGE_KEYS:
        if data.get(key):
            message[key] = data[key]
    return message


def utter(
    name: str,
    tracker: DialogueStateTracker,
    context: ActionContext,
    extra: dict[str, Any] | None = None,
) -> list[Event]:
    event = response_event(
        name,
        context.domain,
        channel=context.channel,
        rng=context.rng,
        slots=tracker.slots,
        values=extra,
    )
    return [] if event is None else [event]


def response_event(
    name: str,
    domain: Domain,
    *,
    channel: str | None = None,
    rng: random.Random | None = None,
    slots: dict[str, Any] | None = None,
    values: dict[str, Any] | None = None,
) -> Event | None:
    """One bot event of the response ``name`` (the domain's, else the built-in one) with its
    templates filled from ``slots`` and ``values``; None when there is no such response or
    no variation's condition holds. For code outside actions (handoff, the server)."""
    variations = domain.variations(name)
    if not variations:
        return None
    variation = choose_variation(variations, channel, rng or _RNG, slots)
    if variation is None:
        return None
    return render(variation, {**(slots or {}), **(values or {})}, name)


class ResponseAction(Action):
    """``utter_x``: sends one variation of the response ``utter_x``."""

    async def run(self, tracker: DialogueStateTracker, context: ActionContext) -> list[Event]:
        return utter(self.name, tracker, context)
