"""Masking of personal data (ID numbers, phone numbers, card numbers) for logs, exports
and agent views. Applied to free text; entity values are masked by entity name."""

from __future__ import annotations

import re
from typing import Any

from bot.folding import width_table

_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])(\d{6})\d{8}(\d{3}[\dXx])(?![0-9A-Za-z])")
_CARD = re.compile(r"(?<!\d)\d{12,15}(\d{4})(?!\d)")
# A card number printed in groups of four: 6222 0212 3456 7890 (or with dashes).
_CARD_GROUPED = re.compile(r"(?<!\d)(\d{4}([ -])\d{4}\2\d{4}\2)(\d{4})(?!\d)")
# 13812345678, +86 138 1234 5678, 86-138-1234-5678: the country code and separators are kept.
_PHONE = re.compile(r"(?<!\d)((?:\+?86[ -]?)?1[3-9]\d)([ -]?)\d{4}([ -]?)(\d{4})(?!\d)")

PERSONAL_ENTITIES = frozenset({"phone", "id_number"})
# Chinese input methods often type full-width digits (１３８…): masked as the ASCII ones.
_FULL_WIDTH = width_table("0123456789Xx+- ")
_HAS_FULL_WIDTH = re.compile("[\uff10-\uff19]")


def mask_text(text: str) -> str:
    """``110101199003077758`` → ``110101********7758``; ``13812345678`` → ``138****5678``;
    a 16-19 digit card number → ``************1234``. Full-width digits count as digits (the
    masked text shows them half-width)."""
    if _HAS_FULL_WIDTH.search(text):
        half = text.translate(_FULL_WIDTH)
        masked = _mask(half)
        return text if masked == half else masked  # nothing personal: left as typed
    return _mask(text)


def _mask(text: str) -> str:
    text = _ID_NUMBER.sub(lambda m: m.group(1) + "*" * 8 + m.group(2), text)
    text = _CARD.sub(lambda m: "*" * (len(m.group(0)) - 4) + m.group(1), text)
    text = _CARD_GROUPED.sub(lambda m: re.sub(r"\d", "*", m.group(1)) + m.group(3), text)
    return _PHONE.sub(lambda m: m.group(1) + m.group(2) + "****" + m.group(3) + m.group(4), text)


def mask_entity_value(entity: str, value: Any) -> Any:
    if entity in PERSONAL_ENTITIES and isinstance(value, str):
        return mask_text(value)
    return value
