"""EntityValueNormalizer: amounts (cn2an), dates, upper case, digits."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from bot.nlu.entity_values import EntityValueNormalizer, amount_value, date_value
from bot.nlu.interfaces import Message

TODAY = dt.date(2026, 11, 24)  # a Tuesday


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("五万", 50000),
        ("两万", 20000),
        ("3千5", 3500),
        ("3千5元", 3500),
        ("三千五百块", 3500),
        ("1.5w", 15000),
        ("5k", 5000),
        ("0.5万", 5000),
        ("2,000", 2000),
        ("1,234.5元", 1234.5),
        ("100块钱", 100),
        ("十万", 100000),
        ("12345", 12345),
    ],
)
def test_amounts_in_yuan(text: str, value: float) -> None:
    result = amount_value(text)
    assert result == value
    assert isinstance(result, int) == float(value).is_integer()


@pytest.mark.parametrize("text", ["", "元", "abc", "多少"])
def test_amounts_that_are_not_numbers(text: str) -> None:
    assert amount_value(text) is None


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("昨天", "2026-11-23"),
        ("前天", "2026-11-22"),
        ("大前天", "2026-11-21"),
        ("今天", "2026-11-24"),
        ("明天", "2026-11-25"),
        ("后天", "2026-11-26"),
        ("上周五", "2026-11-20"),
        ("这周一", "2026-11-23"),
        ("下星期日", "2026-12-06"),
        ("11月5号", "2026-11-05"),
        ("十一月五日", "2026-11-05"),
        ("十二月三十一日", "2026-12-31"),
        ("二十号", "2026-11-20"),
        ("2026-11-01", "2026-11-01"),
        ("2026年3月2日", "2026-03-02"),
        ("2025/12/31", "2025-12-31"),
    ],
)
def test_dates_become_iso(text: str, iso: str) -> None:
    assert date_value(text, TODAY) == iso


@pytest.mark.parametrize("text", ["2月30号", "13月1号", "明年", "随便哪天"])
def test_impossible_or_vague_dates(text: str) -> None:
    assert date_value(text, TODAY) is None


def test_relative_dates_default_to_today() -> None:
    before = dt.date.today()
    value = date_value("明天")
    after = dt.date.today()
    assert value in {(d + dt.timedelta(days=1)).isoformat() for d in (before, after)}


def _process(component: EntityValueNormalizer, ents: list[dict[str, Any]]) -> list[Any]:
    message = Message("x", entities=ents)
    component.process(message)
    return [e["value"] for e in message.entities]


def test_component_normalises_by_entity_name() -> None:
    component = EntityValueNormalizer({})
    values = _process(
        component,
        [
            {"entity": "amount", "value": "五万"},
            {"entity": "application_id", "value": "l20261101001"},
            {"entity": "card_last4", "value": "1234"},
            {"entity": "phone", "value": "138-1234-5678"},
            {"entity": "id_number", "value": "11010119900307775x"},
            {"entity": "account_type", "value": "debit_card"},  # no normaliser: unchanged
            {"entity": "amount", "value": "好多"},  # not a number: left as written
        ],
    )
    assert values == [
        50000,
        "L20261101001",
        "1234",
        "13812345678",
        "11010119900307775X",
        "debit_card",
        "好多",
    ]


def test_normalizers_are_configurable() -> None:
    component = EntityValueNormalizer({"normalizers": {"ticket": "upper"}})
    assert _process(
        component, [{"entity": "ticket", "value": "ab1"}, {"entity": "amount", "value": "五万"}]
    ) == ["AB1", "五万"]


def test_unknown_normalizer_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"unknown normalizer.*roman"):
        EntityValueNormalizer({"normalizers": {"amount": "roman"}})
