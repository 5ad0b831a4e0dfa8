"""Text normalisation: full-width → half-width, Traditional → Simplified, case, whitespace.

Keeps an offset map so every later span can be reported against the customer's own text.
Control and format characters are dropped; runs of whitespace become one space.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from typing import Any, ClassVar

from bot.nlu.interfaces import Component, Message


@lru_cache(maxsize=1)
def _t2s() -> Any:
    try:
        import opencc
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise ImportError("ChineseTextNormalizer needs OpenCC: pip install opencc") from exc
    return opencc.OpenCC("t2s")


def _width(ch: str) -> str:
    code = ord(ch)
    if code == 0x3000:
        return " "
    if 0xFF01 <= code <= 0xFF5E:
        return chr(code - 0xFEE0)
    return ch


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
        ch = _width(ch)
        if ch.isspace():
            pending_space = bool(chars)
            space_at = i
            continue
        category = unicodedata.category(ch)
        if category in ("Cc", "Cf", "Cs", "Co", "Cn"):
            continue
        if lowercase:
            lowered = ch.lower()
            ch = lowered if len(lowered) == 1 else ch
        if pending_space:
            chars.append(" ")
            offsets.append(space_at)
            pending_space = False
        chars.append(ch)
        offsets.append(i)
    norm = "".join(chars)
    if traditional_to_simplified and norm and not norm.isascii():
        converted = _t2s().convert(norm)
        if len(converted) == len(norm):
            norm = converted
        else:  # a phrase conversion changed the length: convert char by char
            norm = "".join(c if len(c2 := _t2s().convert(c)) != 1 else c2 for c in norm)
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
