"""Money as integer fen (1 元 = 100 fen) and exact :class:`~decimal.Decimal` yuan; never float.

``format_yuan(5238050) == "52,380.50 元"``; ``yuan_to_fen("52,380.50") == 5238050``.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal

FEN_PER_YUAN = 100
_CENT = Decimal("0.01")
_PREFIXES = ("人民币", "RMB", "CNY", "¥", "￥")
_SUFFIXES = ("人民币", "RMB", "CNY", "元")
_NUMBER = re.compile(r"[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|[+-]?\.\d+")


def _require_fen(fen: object) -> int:
    if isinstance(fen, bool) or not isinstance(fen, int):
        raise TypeError(f"amounts are integer fen, got {type(fen).__name__}")
    return fen


def format_yuan(fen: int, unit: str = " 元") -> str:
    """``5238050`` → ``52,380.50 元`` (thousands separators, always two decimals)."""
    fen = _require_fen(fen)
    sign = "-" if fen < 0 else ""
    yuan, cents = divmod(abs(fen), FEN_PER_YUAN)
    return f"{sign}{yuan:,}.{cents:02d}{unit}"


def fen_to_yuan(fen: int) -> Decimal:
    """``5238050`` → ``Decimal("52380.50")``."""
    return (Decimal(_require_fen(fen)) / FEN_PER_YUAN).quantize(_CENT)


def parse_yuan(text: str) -> Decimal:
    """An amount in yuan as written: ``52,380.50``, ``¥52380.5``, ``52,380.50 元``,
    ``５２３８０．５``. :class:`ValueError` for anything else."""
    if not isinstance(text, str):
        raise TypeError(f"expected text, got {type(text).__name__}")
    cleaned = unicodedata.normalize("NFKC", text).strip()
    for prefix in _PREFIXES:
        if cleaned.upper().startswith(prefix):
            cleaned = cleaned[len(prefix) :].lstrip()
            break
    for suffix in _SUFFIXES:
        if cleaned.upper().endswith(suffix):
            cleaned = cleaned[: -len(suffix)].rstrip()
            break
    if not _NUMBER.fullmatch(cleaned):
        raise ValueError(f"not an amount of money: {text!r}")
    return Decimal(cleaned.replace(",", ""))


def yuan_to_fen(amount: Decimal | int | str) -> int:
    """Exact yuan → fen. Text is read with :func:`parse_yuan`. An amount with fractions of a
    fen is a :class:`ValueError`, never silently rounded; floats are refused."""
    if isinstance(amount, bool | float):
        raise TypeError(f"{type(amount).__name__} is not money: pass Decimal, int or text")
    if isinstance(amount, str):
        value = parse_yuan(amount)
    elif isinstance(amount, int):
        value = Decimal(amount)
    elif isinstance(amount, Decimal):
        value = amount
    else:
        raise TypeError(f"expected Decimal, int or text, got {type(amount).__name__}")
    if not value.is_finite():
        raise ValueError(f"not an amount of money: {amount!r}")
    fen = value * FEN_PER_YUAN
    if fen != fen.to_integral_value():
        raise ValueError(f"{amount!r} has fractions of a fen")
    return int(fen)
