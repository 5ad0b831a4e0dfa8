"""Text normalisation: full-width → half-width, Traditional → Simplified, case, whitespace.

Keeps an offset map so every later span can be reported against the customer's own text.
Control and format characters are dropped; runs of whitespace become one space.
"""

from __future__ import annotations

from typing import Any, ClassVar

from bot.folding import fold_width_char, is_invisible, lower_char, to_simplified
from bot.nlu.interfaces import Component, Message


def normalise(
    text: str,
    *,
    traditional_to_simplified: bool = True,
    lowercase: bool = True,
    max_length: int = 0,
) -> tuple[str, list[int], bool]:
    """Return ``(normalised, offsets, truncated)``; ``offsets`` has ``len(normalised)+1`` items."""
    truncated = False
    if max_length and len(text) > max_length:
        text = text[:max_length]
        truncated = True
    chars: list[str] = []
    offsets: list[int] = []
    pending_space = False
    space_at = 0  # where the pending space came from: a dropped character may follow it
    for i, ch in enumerate(text):
        ch = fold_width_char(ch)
        if ch.isspace():
            pending_space = bool(chars)
            space_at = i
            continue
        if is_invisible(ch):
            continue
        if lowercase:
            ch = lower_char(ch)
        if pending_space:
            chars.append(" ")
            offsets.append(space_at)
            pending_space = False
        chars.append(ch)
        offsets.append(i)
    norm = "".join(chars)
    if traditional_to_simplified:  # char by char where a phrase would change the length
        norm = to_simplified(norm, per_char=True)
    offsets.append(len(text))
    return norm, offsets, truncated


class ChineseTextNormalizer(Component):
    name = "ChineseTextNormalizer"
    defaults: ClassVar[dict[str, Any]] = {
        "traditional_to_simplified": True,
        "lowercase": True,
        "max_length": 2000,
    }

    def process(self, message: Message) -> None:
        message.norm, message.offsets, message.truncated = normalise(
            message.text,
            traditional_to_simplified=self.config["traditional_to_simplified"],
            lowercase=self.config["lowercase"],
            max_length=int(self.config["max_length"]),
        )
