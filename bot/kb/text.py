"""Query and question text for retrieval: normalised (full-width, Traditional, case, Chinese
numerals), jieba words (search mode, so long words also yield their parts) expanded with
bank-domain synonyms (:mod:`bot.kb.synonyms`), and character n-grams."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from bot.folding import drop_marks, fold_width, to_simplified
from bot.nlu.tokenizer import new_jieba

_JIEBA_LOCK = threading.Lock()
_JIEBA: dict[tuple[str, ...], Any] = {}


def _jieba(words: tuple[str, ...] = ()) -> Any:
    """One initialised jieba tokenizer per user-word list (shared, read-only once built)."""
    with _JIEBA_LOCK:
        tokenizer = _JIEBA.get(words)
        if tokenizer is None:
            tokenizer = new_jieba()
            for word in words:
                tokenizer.add_word(word, 3000)
            _JIEBA[words] = tokenizer
        return tokenizer


LEXICAL_CHARS = (1, 2)  # character n-grams BM25 indexes besides the words (see lexical_terms)
_NON_WORD = re.compile(r"[\W_]+")  # anything but letters and digits (Unicode-aware)
_WORD = re.compile(r"[^\W_]")

# A run of Chinese numerals that is a number: with a magnitude (十百千万亿), or one digit
# before a unit. 一 in words such as 一般 or 一心一意 and ranges such as 七八个 stay.
_NUMERAL = "零〇一二两三四五六七八九十百千万亿"
_UNITS = "天日号月年周个次笔张元块角分秒岁位台点倍成万千百小"
_NUMBER_RUN = re.compile(
    rf"(?<![{_NUMERAL}])([{_NUMERAL}]*[十百千万亿][{_NUMERAL}]*(?!分(?!钟))"
    rf"|[二两三四五六七八九](?=[{_UNITS}])|一(?=[天日号月年周个次笔张元块岁位台]))"
    rf"(?![{_NUMERAL}])"
)


@lru_cache(maxsize=1)
def _cn2an() -> Any:
    import cn2an  # slow to import (≈ 1 s): done once, when an analyzer is made

    return cn2an


_ANY_NUMERAL = re.compile(f"[{_NUMERAL}]")


def _arabic(match: re.Match[str]) -> str:
    run = match.group(0)
    if run[0] in "十百千万亿" and run[0] != "十":  # 万一, 千万别: not a number
        return run
    try:
        value = _cn2an().cn2an(run, "smart")
    except (ValueError, KeyError, IndexError):
        return run
    return str(int(value)) if float(value).is_integer() else str(value)


def fold_numbers(text: str) -> str:
    """Chinese numerals → Arabic digits (``五万`` → ``50000``, ``三天`` → ``3天``), so a
    question and a query agree however the amount is written."""
    if text.isascii() or not _ANY_NUMERAL.search(text):
        return text
    return _NUMBER_RUN.sub(_arabic, text)


def normalise_text(text: str) -> str:
    """Full-width → half-width, invisible characters dropped, lower case, one space between
    words, Traditional → Simplified (same rules as the NLU normaliser, without offsets), then
    Chinese numerals → digits."""
    text = drop_marks(fold_width(text)).lower()
    text = " ".join(text.split())
    if text and not text.isascii():
        text = fold_numbers(to_simplified(text))
    return text


@dataclass(frozen=True)
class Analysed:
    """``norm``: normalised text; ``words``: space-joined tokens; ``clean``: letters and
    digits only (the base of character n-grams)."""

    norm: str
    words: str
    clean: str

    def word_list(self) -> list[str]:
        return self.words.split(" ") if self.words else []

    def lexical_terms(self) -> list[str]:
        """What BM25 over questions indexes: the words, then character 1-2-grams (exact
        overlap of characters counts too). Bigrams alone were tried: 5 % faster searches at
        100,000 entries, but top-1 on the public zero-shot sets fell by 1-1.5 points."""
        return [*self.word_list(), *char_ngrams(self.clean, *LEXICAL_CHARS)]


class TextAnalyzer:
    """Shared by build and search so both see exactly the same tokens.

    ``synonyms`` maps a word to its group's canonical word (:mod:`bot.kb.synonyms`): every
    word of a group is also a jieba word, and a text holding one gets the canonical word
    appended once (query and document expansion alike, so 贷记卡 meets 信用卡)."""

    def __init__(self, user_words: list[str] | None = None, synonyms: dict[str, str] | None = None):
        self.synonyms = {k: v for k, v in (synonyms or {}).items() if k != v}
        words = {w.strip().lower() for w in user_words or [] if w.strip()}
        self.user_words = sorted(words)
        phrases = {w for w in {*self.synonyms, *self.synonyms.values()} if " " not in w}
        self._tok = _jieba(tuple(sorted(words | phrases)))
        _cn2an()

    @classmethod
    def with_dictionary(
        cls, path: Path | None, synonyms: dict[str, str] | None = None
    ) -> TextAnalyzer:
        """Also knows the words of a jieba user dictionary (``word [freq]`` per line)."""
        words = []
        if path is not None and path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                parts = line.split()
                if parts and not line.startswith("#"):
                    words.append(parts[0].lower())
        return cls(words, synonyms)

    def key(self) -> str:
        """What the tokens depend on besides the text (for caches of analysed text)."""
        import hashlib

        digest = hashlib.sha256("\n".join(self.user_words).encode())
        digest.update(repr(sorted(self.synonyms.items())).encode())
        return digest.hexdigest()[:32]

    def plain_words(self, norm: str) -> list[str]:
        """The words of normalised text without overlaps (jieba's precise mode)."""
        return [w for w in self._tok.cut(norm, HMM=False) if _WORD.search(w)]

    def analyse(self, text: str) -> Analysed:
        norm = normalise_text(text)
        words = [w for w in self._tok.cut_for_search(norm, HMM=False) if _WORD.search(w)]
        if self.synonyms:
            present = set(words)
            for word in list(words):
                canonical = self.synonyms.get(word)
                if canonical is not None and canonical not in present:
                    present.add(canonical)
                    words.append(canonical)
        return Analysed(norm, " ".join(words), _NON_WORD.sub("", norm))


def char_ngrams(clean: str, low: int = 1, high: int = 3) -> Iterator[str]:
    """Character n-grams of ``clean`` (``low``..``high`` characters)."""
    size = len(clean)
    for n in range(low, high + 1):
        for i in range(size - n + 1):
            yield clean[i : i + n]


def split_words(words: str) -> list[str]:
    return words.split(" ") if words else []
