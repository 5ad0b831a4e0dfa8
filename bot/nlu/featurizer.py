"""Sparse TF-IDF features from jieba words or from characters (scikit-learn).

Declare it twice in config.yml, once with ``analyzer: word`` and once with
``analyzer: char``; each appends one :class:`SparseFeatures` to ``Message.features``.
Digits are masked (``尾号1234`` and ``尾号5678`` look alike) so numbers do not become
vocabulary.

Training fits scikit-learn's ``TfidfVectorizer``. At inference the same weights are
applied directly from its vocabulary and idf table: scikit-learn's per-call overhead
(~250 µs) would be most of a parse otherwise. ``test_featurizer`` checks both agree.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

import joblib
import numpy as np

from bot.nlu.interfaces import Component, Message
from bot.training.data import TrainingData

_DIGITS = re.compile(r"\d")
_ID = re.compile(r"^[a-z]?\d+$")


@dataclass(frozen=True)
class SparseFeatures:
    """One featurizer's output: a sparse row of width ``dim``."""

    indices: np.ndarray
    values: np.ndarray
    dim: int


def _mask_token(token: str) -> str:
    if _ID.match(token):
        return f"<{token[0] if token[0].isalpha() else ''}num{min(len(token), 12)}>"
    return _DIGITS.sub("0", token)


def word_analyzer(tokens: list[str]) -> list[str]:
    """Identity analyzer: features are computed from pre-tokenised, masked words."""
    return tokens


class TfidfVectorsFeaturizer(Component):
    name = "TfidfVectorsFeaturizer"
    defaults: ClassVar[dict[str, Any]] = {
        "analyzer": "word",  # word | char
        "min_ngram": 1,
        "max_ngram": 2,
        "min_df": 1,
        "max_features": None,
        "sublinear_tf": True,
    }

    def __init__(self, config: dict[str, Any], vectorizer: Any = None) -> None:
        super().__init__(config)
        if self.config["analyzer"] not in ("word", "char"):
            raise ValueError("TfidfVectorsFeaturizer: 'analyzer' must be 'word' or 'char'")
        self.vectorizer = vectorizer
        self._vocabulary: dict[str, int] = {}
        self._idf = np.zeros(0, dtype=np.float64)
        if vectorizer is not None:
            self._prepare()

    def _prepare(self) -> None:
        self._vocabulary = dict(self.vectorizer.vocabulary_)
        self._idf = np.asarray(self.vectorizer.idf_, dtype=np.float64)

    def grams(self, message: Message) -> list[str]:
        """The n-grams this featurizer counts for ``message``."""
        low, high = int(self.config["min_ngram"]), int(self.config["max_ngram"])
        if self.config["analyzer"] == "char":
            text = _DIGITS.sub("0", message.norm)
            return [text[i : i + n] for n in range(low, high + 1) for i in range(len(text) - n + 1)]
        words = [_mask_token(t.text) for t in message.tokens]
        grams = [] if low > 1 else list(words)
        for n in range(max(low, 2), high + 1):
            grams.extend(" ".join(words[i : i + n]) for i in range(len(words) - n + 1))
        return grams

    def vectorize(self, grams: list[str]) -> SparseFeatures:
        vocabulary = self._vocabulary
        counts = Counter(vocabulary[g] for g in grams if g in vocabulary)
        dim = len(self._idf)
        if not counts:
            return SparseFeatures(np.zeros(0, np.int64), np.zeros(0, np.float64), dim)
        indices = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
        if self.config["sublinear_tf"]:
            tf = [1.0 + math.log(c) for c in counts.values()]
        else:
            tf = [float(c) for c in counts.values()]
        values = np.asarray(tf) * self._idf[indices]
        norm = math.sqrt(float(values @ values))
        if norm > 0:
            values /= norm
        return SparseFeatures(indices, values, dim)

    def train(self, data: TrainingData, messages: list[Message]) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.vectorizer = TfidfVectorizer(
            analyzer=word_analyzer,  # n-grams are built by grams(), identically at inference
            min_df=self.config["min_df"],
            max_features=self.config["max_features"],
            sublinear_tf=self.config["sublinear_tf"],
            lowercase=False,
            dtype=np.float64,
        )
        self.vectorizer.fit([self.grams(m) for m in messages])
        self._prepare()
        for message in messages:
            self.process(message)

    def process(self, message: Message) -> None:
        if self.vectorizer is None:
            raise RuntimeError("TfidfVectorsFeaturizer is not trained")
        message.features.append(self.vectorize(self.grams(message)))

    def persist(self, directory: Path) -> None:
        joblib.dump(self.vectorizer, directory / "vectorizer.joblib")

    @classmethod
    def load(cls, directory: Path, config: dict[str, Any]) -> Self:
        return cls(config, joblib.load(directory / "vectorizer.joblib"))
