"""Text folding (bot.folding): each rule once, with property tests of what they promise."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.folding import (
    CONTROLS,
    FORMAT_MARKS,
    WIDTH,
    drop_marks,
    fold_width,
    fold_width_char,
    is_invisible,
    lower_char,
    nfkc,
    to_simplified,
    width_table,
)

# Text as customers type it: CJK, full-width forms, ASCII, marks, controls and whitespace.
TEXT = st.text(
    st.one_of(
        st.characters(min_codepoint=0x00, max_codepoint=0x7F),
        st.characters(min_codepoint=0xFF00, max_codepoint=0xFF65),
        st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF),
        st.sampled_from([chr(c) for c in sorted(FORMAT_MARKS)] + ["\u3000", "\x85", "\xad"]),
        st.characters(codec="utf-8"),  # lone surrogates are made U+FFFD on input
    ),
    max_size=40,
)


def test_full_width_ascii_and_ideographic_space_become_half_width() -> None:
    assert fold_width("ＡＢＣ１２３！？＠\u3000ｚ～") == "ABC123!?@ z~"
    assert fold_width("中文，。") == "中文,。"  # the ideographic full stop is no ASCII form
    assert len(WIDTH) == 0x5E + 1  # ！ … ～ and the ideographic space


def test_width_table_keeps_only_the_asked_characters() -> None:
    digits = width_table("0123456789")
    assert "１２Ｘ".translate(digits) == "12Ｘ"
    assert set(width_table("Xx+- ").values()) == {"X", "x", "+", "-", " "}
    assert width_table() == WIDTH and width_table() is not WIDTH


@given(TEXT)
def test_fold_width_keeps_the_length_and_is_idempotent(text: str) -> None:
    folded = fold_width(text)
    assert len(folded) == len(text)
    assert fold_width(folded) == folded
    assert "".join(fold_width_char(c) for c in text) == folded


@given(TEXT)
def test_fold_width_agrees_with_nfkc_on_the_folded_characters(text: str) -> None:
    for before, after in zip(text, fold_width(text), strict=True):
        if before != after:
            assert unicodedata.normalize("NFKC", before) == after


def test_drop_marks_removes_controls_and_zero_width_but_keeps_line_breaks() -> None:
    assert drop_marks("转\u200b账\ufeff\x00\x07\x85\u202e") == "转账"
    assert drop_marks("a\tb\nc\rd") == "a\tb\nc\rd"
    assert drop_marks("a\xadb") == "a\xadb"  # the soft hyphen is not in the knowledge base's set


@given(TEXT)
def test_drop_marks_only_removes_and_is_idempotent(text: str) -> None:
    dropped = drop_marks(text)
    assert drop_marks(dropped) == dropped
    assert len(dropped) <= len(text)
    assert all(c in "\t\n\r" or ord(c) not in CONTROLS | FORMAT_MARKS for c in dropped)
    rest = iter(text)
    assert all(any(c == r for r in rest) for c in dropped)  # a subsequence of the text


def test_is_invisible_by_category() -> None:
    assert all(is_invisible(c) for c in ["\x00", "\u200b", "\ufeff", "\ue000", "\U000e0001"])
    assert not any(is_invisible(c) for c in ["a", "中", " ", "\u3000", "！"])


@given(st.characters(codec="utf-8"))
def test_lower_char_is_one_character(ch: str) -> None:
    lowered = lower_char(ch)
    assert len(lowered) == 1
    assert lowered in (ch, ch.lower())


def test_lower_char_keeps_characters_whose_lower_case_is_longer() -> None:
    assert lower_char("A") == "a"
    assert lower_char("İ") == "İ"  # "i̇" has two code points


def test_to_simplified() -> None:
    assert to_simplified("轉帳") == "转帐"
    assert to_simplified("hello") == "hello"
    assert to_simplified("") == ""


@given(TEXT)
def test_to_simplified_keeps_the_length(text: str) -> None:
    for per_char in (False, True):
        assert len(to_simplified(text, per_char=per_char)) == len(text)


def test_to_simplified_per_char_when_a_phrase_changes_the_length(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import bot.folding as folding

    class Phrase:
        def convert(self, text: str) -> str:
            return (
                {"乾隆": "干", "乾": "干"}.get(text, text)
                if len(text) <= 1
                else (text.replace("乾隆", "干"))
            )

    monkeypatch.setattr(folding, "_t2s", lambda: Phrase())
    assert to_simplified("乾隆") == "乾隆"  # the whole text would shrink: left as it is
    assert to_simplified("乾隆", per_char=True) == "干隆"


@given(TEXT)
def test_nfkc_is_idempotent(text: str) -> None:
    assert nfkc(nfkc(text)) == nfkc(text)
    assert nfkc("ＢＯＴ①") == "BOT1"
