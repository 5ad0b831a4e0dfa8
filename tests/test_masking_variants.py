"""Masking finds phone, ID and card numbers however they are typed (the 6 variants of issue
19 that reached agents unmasked, and property tests over separators, invisible characters,
digit scripts and Chinese numerals), and leaves ordinary text alone."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.folding import CHINESE_DIGITS, DIGIT_INVISIBLES, DIGIT_SEPARATORS, digit_value
from bot.privacy import PrivacyPolicy, id_check_char, luhn_valid, mask_text

# The digit scripts a customer's phone or keyboard may produce: ASCII, full width,
# mathematical bold / double-struck / monospace, Arabic-Indic, Devanagari, Thai.
SCRIPTS = (0x30, 0xFF10, 0x1D7CE, 0x1D7D8, 0x1D7F6, 0x660, 0x966, 0xE50)
CHINESE = {"0": "〇零", "1": "一幺", **{v: k for k, v in CHINESE_DIGITS.items() if v not in "01"}}


def folded_digits(text: str) -> str:
    """Every digit of ``text`` as ASCII, everything else dropped: what a reader could
    recover of a number."""
    return "".join(d for d in map(digit_value, text) if d is not None)


@pytest.mark.parametrize(
    ("typed", "secret"),
    [
        ("我的电话138.1234.5678", "12345678"),
        ("电话138\u200b1234\u200b5678", "12345678"),
        ("身份证110101 19900307 7777", "19900307"),
        ("手机𝟏𝟑𝟖𝟏𝟐𝟑𝟒𝟓𝟔𝟕𝟖", "12345678"),
        ("我的号码是一三八一二三四五六七八", "12345678"),
        ("卡号6222\u30000212\u30003456\u30007890", "02123456"),
        ("幺三八〇〇〇〇零零零零", "8000000"),
        ("电话 138/1234/5678 或 138_1234_5678", "12345678"),
        ("身份证 110101-19900307-775X", "19900307"),
        ("卡号 6222–0212–3456–7890", "02123456"),
        ("١٣٨١٢٣٤٥٦٧٨", "12345678"),
        ("138\u00ad1234\u20605678", "12345678"),
    ],
)
def test_the_variants_that_reached_agents_are_masked(typed: str, secret: str) -> None:
    masked = mask_text(typed)
    assert secret not in folded_digits(masked), masked
    assert mask_text(masked) == masked  # idempotent


def test_masked_form_keeps_the_ends_readable_in_ascii() -> None:
    assert mask_text("一三八一二三四五六七八") == "138****5678"
    assert mask_text("𝟏𝟑𝟖 𝟏𝟐𝟑𝟒 𝟓𝟔𝟕𝟖") == "138 **** 5678"
    assert mask_text("138\u200b1234\u200b5678") == "138****5678"  # invisible marks dropped
    assert mask_text("6222\u30000212\u30003456\u30007890") == "**** **** **** 7890"
    assert mask_text("110101 19900307 7777") == "110101 ******** 7777"


@pytest.mark.parametrize(
    "text",
    [
        "转账5000元",
        "转账50,000.00元给尾号1234的账户",
        "2026-11-24 10:30:00",
        "2026年11月24日下午3点",
        "2026.11.24 2026.12.24",
        "明天10:30到11:45之间",
        "验证码 123456",
        "编号 L20261101001",
        "一二三四五",
        "第一季度利率3.85%，期限36个月",
        "12812345678",
        "订单 20261124 0001",
        "20261124103000",
    ],
)
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert mask_text(text) == text


# --- property tests ----------------------------------------------------------------------

DIGITS = st.text("0123456789", min_size=1, max_size=1)


@st.composite
def phones(draw: st.DrawFn) -> str:
    rest = draw(st.text("0123456789", min_size=9, max_size=9))
    return "1" + draw(st.sampled_from("3456789")) + rest


@st.composite
def id_numbers(draw: st.DrawFn) -> str:
    area = draw(st.sampled_from("12345678")) + draw(st.text("0123456789", min_size=5, max_size=5))
    year = draw(st.integers(1930, 2020))
    month = draw(st.integers(1, 12))
    day = draw(st.integers(1, 28))
    serial = draw(st.text("0123456789", min_size=3, max_size=3))
    first17 = f"{area}{year:04d}{month:02d}{day:02d}{serial}"
    assert len(first17) == 17
    return first17 + id_check_char(first17)


@st.composite
def card_numbers(draw: st.DrawFn) -> str:
    length = draw(st.integers(16, 19))
    body = draw(st.sampled_from(["62", "4", "5", "35", "9"]))
    body += draw(st.text("0123456789", min_size=length - 1 - len(body), max_size=18))[
        : length - 1 - len(body)
    ]
    for check in "0123456789":
        if luhn_valid(body + check):
            return body + check
    raise AssertionError("a Luhn digit always exists")


def _render_digit(draw: st.DrawFn, digit: str) -> str:
    if digit == "X":
        return draw(st.sampled_from("XxＸｘ"))
    if draw(st.integers(0, 5)) == 0:
        return draw(st.sampled_from(CHINESE[digit]))
    return chr(draw(st.sampled_from(SCRIPTS)) + int(digit))


@st.composite
def rendered(draw: st.DrawFn, number: str) -> str:
    """``number`` as a customer might type it: each digit in some script, between two digits
    up to 3 separators and any invisible characters."""
    separators = sorted(DIGIT_SEPARATORS)
    invisibles = sorted(DIGIT_INVISIBLES)
    out = [_render_digit(draw, number[0])]
    for digit in number[1:]:
        gap = draw(st.lists(st.sampled_from(separators), max_size=3))
        for _ in range(draw(st.integers(0, 2))):
            gap.insert(draw(st.integers(0, len(gap))), draw(st.sampled_from(invisibles)))
        out.extend(gap)
        out.append(_render_digit(draw, digit))
    return "".join(out)


CONTEXT = st.text(st.sampled_from("我的手机号码是身份证卡请帮查询谢谢，。！？：abc"), max_size=6)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), kind=st.sampled_from(["phone", "id", "card"]))
def test_any_rendering_of_a_personal_number_is_masked(data: st.DataObject, kind: str) -> None:
    number = data.draw({"phone": phones(), "id": id_numbers(), "card": card_numbers()}[kind])
    before, after = data.draw(CONTEXT), data.draw(CONTEXT)
    typed = before + data.draw(rendered(number)) + after
    masked = mask_text(typed)
    shown = "".join(c if c in "*X" else digit_value(c) or "" for c in masked.upper())
    expected = {
        "phone": [number[:3] + "*" * 4 + number[7:]],
        "id": [number[:6] + "*" * 8 + number[14:]],
        "card": ["*" * (len(number) - 4) + number[-4:]],
    }[kind]
    if kind == "card" and len(number) == 18:  # may read as an ID number: also masked
        expected.append(number[:6] + "*" * 8 + number[14:])
    assert shown in expected, (typed, masked)
    assert masked.startswith(before) and masked.endswith(after)
    assert mask_text(masked) == masked


ORDINARY = st.one_of(
    st.integers(1, 99999).map(lambda n: f"{n}元"),
    st.integers(1, 999999).map(lambda n: f"{n:,}.00元"),
    st.dates().map(lambda d: d.isoformat()),
    st.dates().map(lambda d: f"{d.year}年{d.month}月{d.day}日"),
    st.times().map(lambda t: t.strftime("%H:%M")),
    st.integers(0, 10**9).map(str),
    st.sampled_from(["尾号1234", "第3期", "利率3.85%", "一二三", "编号L2026110100"]),
)
WORDS = st.sampled_from(["我想", "查询", "，", "。", "还款", "在", "之前", "转账", "吗"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(WORDS, ORDINARY), min_size=1, max_size=6))
def test_amounts_dates_times_and_short_numbers_are_left_alone(
    parts: list[tuple[str, str]],
) -> None:
    text = "".join(word + item for word, item in parts)
    assert mask_text(text) == text


@settings(max_examples=200, deadline=None)
@given(number=phones(), prefix=st.sampled_from(["", "rest-", "tel:", "+86"]))
def test_sender_pseudonyms_are_stable_distinct_and_hold_no_number(number: str, prefix: str) -> None:
    policy = PrivacyPolicy(pseudonym_key=b"k")
    sender = prefix + number
    key = policy.sender_key(sender)
    assert key == policy.sender_key(sender)  # same sender, same conversation
    assert policy.sender_key(key) == key  # a stored key maps to itself
    assert folded_digits(key) == folded_digits(prefix) + number[:3] + number[7:]
    other = number[:-1] + str((int(number[-1]) + 1) % 10)
    assert policy.sender_key(prefix + other) != key
    assert PrivacyPolicy(pseudonym_key=b"other").sender_key(sender) != key
    assert len(key) <= 255


def test_plain_sender_ids_are_kept() -> None:
    policy = PrivacyPolicy()
    for sender in ("h1", "customer:C1001", "wx-oAbC123", "3f2a9c1e-7b4d-4e2a-9f00-1a2b3c4d5e6f"):
        assert policy.sender_key(sender) == sender


def test_digit_value_reads_every_script_and_chinese_numerals() -> None:
    assert [digit_value(c) for c in "7７𝟕٧७๗七"] == ["7"] * 7
    assert [digit_value(c) for c in "〇零幺一"] == ["0", "0", "1", "1"]
    assert [digit_value(c) for c in "a十两.X "] == [None] * 6
    assert all(digit_value(c) is None for c in DIGIT_SEPARATORS | DIGIT_INVISIBLES)


def test_the_logging_filter_masks_messages_and_their_arguments() -> None:
    import logging

    from bot.privacy import MaskingFilter

    record = logging.LogRecord("bot", logging.INFO, __file__, 1, "%s: %s", ("13812345678", 3), None)
    assert MaskingFilter().filter(record)
    assert record.getMessage() == "138****5678: 3"
    plain = logging.LogRecord("bot", logging.INFO, __file__, 1, "took %d ms", (12,), None)
    assert MaskingFilter().filter(plain) and plain.args == (12,)  # untouched
