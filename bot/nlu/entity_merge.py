"""How extractors add entities to a message without duplicating one another.

A learned extractor (CRF, DIET's substitute) does not add an entity on a span another
extractor already found (the same span, or an overlapping one of the same entity); a
rule-based extractor that runs later replaces such a learned entity. The rules are exact
(a regex, a lookup table, Duckling) where they fire; the learned model covers the rest.
"""

from __future__ import annotations

from typing import Any

from bot.nlu.interfaces import Message

LEARNED_EXTRACTORS = frozenset({"CRFEntityExtractor", "DIETClassifier", "MitieEntityExtractor"})


def _clash(a: dict[str, Any], b: dict[str, Any]) -> bool:
    if a["start"] == b["start"] and a["end"] == b["end"]:
        return True
    overlap = bool(a["start"] < b["end"] and b["start"] < a["end"])
    return overlap and a["entity"] == b["entity"]


def add_learned(message: Message, entity: dict[str, Any]) -> bool:
    """Append a learned ``entity`` unless another extractor found it; True when added."""
    if any(_clash(entity, other) for other in message.entities):
        message.shadowed.append(entity)
        return False
    message.entities.append(entity)
    return True


def add_rule_based(message: Message, entity: dict[str, Any]) -> None:
    """Append a rule-based ``entity``, dropping learned entities on the same span."""
    if message.entities:
        kept = []
        for other in message.entities:
            if other.get("extractor") in LEARNED_EXTRACTORS and _clash(entity, other):
                message.shadowed.append(other)
            else:
                kept.append(other)
        message.entities[:] = kept
    message.entities.append(entity)
