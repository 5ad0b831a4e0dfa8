"""Jieba word segmentation with a project dictionary; spaces are never tokens."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any, ClassVar, Self

from bot.nlu.interfaces import Component, Message, Token, ensure_norm
from bot.nlu.tokenization import TOKENIZER_DEFAULTS, apply_token_pattern, note_tokenizer_options
from bot.training.data import TrainingData

USERDICT = "userdict.txt"


_BASE_LOCK = threading.Lock()
_BASE: tuple[dict[str, int], int] | None = None


def _base_dictionary() -> tuple[dict[str, int], int]:
    """jieba's default prefix dictionary and total, loaded once per process (about 70 MB and
    0.6 s each time it is loaded)."""
    global _BASE
    with _BASE_LOCK:
        if _BASE is None:
            try:
                import jieba
            except ImportError as exc:  # pragma: no cover - a dependency of the package
                raise ImportError("jieba segmentation needs jieba: pip install jieba") from exc
            jieba.setLogLevel(logging.WARNING)
            loaded = jieba.Tokenizer()
            loaded.initialize()
            _BASE = (loaded.FREQ, loaded.total)
        return _BASE


def new_jieba() -> Any:
    """A jieba tokenizer of its own (``add_word`` changes only it) on the default dictionary.

    Its prefix dictionary is a copy of the one loaded once per process: the copy shares the
    words and counts and costs a few MB and ~20 ms instead of a second load."""
    import jieba

    freq, total = _base_dictionary()
    tokenizer = jieba.Tokenizer()
    tokenizer.FREQ = dict(freq)
    tokenizer.total = total
    tokenizer.initialized = True
    return tokenizer


def dictionary_words(data: TrainingData, user_dictionary: Path | None) -> list[tuple[str, int]]:
    """Words for jieba: lookup tables, synonyms, annotated entity text and a user file."""
    words: dict[str, int] = {}

    def add(word: str, freq: int = 2000) -> None:
        word = word.strip().lower()
        if word and " " not in word and not word.isascii():
            words[word] = max(words.get(word, 0), freq)

    for table in data.lookups:
        for element in table.elements:
            add(element)
    for syn in data.synonyms:
        for surface in syn.examples:
            add(surface)
    for example in data.examples:
        for ann in example.entities:
            add(ann.text)
    if user_dictionary and user_dictionary.is_file():
        for line in user_dictionary.read_text(encoding="utf-8").splitlines():
            parts = line.split()
            if parts and not line.startswith("#"):
                freq = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 2000
                add(parts[0], freq)
    return sorted(words.items())


class JiebaTokenizer(Component):
    name = "JiebaTokenizer"
    defaults: ClassVar[dict[str, Any]] = {
        "dictionary_path": "nlu_data/userdict.txt",  # a file, or Rasa's folder of files
        "hmm": True,
        **TOKENIZER_DEFAULTS,
    }

    def __init__(self, config: dict[str, Any], words: list[tuple[str, int]] | None = None):
        super().__init__(config)
        note_tokenizer_options(self)
        self._jieba = new_jieba()
        self.words = words or []
        for word, freq in self.words:
            self._jieba.add_word(word, freq)

    def train(self, data: TrainingData, messages: list[Message]) -> None:
        path = self.config.get("dictionary_path")
        root = Path(self.config.get("project_root", "."))
        user_dictionary = (root / path) if path else None
        if user_dictionary is not None and user_dictionary.is_dir():
            # Rasa's dictionary_path is a folder: every file in it is a jieba dictionary.
            files = sorted(p for p in user_dictionary.iterdir() if p.is_file())
        else:
            files = [user_dictionary] if user_dictionary is not None else []
        merged: dict[str, int] = dict(dictionary_words(data, None))
        for file in files:
            for word, freq in dictionary_words(TrainingData(), file):
                merged[word] = max(merged.get(word, 0), freq)
        self.words = sorted(merged.items())
        for word, freq in self.words:
            self._jieba.add_word(word, freq)
        for message in messages:
            self.process(message)

    def tokenize(self, text: str) -> list[Token]:
        hmm = bool(self.config["hmm"])
        tokens = [
            Token(word, start, end)
            for word, start, end in self._jieba.tokenize(text, HMM=hmm)
            if word.strip()
        ]
        pattern = self.config.get("token_pattern")
        return apply_token_pattern(tokens, pattern) if pattern else tokens

    def process(self, message: Message) -> None:
        message.tokens = self.tokenize(ensure_norm(message))

    def persist(self, directory: Path) -> None:
        lines = [f"{word} {freq}" for word, freq in self.words]
        (directory / USERDICT).write_text("\n".join(lines) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, directory: Path, config: dict[str, Any]) -> Self:
        words = []
        for line in (directory / USERDICT).read_text(encoding="utf-8").splitlines():
            parts = line.rsplit(" ", 1)
            if len(parts) == 2:
                words.append((parts[0], int(parts[1])))
        return cls(config, words)
