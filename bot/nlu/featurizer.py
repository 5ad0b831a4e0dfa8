"""Sparse TF-IDF features from jieba words or from characters (scikit-learn).

Declare it twice in config.yml, once with ``analyzer: word`` and once with
``analyzer: char``; each appends one sparse row to ``Message.features``. Digits are
masked (``尾号1234`` and ``尾号5678`` look alike) so numbers do not become vocabulary.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Self

import joblib
import numpy as np

from bot.nlu.interfaces import Component, Message
from bot.training.data import TrainingData

_DIGITS = re.compile(r"\d")
_ID = re.compile(r"^[a-z]?\d+$")


def _mask_token(token: str) -> str:
    if _ID.match(token):
        return f"<{token[0] if token[0].isalpha() else ''}num{min(len(token), 12)}>"
    return _DIGITS.sub("0", token)


def word_analyzer(tokens: list[str]) -> list[str]:
    """Identity analyzer: features are computed from pre-tokenised, masked words."""
    return tokens


class TfidfVectorsFeaturizer(Component):
    name = "TfidfVectorsFeaturizer"
    defaults: dict[str, Any] = {
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

    def _input(self, message: Message) -> Any:
        if self.config["analyzer"] == "char":
            return _DIGITS.sub("0", message.norm)
        words = [_mask_token(t.text) for t in message.tokens]
        low, high = int(self.config["min_ngram"]), int(self.config["max_ngram"])
        grams = [] if low > 1 else list(words)
        for n in range(max(low, 2), high + 1):
            grams.extend(" ".join(words[i : i + n]) for i in range(len(words) - n + 1))
        return grams

    def train(self, data: TrainingData, messages: list[Message]) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer

        if self.config["analyzer"] == "char":
            self.vectorizer = TfidfVectorizer(
                analyzer="char",
                ngram_range=(int(self.config["min_ngram"]), int(self.config["max_ngram"])),
                min_df=self.config["min_df"],
                max_features=self.config["max_features"],
                sublinear_tf=self.config["sublinear_tf"],
                lowercase=False,
                dtype=np.float32,
            )
        else:
            self.vectorizer = TfidfVectorizer(
                analyzer=word_analyzer,
                min_df=self.config["min_df"],
                max_features=self.config["max_features"],
                sublinear_tf=self.config["sublinear_tf"],
                lowercase=False,
                dtype=np.float32,
            )
        matrix = self.vectorizer.fit_transform([self._input(m) for m in messages])
        for i, message in enumerate(messages):
            message.features.append(matrix[i])

    def process(self, message: Message) -> None:
        if self.vectorizer is None:
            raise RuntimeError("TfidfVectorsFeaturizer is not trained")
        message.features.append(self.vectorizer.transform([self._input(message)]))

    def persist(self, directory: Path) -> None:
        joblib.dump(self.vectorizer, directory / "vectorizer.joblib")

    @classmethod
    def load(cls, directory: Path, config: dict[str, Any]) -> Self:
        return cls(config, joblib.load(directory / "vectorizer.joblib"))
