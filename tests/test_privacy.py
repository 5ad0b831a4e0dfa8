"""Masking of personal data in free text and entity values."""

from __future__ import annotations

import pytest

from bot.privacy import PERSONAL_ENTITIES, mask_entity_value, mask_text


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("我手机13812345678", "我手机138****5678"),
        ("+8613812345678", "+86138****5678"),
        ("+86 138 1234 5678", "+86 138 **** 5678"),
        ("138-1234-5678", "138-****-5678"),
        ("身份证110101199003077758", "身份证110101********7758"),
        ("身份证11010119900307775x", "身份证110101********775x"),
        ("卡号6222021234567890", "卡号************7890"),
        ("卡号6222021234567890123", "卡号***************0123"),
        ("卡号6222 0212 3456 7890", "卡号**** **** **** 7890"),
        ("6222-0212-3456-7890", "****-****-****-7890"),
        ("电话13812345678，身份证110101199003077758", "电话138****5678，身份证110101********7758"),
    ],
)
def test_personal_numbers_are_masked(text: str, masked: str) -> None:
    assert mask_text(text) == masked


@pytest.mark.parametrize(
    "text",
    [
        "尾号1234的余额",
        "转账5000元",
        "申请编号L20261101001",
        "12812345678",  # not a mobile prefix
        "2026-11-24",
        "",
    ],
)
def test_other_text_is_left_alone(text: str) -> None:
    assert mask_text(text) == text


def test_masking_keeps_length_and_is_idempotent() -> None:
    text = "卡6222021234567890 手机13812345678 证110101199003077758"
    once = mask_text(text)
    assert len(once) == len(text)
    assert mask_text(once) == once
    for secret in ("02123456", "1234", "19900307"):
        assert secret not in once


def test_entity_values_are_masked_by_entity_name() -> None:
    assert {"phone", "id_number"} == PERSONAL_ENTITIES
    assert mask_entity_value("phone", "13812345678") == "138****5678"
    assert mask_entity_value("id_number", "11010119900307775X") == "110101********775X"
    assert mask_entity_value("card_last4", "1234") == "1234"
    assert mask_entity_value("amount", 13812345678) == 13812345678
    assert mask_entity_value("phone", None) is None


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("我的手机１３８１２３４５６７８", "我的手机138****5678"),
        ("＋８６ １３８ １２３４ ５６７８", "+86 138 **** 5678"),
        ("身份证１１０１０１１９９００３０７７７５Ｘ", "身份证110101********775X"),
        ("卡号６２２２０２１２３４５６７８９０１２３", "卡号***************0123"),
        ("１２３元，共１２期", "１２３元，共１２期"),  # nothing personal: left as typed
    ],
)
def test_full_width_digits_are_masked_too(text: str, masked: str) -> None:
    assert mask_text(text) == masked
