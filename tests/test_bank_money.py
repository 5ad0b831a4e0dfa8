"""Money as integer fen and Decimal yuan: formatting and parsing, never float."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bot.bank.money import fen_to_yuan, format_yuan, parse_yuan, yuan_to_fen


@pytest.mark.parametrize(
    ("fen", "text"),
    [
        (5238050, "52,380.50 元"),
        (12800000, "128,000.00 元"),
        (271828, "2,718.28 元"),
        (3120000, "31,200.00 元"),
        (0, "0.00 元"),
        (5, "0.05 元"),
        (99, "0.99 元"),
        (100, "1.00 元"),
        (123456789012, "1,234,567,890.12 元"),
        (-150, "-1.50 元"),
    ],
)
def test_format_yuan(fen: int, text: str) -> None:
    assert format_yuan(fen) == text


def test_format_yuan_unit() -> None:
    assert format_yuan(5238050, unit="") == "52,380.50"


@pytest.mark.parametrize("bad", [52380.5, True, "5238050", Decimal("52380.50"), None])
def test_format_yuan_refuses_anything_but_int_fen(bad: object) -> None:
    with pytest.raises(TypeError):
        format_yuan(bad)  # type: ignore[arg-type]


def test_fen_to_yuan_is_exact_decimal() -> None:
    assert fen_to_yuan(5238050) == Decimal("52380.50")
    assert str(fen_to_yuan(5238050)) == "52380.50"
    assert str(fen_to_yuan(-1)) == "-0.01"


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("52,380.50", Decimal("52380.50")),
        ("52380.5", Decimal("52380.5")),
        ("52,380.50 元", Decimal("52380.50")),
        ("52,380.50元", Decimal("52380.50")),
        ("¥52,380.50", Decimal("52380.50")),
        ("￥ 200,000", Decimal("200000")),
        ("CNY 1,000.00", Decimal("1000.00")),
        ("５２３８０．５０", Decimal("52380.50")),
        ("  30000 ", Decimal("30000")),
        ("-1.5", Decimal("-1.5")),
        (".5", Decimal("0.5")),
    ],
)
def test_parse_yuan(text: str, value: Decimal) -> None:
    assert parse_yuan(text) == value


@pytest.mark.parametrize(
    "bad", ["", "元", "abc", "1,23.00", "12,3456", "1.2.3", "1e5", "NaN", "五万", "1 2"]
)
def test_parse_yuan_rejects_non_amounts(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_yuan(bad)


@pytest.mark.parametrize(
    ("amount", "fen"),
    [
        ("52,380.50 元", 5238050),
        (Decimal("52380.5"), 5238050),
        (Decimal("0.01"), 1),
        (Decimal("200000.00"), 20000000),
        (200000, 20000000),
        ("0", 0),
        (Decimal("-3.20"), -320),
    ],
)
def test_yuan_to_fen(amount: Decimal | int | str, fen: int) -> None:
    result = yuan_to_fen(amount)
    assert result == fen
    assert type(result) is int


def test_round_trip() -> None:
    for fen in (0, 1, 99, 100, 5238050, 123456789012):
        assert yuan_to_fen(format_yuan(fen)) == fen
        assert yuan_to_fen(fen_to_yuan(fen)) == fen


@pytest.mark.parametrize("bad", [Decimal("0.001"), "1.005", Decimal("52380.505")])
def test_fractions_of_a_fen_are_refused_not_rounded(bad: Decimal | str) -> None:
    with pytest.raises(ValueError, match="fractions of a fen"):
        yuan_to_fen(bad)


@pytest.mark.parametrize("bad", [0.1, 52380.5, True, None, [1]])
def test_yuan_to_fen_refuses_floats_and_other_types(bad: object) -> None:
    with pytest.raises(TypeError):
        yuan_to_fen(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [Decimal("NaN"), Decimal("Infinity")])
def test_yuan_to_fen_refuses_non_finite(bad: Decimal) -> None:
    with pytest.raises(ValueError):
        yuan_to_fen(bad)
