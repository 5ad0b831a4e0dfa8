"""Rasa 3's ``action_extract_slots``: after every user message, slot mappings fill slots.

A ``from_text`` mapping without conditions fills its slot only while a form asks for that
slot (``requested_slot``), so a free-text slot is not overwritten by every message.
Slots in ``protected`` (the verified customer id) are never filled from the customer's
message.

As in Rasa 3:

- a ``from_entity`` mapping takes only entities whose ``role`` and ``group`` equal the
  mapping's (a mapping without a role takes only entities without one, so a span that comes
  twice, with a role and without, fills the role's slot and the plain slot each once); a
  list slot takes every matching value, another slot the last one;
- ``conditions: [{active_loop: form, requested_slot: slot}]`` hold when that form is active
  (and asks for that slot, when ``requested_slot`` is given); ``active_loop: null`` holds
  outside any form;
- while a form is active, the form's ``ignored_intents`` fill none of the mappings that apply
  to it;
- while a form is active, a ``from_entity`` mapping of one of its required slots that another
  of its required slots shares (same entity, role, group, ...) fills only the slot the form
  is asking for, so "尾号1234" fills ``from_card`` or ``to_card``, not both.
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


def _ignored_intents(
    mapping: SlotMapping, domain: Domain | None, loop: str | None
) -> tuple[str, ...]:
    """The active form's ``ignored_intents``, when the mapping applies to that form."""
    if domain is None or loop is None or loop not in domain.forms:
        return ()
    if mapping.conditions and not any(active == loop for active, _ in mapping.conditions):
        return ()
    return domain.forms[loop].ignored_intents


def _entity_key(mapping: SlotMapping) -> tuple[Any, ...]:
    return (
        mapping.entity,
        mapping.role,
        mapping.group,
        mapping.intent,
        mapping.not_intent,
        mapping.conditions,
    )


def _shared_in_form(
    mapping: SlotMapping, slot_name: str, domain: Domain | None, loop: str | None, requested: Any
) -> bool:
    """A ``from_entity`` mapping that another required slot of the active form has too, for
    a slot the form is not asking for (Rasa's unique entity mapping check)."""
    if (
        mapping.type != "from_entity"
        or domain is None
        or loop is None
        or loop not in domain.forms
        or requested == slot_name
    ):
        return False
    required = domain.forms[loop].required_slots
    if slot_name not in required:
        return False
    key = _entity_key(mapping)
    for other in required:
        slot = domain.slots.get(other)
        if other == slot_name or slot is None:
            continue
        if any(m.type == "from_entity" and _entity_key(m) == key for m in slot.mappings):
            return True
    return False


def mapped_value(
    mapping: SlotMapping,
    slot_name: str,
    slot_type: str,
    tracker: DialogueStateTracker,
    domain: Domain | None = None,
) -> Any:
    message = tracker.latest_message
    intent = tracker.latest_intent
    loop = tracker.active_loop.name
    requested = tracker.slots.get(REQUESTED_SLOT)
    if not _conditions_hold(mapping, loop, requested):
        return None
    if mapping.intent and intent not in mapping.intent:
        return None
    if intent in mapping.not_intent or (
        not mapping.intent and intent in _ignored_intents(mapping, domain, loop)
    ):
        return None
    if _shared_in_form(mapping, slot_name, domain, loop, requested):
        return None
    if mapping.type == "from_entity":
        values = [
            e.get("value")
            for e in message.get("entities") or []
            if e.get("entity") == mapping.entity
            and e.get("role") == mapping.role
            and e.get("group") == mapping.group
        ]
        if not values:
            return None
        # As Rasa: every value for a list slot, else the last one
        return values if slot_type == "list" else values[-1]
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
            value = mapped_value(mapping, slot.name, slot.type, tracker, domain)
            if value is None:
                continue
            if slot.coerce(value) != tracker.slots.get(slot.name):
                events.append(ev.slot(slot.name, value))
            break
    return events
