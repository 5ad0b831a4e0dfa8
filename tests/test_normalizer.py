"""ChineseTextNormalizer: width, script, case, whitespace, control characters, offsets."""

from __future__ import annotations

import random
import unicodedata

import pytest

from bot.nlu.interfaces import Message
from bot.nlu.normalizer import ChineseTextNormalizer, normalise


def test_full_width_becomes_half_width() -> None:
    norm, _, _ = normalise("ＡＢＣ１２３，！")
    assert norm == "abc123,!"


def test_ideographic_space_is_a_space() -> None:
    assert normalise("查\u3000余额")[0] == "查 余额"


def test_traditional_becomes_simplified() -> None:
    assert normalise("銀行卡")[0] == "银行卡"
    assert normalise("幫我查一下餘額 發財了")[0] == "帮我查一下余额 发财了"


def test_traditional_conversion_can_be_turned_off() -> None:
    assert normalise("銀行卡", traditional_to_simplified=False)[0] == "銀行卡"


def test_lower_case_and_option() -> None:
    assert normalise("APP登不上 Money")[0] == "app登不上 money"
    assert normalise("APP", lowercase=False)[0] == "APP"


def test_whitespace_runs_collapse_and_ends_are_trimmed() -> None:
    assert normalise("  查下 \t\n  余额   ")[0] == "查下 余额"


def test_whitespace_only_is_empty() -> None:
    norm, offsets, truncated = normalise(" \t\u3000\n ")
    assert norm == ""
    assert offsets == [5]
    assert truncated is False


@pytest.mark.parametrize("junk", ["\x00", "\x07", "\x1b", "\u200b", "\u200e", "\ufeff", "\ud800"])
def test_control_format_and_surrogate_characters_are_dropped(junk: str) -> None:
    norm, offsets, _ = normalise(f"查{junk}余额")
    assert norm == "查余额"
    assert offsets[:3] == [0, 2, 3]


def test_offsets_map_back_to_original_text() -> None:
    text = "  ＡＰＰ\u200b登不上　銀行卡  "
    norm, offsets, _ = normalise(text)
    assert norm == "app登不上 银行卡"
    assert len(offsets) == len(norm) + 1
    assert text[offsets[0]] == "Ａ"
    assert text[offsets[norm.index("登")]] == "登"
    assert text[offsets[norm.index("银")]] == "銀"
    assert offsets[-1] == len(text)


def test_max_length_truncates_and_says_so() -> None:
    norm, offsets, truncated = normalise("一二三四五六", max_length=4)
    assert (norm, truncated) == ("一二三四", True)
    assert offsets[-1] == 4
    norm, _, truncated = normalise("一二三四", max_length=4)
    assert (norm, truncated) == ("一二三四", False)
    assert normalise("x" * 5000, max_length=0)[2] is False


def test_component_fills_the_message() -> None:
    component = ChineseTextNormalizer({"max_length": 3})
    message = Message("ＡＢＣＤ")
    component.process(message)
    assert (message.norm, message.truncated) == ("abc", True)
    assert message.offsets == [0, 1, 2, 3]


def _alone(ch: str) -> str:
    """What the normaliser makes of one character on its own."""
    return normalise(f"x{ch}x")[0][1:-1]


ALPHABET = (
    "查余额银行卡銀行卡餘額帳戶ＡＢＣａｂｃ１２３４ABCabc0123 \t\n\u3000\u200b\x00\x07"
    "😀🏦éÉßİ中文مرحباשלום"
)


@pytest.mark.parametrize("seed", range(40))
def test_property_every_normalised_character_comes_from_its_offset(seed: int) -> None:
    rng = random.Random(seed)
    text = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 40)))
    norm, offsets, truncated = normalise(text)
    assert not truncated
    assert len(offsets) == len(norm) + 1
    assert offsets == sorted(offsets)
    assert len(set(offsets[:-1])) == len(offsets) - 1  # one original char per norm char
    for i, ch in enumerate(norm):
        original = text[offsets[i]]
        if ch == " ":
            assert original.isspace()
        else:
            assert _alone(original) == ch, (text, i)
    assert "  " not in norm
    assert norm == norm.strip()
    assert not any(unicodedata.category(c) in ("Cc", "Cf", "Cs") for c in norm)
