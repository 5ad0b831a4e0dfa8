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


def depth(value: Any) -> int:
    """Levels of objects and lists in ``value`` (0 for a scalar), without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        level += 1
        deepest = max(deepest, level)
        stack.extend((child, level) for child in children)
    return deepest


def loads(text: str | bytes, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads`` without the values above (``NotJSON``; ``TooDeep`` past ``max_depth``
    levels); malformed text raises ``json.JSONDecodeError`` as usual."""
    try:
        value = json.loads(text, parse_constant=_constant, parse_float=_float, parse_int=_int)
    except RecursionError:
        raise TooDeep(f"nested more than {max_depth} levels") from None
    if depth(value) > max_depth:
        raise TooDeep(f"nested more than {max_depth} levels")
    return value
