"""Rasa's CountVectorsFeaturizer: bag of words or character n-grams, as counts.

``analyzer: word`` counts n-grams of the tokenizer's tokens, ``char`` n-grams of the text,
``char_wb`` n-grams inside each token padded with spaces (scikit-learn's analyzers).
Options as Rasa: ``min_ngram``/``max_ngram``, ``min_df``/``max_df``/``max_features``,
``lowercase``, ``OOV_token`` with ``OOV_words`` (at inference a word outside the vocabulary
counts as ``OOV_token``), ``use_shared_vocab`` (Rasa shares the vocabulary with response
texts; here there is only the message text, so it changes nothing).

Training fits scikit-learn's ``CountVectorizer`` on the n-grams; at inference the
vocabulary is applied directly (as ``TfidfVectorsFeaturizer`` does). The row is l2
normalised: the same counts, scaled so a long message does not outweigh a short one.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any, ClassVar, Self

import joblib
import numpy as np

from bot.errors import TrainingDataError
from bot.nlu.featurizer import SparseFeatures, word_analyzer
from bot.nlu.interfaces import Component, Message, ensure_norm
from bot.training.data import TrainingData

ANALYZERS = ("word", "char", "char_wb")


class CountVectorsFeaturizer(Component):
    name = "CountVectorsFeaturizer"
    defaults: ClassVar[dict[str, Any]] = {
        "analyzer": "word",
        "min_ngram": 1,
        "max_ngram": 1,
        "min_df": 1,
        "max_df": 1.0,
        "max_features": None,
        "lowercase": True,
        "strip_accents": None,
        "stop_words": None,
        "OOV_token": None,
        "OOV_words": [],
        "use_shared_vocab": False,
        "alias": None,
    }

    def __init__(self, config: dict[str, Any], vocabulary: dict[str, int] | None = None) -> None:
        super().__init__(config)
        analyzer = self.config["analyzer"]
        if analyzer not in ANALYZERS:
            raise ValueError(
                f"option 'analyzer' is {analyzer!r}; use one of {', '.join(ANALYZERS)}"
            )
        low, high = int(self.config["min_ngram"]), int(self.config["max_ngram"])
        if not 1 <= low <= high:
            raise ValueError(f"min_ngram {low} / max_ngram {high}: need 1 ≤ min_ngram ≤ max_ngram")
        if self.config["use_shared_vocab"]:
            self.note(
                "CountVectorsFeaturizer: use_shared_vocab changes nothing (bankbot featurizes "
                "message text only, not response texts)"
            )
        if self.config["stop_words"] or self.config["strip_accents"]:
            self.note(
                "CountVectorsFeaturizer: stop_words and strip_accents are applied "
                "by scikit-learn's rules to the words"
            )
        self.vocabulary = vocabulary or {}
        self._oov_words = {
            str(w).lower() if self.config["lowercase"] else str(w)
            for w in self.config["OOV_words"] or []
        }

    def _words(self, message: Message) -> list[str]:
        text = ensure_norm(message)
        words = [t.text for t in message.tokens] if message.tokens else text.split()
        if self.config["lowercase"]:
            words = [w.lower() for w in words]
        if self.config["strip_accents"]:
            from sklearn.feature_extraction.text import strip_accents_unicode

            words = [strip_accents_unicode(w) for w in words]
        stop = self.config["stop_words"]
        if stop:
            from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

            stops = ENGLISH_STOP_WORDS if stop == "english" else set(stop)
            words = [w for w in words if w not in stops]
        return words

    def grams(self, message: Message, training: bool = False) -> list[str]:
        low, high = int(self.config["min_ngram"]), int(self.config["max_ngram"])
        words = self._words(message)
        analyzer = self.config["analyzer"]
        if analyzer == "word":
            oov = self.config["OOV_token"]
            if oov:
                if training:
                    words = [oov if w in self._oov_words else w for w in words]
                else:
                    words = [w if w in self.vocabulary else oov for w in words]
            grams = [] if low > 1 else list(words)
            for n in range(max(low, 2), high + 1):
                grams.extend(" ".join(words[i : i + n]) for i in range(len(words) - n + 1))
            return grams
        if analyzer == "char":
            text = " ".join(words)
            return [text[i : i + n] for n in range(low, high + 1) for i in range(len(text) - n + 1)]
        out: list[str] = []
        for word in words:  # char_wb: n-grams inside " word ", as scikit-learn
            padded = f" {word} "
            for n in range(low, high + 1):
                if len(padded) < n:
                    continue
                out.extend(padded[i : i + n] for i in range(len(padded) - n + 1))
        return out

    def vectorize(self, grams: list[str]) -> SparseFeatures:
        vocabulary = self.vocabulary
        counts = Counter(vocabulary[g] for g in grams if g in vocabulary)
        dim = len(vocabulary)
        if not counts:
            return SparseFeatures(np.zeros(0, np.int64), np.zeros(0, np.float64), dim)
        indices = np.fromiter(counts.keys(), dtype=np.int64, count=len(counts))
        values = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
        values /= math.sqrt(float(values @ values))
        return SparseFeatures(indices, values, dim)

    def train(self, data: TrainingData, messages: list[Message]) -> None:
        from sklearn.feature_extraction.text import CountVectorizer

        vectorizer = CountVectorizer(
            analyzer=word_analyzer,
            min_df=self.config["min_df"],
            max_df=self.config["max_df"],
            max_features=self.config["max_features"],
            lowercase=False,
        )
        docs = [self.grams(m, training=True) for m in messages]
        if self.config["OOV_token"]:
            docs.append([self.config["OOV_token"]])  # the OOV token is always in the vocabulary
        try:
            vectorizer.fit(docs)
        except ValueError as exc:  # nothing to count (e.g. every word filtered out)
            raise TrainingDataError(
                f"CountVectorsFeaturizer ({self.config['analyzer']}): no vocabulary from the "
                f"training data ({exc}); lower min_df or check the tokenizer"
            ) from None
        self.vocabulary = {str(k): int(v) for k, v in vectorizer.vocabulary_.items()}
        for message in messages:
            self.process(message)

    def process(self, message: Message) -> None:
        message.features.append(self.vectorize(self.grams(message)))

    def persist(self, directory: Path) -> None:
        joblib.dump(self.vocabulary, directory / "vocabulary.joblib")

    @classmethod
    def load(cls, directory: Path, config: dict[str, Any]) -> Self:
        return cls(config, joblib.load(directory / "vocabulary.joblib"))
