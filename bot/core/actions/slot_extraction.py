"""Rasa 3's ``action_extract_slots``: after every user message, slot mappings fill slots.

A ``from_text`` mapping without conditions fills its slot only while a form asks for that
slot (``requested_slot``), so a free-text slot is not overwritten by every message.
Slots in ``protected`` (the verified customer id) are never filled from the customer's
message.
"""

from __future__ import annotations

from typing import Any

from bot.core import events as ev
from bot.core.events import Event
from bot.core.tracker import DialogueStateTracker
from bot.domain import REQUESTED_SLOT, Domain, SlotMapping

PROTECTED_SLOTS = frozenset({"customer_id"})


def _conditions_hold(mapping: SlotMapping, loop: str | None, requested: Any) -> bool:
    if not mapping.conditions:
        return True
    return any(
        active == loop and (slot is None or slot == requested)
        for active, slot in mapping.conditions
    )


def mapped_value(
    mapping: SlotMapping, slot_name: str, slot_type: str, tracker: DialogueStateTracker
) -> Any:
    message = tracker.latest_message
    intent = tracker.latest_intent
    loop = tracker.active_loop.name
    requested = tracker.slots.get(REQUESTED_SLOT)
    if not _conditions_hold(mapping, loop, requested):
        return None
    if mapping.intent and intent not in mapping.intent:
        return None
    if intent in mapping.not_intent:
        return None
    if mapping.type == "from_entity":
        values = [
            e.get("value")
            for e in message.get("entities") or []
            if e.get("entity") == mapping.entity
            and (mapping.role is None or e.get("role") == mapping.role)
            and (mapping.group is None or e.get("group") == mapping.group)
        ]
        if not values:
            return None
        return values if slot_type == "list" else values[0]
    if mapping.type == "from_text":
        if not mapping.conditions and requested != slot_name:
            return None
        return message.get("text")
    if mapping.type == "from_intent":
        return mapping.value
    if mapping.type == "from_trigger_intent":
        return mapping.value if loop is None else None
    return None  # custom: set by actions


def extract_slots(
    tracker: DialogueStateTracker, domain: Domain, protected: frozenset[str] = PROTECTED_SLOTS
) -> list[Event]:
    events: list[Event] = []
    for slot in domain.slots.values():
        if slot.name in protected:
            continue
        for mapping in slot.mappings:
            value = mapped_value(mapping, slot.name, slot.type, tracker)
            if value is None:
                continue
            if slot.coerce(value) != tracker.slots.get(slot.name):
                events.append(ev.slot(slot.name, value))
            break
    return events
