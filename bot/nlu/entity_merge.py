"""How extractors add entities to a message without duplicating one another.

A learned extractor (CRF, DIET's substitute) does not add an entity on a span another
extractor already found (the same span, or an overlapping one of the same entity); a
rule-based extractor that runs later replaces such a learned entity. The rules are exact
(a regex, a lookup table, Duckling) where they fire; the learned model covers the rest.

Roles and groups: only a learned extractor predicts them. A learned entity with a ``role`` or
``group`` is kept beside a rule-based entity without one on the same span (both are in the
parse result, as Rasa keeps every extractor's entities): a slot mapping with ``role``/``group``
takes the learned one, a mapping without takes the rule-based one (Rasa's mappings match
role and group exactly). Without roles and groups nothing changes, so a pipeline whose data
annotate none gets no duplicates.
"""

from __future__ import annotations

from typing import Any

from bot.nlu.interfaces import Message

LEARNED_EXTRACTORS = frozenset({"CRFEntityExtractor", "DIETClassifier", "MitieEntityExtractor"})


def _labels(entity: dict[str, Any]) -> tuple[Any, Any]:
    return entity.get("role"), entity.get("group")


def _clash(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """``a`` and ``b`` are the same finding: the same span, or an overlapping one of the same
    entity; never when one is learned and says a role or group the other (rule-based) lacks."""
    learned = [e for e in (a, b) if e.get("extractor") in LEARNED_EXTRACTORS]
    if len(learned) == 1:
        rule = b if learned[0] is a else a
        if any(_labels(learned[0])) and _labels(learned[0]) != _labels(rule):
            return False
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
