"""Rasa's RegexFeaturizer: one feature per regex and lookup table of the NLU data, 1.0 when
it matches the message, so the classifiers see "has a card number", "names an account
type" even for values never seen in an example.

Options as Rasa: ``case_sensitive``, ``use_regexes``, ``use_lookup_tables``,
``use_word_boundaries`` (a match must not start or end inside an ASCII word: ``card`` does
not match in ``discard``; Chinese characters count as boundaries, so ``尾号1234`` matches
``\\d{4}``, where Rasa's ``\\b`` would not). ``number_additional_patterns`` (for
Rasa's incremental training) is accepted and not needed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from bot.nlu.featurizer import SparseFeatures
from bot.nlu.interfaces import Component, Message, ensure_norm
from bot.training.data import TrainingData

_BEFORE = r"(?<![A-Za-z0-9_])"
_AFTER = r"(?![A-Za-z0-9_])"


def lookup_pattern(elements: list[str] | tuple[str, ...], word_boundaries: bool) -> str:
    parts = []
    for element in sorted({e.strip() for e in elements if e.strip()}, key=len, reverse=True):
        escaped = re.escape(element)
        if word_boundaries and element.isascii():
            escaped = f"{_BEFORE}{escaped}{_AFTER}"
        parts.append(escaped)
    return "|".join(parts)


def training_patterns(
    data: TrainingData, *, use_regexes: bool, use_lookup_tables: bool, word_boundaries: bool
) -> list[tuple[str, str]]:
    """``(name, pattern)`` for every regex and lookup table of ``data``."""
    patterns: list[tuple[str, str]] = []
    if use_regexes:
        for item in data.regexes:
            for pattern in item.patterns:
                if word_boundaries and not pattern.startswith("\\b"):
                    pattern = f"{_BEFORE}(?:{pattern}){_AFTER}"
                patterns.append((item.name, pattern))
    if use_lookup_tables:
        for table in data.lookups:
            pattern = lookup_pattern(table.elements, word_boundaries)
            if pattern:
                patterns.append((table.name, pattern))
    return patterns


class RegexFeaturizer(Component):
    name = "RegexFeaturizer"
    defaults: ClassVar[dict[str, Any]] = {
        "case_sensitive": True,
        "use_lookup_tables": True,
        "use_regexes": True,
        "use_word_boundaries": True,
        "number_additional_patterns": None,
        "alias": None,
    }

    def __init__(self, config: dict[str, Any], patterns: list[tuple[str, str]] | None = None):
        super().__init__(config)
        self.patterns = patterns or []
        self._compile()

    def _compile(self) -> None:
        flags = 0 if self.config["case_sensitive"] else re.IGNORECASE
        self._regexes = [re.compile(p, flags) for _, p in self.patterns]

    def train(self, data: TrainingData, messages: list[Message]) -> None:
        self.patterns = training_patterns(
            data,
            use_regexes=bool(self.config["use_regexes"]),
            use_lookup_tables=bool(self.config["use_lookup_tables"]),
            word_boundaries=bool(self.config["use_word_boundaries"]),
        )
        try:
            self._compile()
        except re.error as exc:
            from bot.errors import TrainingDataError

            raise TrainingDataError(f"RegexFeaturizer: a regex does not compile: {exc}") from None
        for message in messages:
            self.process(message)

    def process(self, message: Message) -> None:
        text = ensure_norm(message)
        hits = [i for i, regex in enumerate(self._regexes) if regex.search(text)]
        message.features.append(
            SparseFeatures(np.asarray(hits, dtype=np.int64), np.ones(len(hits)), len(self._regexes))
        )

    def persist(self, directory: Path) -> None:
        (directory / "patterns.json").write_text(
            json.dumps(self.patterns, ensure_ascii=False), encoding="utf-8"
        )

    @classmethod
    def load(cls, directory: Path, config: dict[str, Any]) -> Self:
        raw = json.loads((directory / "patterns.json").read_text(encoding="utf-8"))
        return cls(config, [(p[0], p[1]) for p in raw])
