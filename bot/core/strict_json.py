"""JSON as the stores and channels can keep and send it again.

Python's ``json.loads`` also accepts ``NaN``, ``Infinity``, numbers that overflow to
infinity (``1e999``) and integers of more digits than ``int()`` takes (4,300); none of them
can be written back as JSON. :func:`loads` refuses them with :class:`NotJSON` (a
``ValueError``), and the caller decides what that means (a 400, or a payload ignored).

It also refuses values nested more than :data:`MAX_DEPTH` levels (:class:`TooDeep`): Python
parses up to about 1,000, but every later step that walks the value recursively (cleaning,
copying, storing, sending) would then meet ``RecursionError`` somewhere else."""

from __future__ import annotations

import json
import math
from typing import Any

# Levels of objects and lists a value may have (metadata, slots, entities need a handful).
MAX_DEPTH = 32


class NotJSON(ValueError):
    """A value JSON has no place for."""


class TooManyDigits(NotJSON):
    """An integer longer than ``int()`` reads."""


class TooDeep(NotJSON):
    """A value nested more than ``MAX_DEPTH`` levels."""


def _constant(name: str) -> Any:
    raise NotJSON(f"{name} is not a JSON number")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise NotJSON(f"{text} is not a JSON number")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:  # over sys.get_int_max_str_digits() digits
        raise TooManyDigits(f"a number of {len(text):,} digits") from None


def too_deep(value: Any, max_depth: int = MAX_DEPTH) -> bool:
    """Whether ``value`` has more than ``max_depth`` levels of objects and lists (without
    recursion; stops at the first one too deep)."""
    stack: list[tuple[Any, int]] = [(value, 1)] if isinstance(value, dict | list) else []
    while stack:
        item, level = stack.pop()
        if level > max_depth:
            return True
        for child in item.values() if isinstance(item, dict) else item:
            if isinstance(child, dict | list):
                stack.append((child, level + 1))
    return False


def _brackets(text: str | bytes) -> int:
    """An upper bound of the nesting: every level opens with ``[`` or ``{``."""
    if isinstance(text, str):
        return text.count("[") + text.count("{")
    return text.count(b"[") + text.count(b"{")


def loads(text: str | bytes, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads`` without the values above (``NotJSON``; ``TooDeep`` past ``max_depth``
    levels); malformed text raises ``json.JSONDecodeError`` as usual."""
    try:
        value = json.loads(text, parse_constant=_constant, parse_float=_float, parse_int=_int)
    except RecursionError:
        raise TooDeep(f"nested more than {max_depth} levels") from None
    if _brackets(text) > max_depth and too_deep(value, max_depth):
        raise TooDeep(f"nested more than {max_depth} levels")
    return value
