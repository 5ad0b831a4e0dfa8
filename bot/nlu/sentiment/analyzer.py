"""Sentiment of a customer message (negative / neutral / positive) for the handoff triggers.

A lexicon plus a classifier, trained at ``bot train`` time on the project's labelled
sentiment data (``sentiment/train.yml``); nothing is downloaded.

- **Lexicon.** :data:`BASE_LEXICON` (general Chinese words) merged with the project's
  ``sentiment/lexicon.yml``: negative and positive words, negators (不/没/没有 … flip the
  next sentiment word: 不满意 → negative, 没让我失望 → not negative), prohibitives (别/不要:
  别骗我 stays negative, 别高兴太早 turns negative), intensifiers (太/非常/真 … weigh the
  next word 1.5×) and neutral phrases that only shadow a sentiment word (差不多, 麻烦你).
  The normalised text is matched greedily, longest entry first; punctuation and spaces end
  a negation's scope. Six features: negative, positive, negated positive, negated
  negative, ``!`` count, ``??``.
- **Classifier.** Character n-gram TF-IDF (binary tf, l2) of the normalised text, digits
  masked, plus the lexicon features, into a multinomial scikit-learn
  ``LogisticRegression`` (class weights balanced).

At run time the component reads ``Message.norm`` (the normaliser's output) and applies the
trained weights directly: per n-gram the idf² and idf × weight per class are precomputed,
so a message costs a few dictionary look-ups and a three-way softmax in pure Python
(scikit-learn's transform + predict_proba take ~1 ms per call). ``test_sentiment`` checks
both paths agree.

Without the data file the component warns and runs on the lexicon alone, with fixed
weights (:data:`LEXICON_ONLY_WEIGHTS`).

The parse result gets ``"sentiment": {"label", "score", "negative"}``: ``score`` is
P(positive) − P(negative) in [-1, 1], ``negative`` is P(negative).
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

from bot.errors import TrainingDataError
from bot.nlu.interfaces import Component, Message
from bot.nlu.normalizer import normalise
from bot.nlu.sentiment.data import (
    LABELS,
    SentimentExample,
    read_lexicon_file,
    read_sentiment_file,
)
from bot.nlu.sentiment.lexicon import BASE_LEXICON, FEATURES, Lexicon, merge_lexicons
from bot.training.data import TrainingData

logger = logging.getLogger(__name__)

MODEL_FILE = "sentiment.json"
_DIGITS = re.compile(r"\d")

# Lexicon-only mode (no training data): weights per feature for (negative, neutral, positive).
LEXICON_ONLY_WEIGHTS: dict[str, tuple[float, float, float]] = {
    "negative": (2.0, 0.0, -1.0),
    "positive": (-1.0, 0.0, 2.0),
    "negated_positive": (2.0, 0.0, -1.0),
    "negated_negative": (-0.5, 0.0, 0.5),
    "exclaim": (0.5, 0.0, 0.0),
    "question": (0.7, 0.0, 0.0),
}
LEXICON_ONLY_INTERCEPT = (-1.2, 0.0, -1.2)

# Options the per-message scoring depends on: saved with the weights.
_SCORING_OPTIONS = ("min_ngram", "max_ngram", "negation_window", "max_chars")

_NEUTRAL_RESULT: dict[str, Any] = {"label": "neutral", "score": 0.0, "negative": 0.0}


def char_grams(text: str, low: int, high: int) -> list[str]:
    """Character n-grams of a normalised text, digits masked (as the intent featurizer)."""
    text = _DIGITS.sub("0", text)
    return [text[i : i + n] for n in range(low, high + 1) for i in range(len(text) - n + 1)]


def _identity(grams: list[str]) -> list[str]:
    return grams


class SentimentAnalyzer(Component):
    name = "SentimentAnalyzer"
    defaults: ClassVar[dict[str, Any]] = {
        "data_path": "sentiment/train.yml",  # labelled examples (relative to the project)
        "lexicon_path": "sentiment/lexicon.yml",  # words added to BASE_LEXICON (optional)
        "min_ngram": 1,
        "max_ngram": 2,
        "min_df": 1,  # n-grams in fewer training examples are left out
        "C": 30.0,
        "class_weight": "balanced",
        "max_iter": 2000,
        "lexicon_weight": 0.25,  # scale of the lexicon features against the TF-IDF row
        "negation_window": 2,  # characters allowed between a negator and its word
        "max_chars": 2000,  # only the start of a longer text is read
        "random_seed": 42,
    }

    def __init__(self, config: dict[str, Any], state: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        self.state: dict[str, Any] | None = None
        self.vectorizer: Any = None  # scikit-learn objects: only right after train()
        self.model: Any = None
        self.lexicon = Lexicon({}, int(self.config["negation_window"]))
        self._grams: dict[str, tuple[float, float, float, float]] = {}
        self._lexicon_weights: list[tuple[float, float, float]] = []
        self._intercept = (0.0, 0.0, 0.0)
        self._ngrams = range(int(self.config["min_ngram"]), int(self.config["max_ngram"]) + 1)
        if state is not None:
            self._prepare(state)

    def _prepare(self, state: dict[str, Any]) -> None:
        """Lay the weights out for the per-message scoring (see the module docstring)."""
        self.state = state
        self.lexicon = Lexicon(state["lexicon"], int(self.config["negation_window"]))
        coef: list[list[float]] = state["coef"]  # classes × (vocabulary + lexicon features)
        idf: list[float] = state["idf"]
        self._grams = {
            gram: (w * w, w * coef[0][j], w * coef[1][j], w * coef[2][j])
            for j, (gram, w) in enumerate(zip(state["vocabulary"], idf, strict=True))
        }
        width = len(idf)
        self._lexicon_weights = [
            (coef[0][width + f], coef[1][width + f], coef[2][width + f])
            for f in range(len(FEATURES))
        ]
        b = state["intercept"]
        self._intercept = (float(b[0]), float(b[1]), float(b[2]))

    # -- training -------------------------------------------------------------------------

    def _path(self, key: str) -> Path | None:
        value = self.config.get(key)
        if not value:
            return None
        path = Path(value)
        return path if path.is_absolute() else Path(self.config.get("project_root", ".")) / path

    def _lexicon_words(self) -> dict[str, list[str]]:
        path = self._path("lexicon_path")
        extra = read_lexicon_file(path) if path is not None and path.is_file() else {}
        return merge_lexicons(BASE_LEXICON, extra)

    def train(self, data: TrainingData, messages: list[Message]) -> None:
        words = self._lexicon_words()
        path = self._path("data_path")
        if path is not None and path.is_file():
            self.fit(read_sentiment_file(path), words, source=str(self.config["data_path"]))
        else:
            logger.warning(
                "SentimentAnalyzer: no sentiment data (data_path %s); using the lexicon alone",
                path,
            )
            self._prepare(self.lexicon_only_state(words))
        for message in messages:
            self.process(message)

    @staticmethod
    def lexicon_only_state(words: dict[str, list[str]]) -> dict[str, Any]:
        """Model state scoring the lexicon features with :data:`LEXICON_ONLY_WEIGHTS`."""
        coef = [[LEXICON_ONLY_WEIGHTS[f][c] for f in FEATURES] for c in range(len(LABELS))]
        return {
            "labels": list(LABELS),
            "vocabulary": [],
            "idf": [],
            "coef": coef,
            "intercept": list(LEXICON_ONLY_INTERCEPT),
            "lexicon": words,
            "facts": {"mode": "lexicon-only"},
        }

    def fit(
        self,
        examples: Sequence[SentimentExample],
        words: dict[str, list[str]] | None = None,
        source: str | None = None,
    ) -> None:
        """Train on labelled examples (texts are normalised here, as the pipeline does)."""
        import numpy as np
        from scipy.sparse import csr_matrix, hstack
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

        words = words if words is not None else merge_lexicons(BASE_LEXICON)
        self.lexicon = Lexicon(words, int(self.config["negation_window"]))
        texts, labels = self._dataset(examples, source)
        low, high = int(self.config["min_ngram"]), int(self.config["max_ngram"])
        self.vectorizer = TfidfVectorizer(
            analyzer=_identity,
            binary=True,
            lowercase=False,
            dtype=np.float64,
            min_df=int(self.config["min_df"]),
        )
        tfidf = self.vectorizer.fit_transform([char_grams(t, low, high) for t in texts])
        scale = float(self.config["lexicon_weight"])
        lexical = csr_matrix(np.array([self.lexicon.features(t) for t in texts]) * scale)
        self.model = LogisticRegression(
            C=float(self.config["C"]),
            class_weight=self.config["class_weight"],
            max_iter=int(self.config["max_iter"]),
            random_state=int(self.config["random_seed"]),
        )
        # One BLAS thread: on this small problem more threads only contend (20× slower on
        # a busy 2-core machine).
        with threadpool_limits(1):
            self.model.fit(hstack([tfidf, lexical]).tocsr(), labels)
        if list(self.model.classes_) != list(LABELS):  # pragma: no cover - checked above
            raise TrainingDataError(f"SentimentAnalyzer: labels {self.model.classes_}")
        vocabulary = sorted(self.vectorizer.vocabulary_, key=self.vectorizer.vocabulary_.get)
        coef = np.array(self.model.coef_, dtype=np.float64)
        coef[:, len(vocabulary) :] *= scale  # saved for unscaled lexicon features
        counts = {label: labels.count(label) for label in LABELS}
        self._prepare(
            {
                "labels": list(LABELS),
                "vocabulary": vocabulary,
                "idf": [float(v) for v in self.vectorizer.idf_],
                "coef": coef.tolist(),
                "intercept": np.asarray(self.model.intercept_, dtype=np.float64).tolist(),
                "lexicon": words,
                "facts": {"mode": "trained", "source": source, "examples": counts},
            }
        )

    @staticmethod
    def _dataset(
        examples: Sequence[SentimentExample], source: str | None
    ) -> tuple[list[str], list[str]]:
        where = source or "the sentiment data"
        seen: dict[str, SentimentExample] = {}
        for example in examples:
            norm = normalise(example.text)[0].strip()
            if not norm:
                raise TrainingDataError(f"{where}:{example.line}: empty after normalisation")
            other = seen.get(norm)
            if other is not None and other.label != example.label:
                raise TrainingDataError(
                    f"{where}:{example.line}: {example.text!r} is labelled {example.label} "
                    f"here and {other.label} on line {other.line}"
                )
            seen.setdefault(norm, example)
        missing = [label for label in LABELS if label not in {e.label for e in seen.values()}]
        if missing:
            raise TrainingDataError(f"{where}: no examples labelled {', '.join(missing)}")
        return list(seen), [e.label for e in seen.values()]

    # -- inference ------------------------------------------------------------------------

    def probabilities(self, text: str) -> tuple[float, float, float]:
        """P(negative), P(neutral), P(positive) of a normalised text."""
        masked = _DIGITS.sub("0", text) if _DIGITS.search(text) else text
        size = len(masked)
        # dict, not set: a fixed summation order gives the same floats in every process
        present = dict.fromkeys(
            [masked[i : i + n] for n in self._ngrams for i in range(size - n + 1)]
        )
        s2 = a = b = c = 0.0
        for entry in map(self._grams.get, present):
            if entry is not None:
                s2 += entry[0]
                a += entry[1]
                b += entry[2]
                c += entry[3]
        z0, z1, z2 = self._intercept
        if s2 > 0:
            norm = math.sqrt(s2)
            z0, z1, z2 = z0 + a / norm, z1 + b / norm, z2 + c / norm
        for value, (w0, w1, w2) in zip(
            self.lexicon.features(text), self._lexicon_weights, strict=True
        ):
            if value:
                z0, z1, z2 = z0 + value * w0, z1 + value * w1, z2 + value * w2
        top = max(z0, z1, z2)
        e0, e1, e2 = math.exp(z0 - top), math.exp(z1 - top), math.exp(z2 - top)
        total = e0 + e1 + e2
        return e0 / total, e1 / total, e2 / total

    def analyse_norm(self, norm: str) -> dict[str, Any]:
        """The ``sentiment`` entry of the parse result for a normalised text."""
        if self.state is None:
            raise RuntimeError("SentimentAnalyzer is not trained")
        norm = norm[: int(self.config["max_chars"])]
        if not norm.strip():
            return dict(_NEUTRAL_RESULT)
        p = self.probabilities(norm)
        best = 0 if p[0] >= p[1] and p[0] >= p[2] else (1 if p[1] >= p[2] else 2)
        return {
            "label": LABELS[best],
            "score": round(p[2] - p[0], 4),
            "negative": round(p[0], 4),
        }

    def analyse(self, text: str) -> dict[str, Any]:
        """The ``sentiment`` entry for raw text (normalised with the default options)."""
        return self.analyse_norm(normalise(text[: int(self.config["max_chars"])])[0])

    def sentiment(self, message: Message) -> dict[str, Any]:
        """The ``sentiment`` entry for a message the normaliser has processed."""
        if message.norm or not message.text:
            return self.analyse_norm(message.norm)
        return self.analyse(message.text)  # a pipeline without ChineseTextNormalizer

    def process(self, message: Message) -> None:
        result = self.sentiment(message)
        # Extra parse-result keys live in Message.extras (bot/nlu/interfaces.py).
        extras = getattr(message, "extras", None)
        if isinstance(extras, dict):
            extras["sentiment"] = result

    # -- persistence ----------------------------------------------------------------------

    def persist(self, directory: Path) -> None:
        if self.state is None:
            raise RuntimeError("SentimentAnalyzer is not trained")
        settings = {key: self.config[key] for key in _SCORING_OPTIONS}
        (directory / MODEL_FILE).write_text(
            json.dumps({**self.state, "settings": settings}, ensure_ascii=False),
            encoding="utf-8",
        )

    @classmethod
    def load(cls, directory: Path, config: dict[str, Any]) -> Self:
        state = json.loads((directory / MODEL_FILE).read_text(encoding="utf-8"))
        return cls({**state.get("settings", {}), **config}, state)
