"""Text folding: the one implementation of each way two spellings of a text are made equal.

Full-width ASCII forms → half-width, the ideographic space → a space, invisible marks
(zero-width characters, bidirectional controls, the BOM) dropped, Traditional → Simplified
(OpenCC ``t2s``), case, NFKC. Each caller combines the pieces it needs: the NLU normaliser
(:mod:`bot.nlu.normalizer`, character by character, keeping offsets), the knowledge base's
text (:mod:`bot.kb.text`), masking (:mod:`bot.privacy`) and sender checks
(:mod:`bot.channels.inputs`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

IDEOGRAPHIC_SPACE = 0x3000
_FULL_WIDTH_OFFSET = 0xFEE0  # U+FF01..U+FF5E are U+0021..U+007E in full width

# Full-width forms of ASCII (！ … ～) and the ideographic space → their half-width forms.
WIDTH: dict[int, str] = {
    IDEOGRAPHIC_SPACE: " ",
    **{code: chr(code - _FULL_WIDTH_OFFSET) for code in range(0xFF01, 0xFF5F)},
}

# Characters that show nothing and change nothing a reader sees: zero-width space and
# (non-)joiners, directional marks and embeddings, word joiner and invisible operators, BOM.
FORMAT_MARKS: frozenset[int] = frozenset(
    [*range(0x200B, 0x2010), *range(0x202A, 0x202F), *range(0x2060, 0x2070), 0xFEFF]
)
# C0 and C1 control characters (Unicode category Cc).
CONTROLS: frozenset[int] = frozenset([*range(0x00, 0x20), *range(0x7F, 0xA0)])
# Unicode categories of characters that are never text: controls, format characters,
# surrogates, private use and unassigned code points.
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn"})


def width_table(chars: Iterable[str] | None = None) -> dict[int, str]:
    """The :data:`WIDTH` table for ``str.translate``, or only the entries whose half-width
    form is one of ``chars`` (``width_table("0123456789")``: full-width digits only)."""
    if chars is None:
        return dict(WIDTH)
    wanted = set(chars)
    return {code: half for code, half in WIDTH.items() if half in wanted}


def fold_width(text: str) -> str:
    """Full-width ASCII forms and the ideographic space → half-width (same length)."""
    return text.translate(WIDTH)


def fold_width_char(ch: str) -> str:
    """:func:`fold_width` of one character."""
    return WIDTH.get(ord(ch), ch) if len(ch) == 1 else ch


def is_invisible(ch: str) -> bool:
    """A control, format, surrogate, private-use or unassigned character."""
    return unicodedata.category(ch) in _INVISIBLE_CATEGORIES


def _char_class(codes: Iterable[int]) -> str:
    """A regular-expression character class matching exactly ``codes``."""
    ranges: list[tuple[int, int]] = []
    for code in sorted(set(codes)):
        if ranges and ranges[-1][1] == code - 1:
            ranges[-1] = (ranges[-1][0], code)
        else:
            ranges.append((code, code))
    parts = [
        re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}"
        for a, b in ranges
    ]
    return "[" + "".join(parts) + "]"


_LINE_CONTROLS = frozenset(map(ord, "\t\n\r"))
_MARKS = re.compile(_char_class((CONTROLS - _LINE_CONTROLS) | FORMAT_MARKS))


def drop_marks(text: str) -> str:
    """Control characters (but tab, newline and carriage return) and :data:`FORMAT_MARKS`
    removed."""
    return _MARKS.sub("", text)


def lower_char(ch: str) -> str:
    """``ch`` in lower case when that is one character (``İ`` stays: its lower case is two)."""
    lowered = ch.lower()
    return lowered if len(lowered) == 1 else ch


@lru_cache(maxsize=1)
def _t2s() -> Any:
    try:
        import opencc
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise ImportError("Traditional → Simplified needs OpenCC: pip install opencc") from exc
    return opencc.OpenCC("t2s")


def to_simplified(text: str, *, per_char: bool = False) -> str:
    """Traditional → Simplified Chinese, never changing the length: when a phrase conversion
    would (``per_char``) each character is converted alone, else the text stays as it is."""
    if not text or text.isascii():
        return text
    converted = str(_t2s().convert(text))
    if len(converted) == len(text):
        return converted
    if not per_char:
        return text
    return "".join(c if len(c2 := str(_t2s().convert(c))) != 1 else c2 for c in text)


def nfkc(text: str) -> str:
    """Unicode compatibility composition (full width, ligatures, circled digits …)."""
    return unicodedata.normalize("NFKC", text)


# --- digits as people type them -------------------------------------------------------------

# Chinese numerals read out digit by digit (一三八…, 〇/零 for 0, 幺 for 1 as on the phone).
CHINESE_DIGITS: dict[str, str] = {
    "〇": "0",
    "零": "0",
    "一": "1",
    "幺": "1",
    "二": "2",
    "三": "3",
    "四": "4",
    "五": "5",
    "六": "6",
    "七": "7",
    "八": "8",
    "九": "9",
}
# What people put between the groups of a long number: spaces of every width, dots, dashes
# (hyphen, minus, en and em dash, …), slashes, underscores, middle dots; their full-width forms.
DIGIT_SEPARATORS: frozenset[str] = frozenset(
    " \t\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u202f\u205f\u3000"
    ".-/_·\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u30fb"
    "．－／＿・\uff65"
)
# Invisible inside a number: FORMAT_MARKS, the soft hyphen and the Mongolian vowel separator.
DIGIT_INVISIBLES: frozenset[str] = frozenset(
    [*map(chr, FORMAT_MARKS), "\u00ad", "\u180e", "\u034f"]
)


def digit_value(ch: str) -> str | None:
    """The ASCII digit ``ch`` stands for: any Unicode decimal digit (``１``, ``𝟏``, ``١``,
    ``१`` …, :func:`unicodedata.decimal`) or a Chinese numeral read digit by digit
    (:data:`CHINESE_DIGITS`); None for anything else."""
    if "0" <= ch <= "9":
        return ch
    if ch in CHINESE_DIGITS:
        return CHINESE_DIGITS[ch]
    value = unicodedata.decimal(ch, None) if len(ch) == 1 else None
    return None if value is None else chr(0x30 + value)


def digits_class() -> str:
    """A regular-expression class of every character :func:`digit_value` knows (``\\d`` is
    every Unicode decimal digit in a ``str`` pattern)."""
    return r"[\d" + "".join(CHINESE_DIGITS) + "]"


def char_class(chars: Iterable[str]) -> str:
    """A regular-expression class matching exactly ``chars``."""
    return _char_class(map(ord, chars))
