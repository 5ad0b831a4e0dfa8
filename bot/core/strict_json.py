"""JSON as the stores and channels can keep and send it again.

Python's ``json.loads`` also accepts ``NaN``, ``Infinity``, numbers that overflow to
infinity (``1e999``) and integers of more digits than ``int()`` takes (4,300); none of them
can be written back as JSON. :func:`loads` refuses them with :class:`NotJSON` (a
``ValueError``), and the caller decides what that means (a 400, or a payload ignored)."""

from __future__ import annotations

import json
import math
from typing import Any


class NotJSON(ValueError):
    """A value JSON has no place for."""


class TooManyDigits(NotJSON):
    """An integer longer than ``int()`` reads."""


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


def loads(text: str | bytes) -> Any:
    """``json.loads`` without the values above (``NotJSON``); malformed text raises
    ``json.JSONDecodeError`` as usual."""
    return json.loads(text, parse_constant=_constant, parse_float=_float, parse_int=_int)
