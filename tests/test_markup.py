"""Inline entity markup: ``[text](entity)`` and ``[text]{"entity": ..., "value": ...}``."""

from __future__ import annotations

import pytest

from bot.training.data import EntityAnnotation
from bot.training.markup import MarkupError, parse_markup


def test_short_form() -> None:
    text, entities = parse_markup("查下尾号[1234](card_last4)的余额")
    assert text == "查下尾号1234的余额"
    assert entities == (EntityAnnotation("card_last4", "1234", 4, 8, "1234"),)
    assert text[4:8] == "1234"


def test_json_form_with_value_role_and_group() -> None:
    text, entities = parse_markup(
        '从[北京]{"entity": "city", "role": "from", "group": "1", "value": "Beijing"}出发'
    )
    assert text == "从北京出发"
    (ann,) = entities
    assert (ann.entity, ann.value, ann.start, ann.end) == ("city", "Beijing", 1, 3)
    assert ann.text == "北京"
    assert (ann.role, ann.group) == ("from", "1")


def test_json_form_without_value_uses_the_surface() -> None:
    _, (ann,) = parse_markup('[信用卡]{"entity": "account_type"}')
    assert ann.value == "信用卡"


def test_several_annotations_have_offsets_in_the_plain_text() -> None:
    line = (
        '我[工资卡]{"entity": "account_type", "value": "debit_card"}'
        "转[五万](amount)到尾号[1234](card_last4)"
    )
    text, entities = parse_markup(line)
    assert text == "我工资卡转五万到尾号1234"
    assert [(e.entity, e.value) for e in entities] == [
        ("account_type", "debit_card"),
        ("amount", "五万"),
        ("card_last4", "1234"),
    ]
    for e in entities:
        assert text[e.start : e.end] == e.text


def test_text_without_markup_is_unchanged() -> None:
    assert parse_markup("[注意] 这不是标注") == ("[注意] 这不是标注", ())
    assert parse_markup("") == ("", ())


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('[信用卡]{"entity": "account_type" "value": "credit_card"}', "not valid JSON"),
        ('[信用卡]{"value": "credit_card"}', '"entity"'),
        ('[信用卡]{"entity": 3}', '"entity"'),
        ("[信用卡](account type)", "identifier"),
        ("[信用卡](account_type", "not closed"),
        ("[x]()", "not closed"),
    ],
)
def test_bad_markup_raises_markup_error(line: str, message: str) -> None:
    with pytest.raises(MarkupError, match=message):
        parse_markup(line)


def test_markup_error_is_a_value_error() -> None:
    assert issubclass(MarkupError, ValueError)


def test_roles_and_groups_are_text() -> None:
    text, (ann,) = parse_markup('要[金卡]{"entity": "card", "role": "main", "group": 1}')
    assert text == "要金卡"
    assert (ann.entity, ann.role, ann.group, ann.start, ann.end) == ("card", "main", "1", 1, 3)
    with pytest.raises(MarkupError, match="entity role"):
        parse_markup('[x]{"entity": "card", "role": ["a"]}')
