"""Rasa's LexicalSyntacticFeaturizer: for each token and its neighbours (a window of
``features`` lists, default previous / current / next as Rasa) the lexical properties
``low``, ``title``, ``upper``, ``digit``, ``BOS``, ``EOS``, ``prefix5``/``prefix2``,
``suffix5``/``suffix3``/``suffix2``; ``pos``/``pos2`` need a trained spaCy model and are
skipped. Rasa keeps one vector per token for DIET; bankbot's classifiers read one row per
message, so the row is the bag of the tokens' feature values (l2 normalised).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Self

import joblib
import numpy as np

from bot.nlu.featurizer import SparseFeatures
from bot.nlu.interfaces import Component, Message, Token, ensure_norm
from bot.training.data import TrainingData

FUNCTIONS: dict[str, Callable[[str], Any]] = {
    "low": str.lower,
    "title": str.istitle,
    "upper": str.isupper,
    "digit": str.isdigit,
    "prefix5": lambda t: t[:5],
    "prefix2": lambda t: t[:2],
    "suffix5": lambda t: t[-5:],
    "suffix3": lambda t: t[-3:],
    "suffix2": lambda t: t[-2:],
    "suffix1": lambda t: t[-1:],
}
POSITIONAL = ("BOS", "EOS")
NEEDS_SPACY = ("pos", "pos2")

DEFAULT_FEATURES = [
    ["low", "title", "upper"],
    ["BOS", "EOS", "low", "upper", "title", "digit"],
    ["low", "title", "upper"],
]


def token_features(tokens: list[Token], window: list[list[str]]) -> list[str]:
    out: list[str] = []
    half = len(window) // 2
    for i in range(len(tokens)):
        for w, names in enumerate(window):
            j = i + w - half
            if not 0 <= j < len(tokens):
                continue
            text = tokens[j].text
            for name in names:
                if name == "BOS":
                    value: Any = j == 0
                elif name == "EOS":
                    value = j == len(tokens) - 1
                elif name in FUNCTIONS:
                    value = FUNCTIONS[name](text)
                else:
                    continue
                if value is False:
                    continue
                out.append(f"{w - half}:{name}:{value}")
    return out


class LexicalSyntacticFeaturizer(Component):
    name = "LexicalSyntacticFeaturizer"
    defaults: ClassVar[dict[str, Any]] = {"features": DEFAULT_FEATURES, "alias": None}

    def __init__(self, config: dict[str, Any], vocabulary: dict[str, int] | None = None) -> None:
        super().__init__(config)
        window = self.config["features"]
        if not isinstance(window, list) or not all(isinstance(w, list) for w in window):
            raise ValueError("option 'features' must be a list of lists of feature names")
        if len(window) % 2 == 0:
            raise ValueError(
                "option 'features' needs an odd number of lists (before, the token, after)"
            )
        names = {n for w in window for n in w}
        unknown = names - set(FUNCTIONS) - set(POSITIONAL) - set(NEEDS_SPACY)
        if unknown:
            raise ValueError(f"unknown feature(s) {sorted(unknown)} in option 'features'")
        if names & set(NEEDS_SPACY):
            self.note(
                "LexicalSyntacticFeaturizer: pos/pos2 need a trained spaCy model with a "
                "tagger; they are skipped"
            )
        self.vocabulary = vocabulary or {}

    def _values(self, message: Message) -> list[str]:
        ensure_norm(message)
        return token_features(message.tokens, self.config["features"])

    def train(self, data: TrainingData, messages: list[Message]) -> None:
        seen: dict[str, int] = {}
        for message in messages:
            for value in self._values(message):
                seen.setdefault(value, len(seen))
        self.vocabulary = seen
        for message in messages:
            self.process(message)

    def process(self, message: Message) -> None:
        vocabulary = self.vocabulary
        counts = Counter(vocabulary[v] for v in self._values(message) if v in vocabulary)
        if not counts:
            message.features.append(
                SparseFeatures(np.zeros(0, np.int64), np.zeros(0), len(vocabulary))
            )
            return
        indices = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
        values = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
        values /= math.sqrt(float(values @ values))
        message.features.append(SparseFeatures(indices, values, len(vocabulary)))

    def persist(self, directory: Path) -> None:
        joblib.dump(self.vocabulary, directory / "vocabulary.joblib")

    @classmethod
    def load(cls, directory: Path, config: dict[str, Any]) -> Self:
        return cls(config, joblib.load(directory / "vocabulary.joblib"))
