"""Query and question text for retrieval: normalised (full-width, Traditional, case), jieba
words (search mode, so long words also yield their parts) and character n-grams."""

from __future__ import annotations

import logging
import threading
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.nlu.normalizer import normalise

_JIEBA_LOCK = threading.Lock()
_JIEBA: dict[tuple[str, ...], Any] = {}


def _jieba(words: tuple[str, ...] = ()) -> Any:
    """One initialised jieba tokenizer per user-word list (shared, read-only once built)."""
    with _JIEBA_LOCK:
        tokenizer = _JIEBA.get(words)
        if tokenizer is None:
            try:
                import jieba
            except ImportError as exc:  # pragma: no cover - a dependency of the package
                raise ImportError("the knowledge base needs jieba: pip install jieba") from exc
            jieba.setLogLevel(logging.WARNING)
            tokenizer = jieba.Tokenizer()
            tokenizer.initialize()
            for word in words:
                tokenizer.add_word(word, 3000)
            _JIEBA[words] = tokenizer
        return tokenizer


def _is_word_char(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "LN"


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
        norm = normalise(text)[0]
        words = [
            w for w in self._tok.cut_for_search(norm, HMM=True) if any(map(_is_word_char, w))
        ]
        clean = "".join(ch for ch in norm if _is_word_char(ch))
        return Analysed(norm, " ".join(w.strip() for w in words), clean)


def char_ngrams(clean: str, low: int = 1, high: int = 3) -> Iterator[str]:
    """Character n-grams of ``clean`` (``low``..``high`` characters)."""
    size = len(clean)
    for n in range(low, high + 1):
        for i in range(size - n + 1):
            yield clean[i : i + n]


def split_words(words: str) -> list[str]:
    return words.split(" ") if words else []
