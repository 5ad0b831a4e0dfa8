"""Query and question text for retrieval: normalised (full-width, Traditional, case), jieba
words (search mode, so long words also yield their parts) and character n-grams."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

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


_NON_WORD = re.compile(r"[\W_]+")  # anything but letters and digits (Unicode-aware)
_WORD = re.compile(r"[^\W_]")
_INVISIBLE = re.compile(
    r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff]"
)
_WIDTH = {0x3000: " ", **{code: chr(code - 0xFEE0) for code in range(0xFF01, 0xFF5F)}}


@lru_cache(maxsize=1)
def _t2s() -> Any:
    try:
        import opencc
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise ImportError("the knowledge base needs OpenCC: pip install opencc") from exc
    return opencc.OpenCC("t2s")


def normalise_text(text: str) -> str:
    """Full-width → half-width, invisible characters dropped, lower case, one space between
    words, Traditional → Simplified (same rules as the NLU normaliser, without offsets)."""
    text = _INVISIBLE.sub("", text.translate(_WIDTH)).lower()
    text = " ".join(text.split())
    if text and not text.isascii():
        converted = _t2s().convert(text)
        if len(converted) == len(text):
            text = converted
    return str(text)


@dataclass(frozen=True)
class Analysed:
    """``norm``: normalised text; ``words``: space-joined tokens; ``clean``: letters and
    digits only (the base of character n-grams)."""

    norm: str
    words: str
    clean: str

    def word_list(self) -> list[str]:
        return self.words.split(" ") if self.words else []


class TextAnalyzer:
    """Shared by build and search so both see exactly the same tokens."""

    def __init__(self, user_words: list[str] | None = None):
        self.user_words = sorted({w.strip().lower() for w in user_words or [] if w.strip()})
        self._tok = _jieba(tuple(self.user_words))

    @classmethod
    def with_dictionary(cls, path: Path | None) -> TextAnalyzer:
        """Also knows the words of a jieba user dictionary (``word [freq]`` per line)."""
        words = []
        if path is not None and path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                parts = line.split()
                if parts and not line.startswith("#"):
                    words.append(parts[0].lower())
        return cls(words)

    def analyse(self, text: str) -> Analysed:
        norm = normalise_text(text)
        words = [w for w in self._tok.cut_for_search(norm, HMM=False) if _WORD.search(w)]
        return Analysed(norm, " ".join(words), _NON_WORD.sub("", norm))


def char_ngrams(clean: str, low: int = 1, high: int = 3) -> Iterator[str]:
    """Character n-grams of ``clean`` (``low``..``high`` characters)."""
    size = len(clean)
    for n in range(low, high + 1):
        for i in range(size - n + 1):
            yield clean[i : i + n]


def split_words(words: str) -> list[str]:
    return words.split(" ") if words else []
