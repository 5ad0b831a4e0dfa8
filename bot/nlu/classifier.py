"""Intent classification: logistic regression over the sparse features, with
temperature scaling fitted on out-of-fold scores so confidences are calibrated.

A message none of whose words the training data has (``xqzt vbnm plok``) is not confidently
anything, as Rasa's DIET is not: character n-grams alone would still give the largest intent
a confident score. When no word of the message is a training word (and no word with digits
has the shape of one, ``QR4321`` as ``AB1234``), the confidences are drawn towards the
uniform distribution by how little the words resemble training words (a typo such as
``helo`` resembles ``hello`` and keeps its confidence); see ``word_evidence``. A message with
one known word is scored as before.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, Self

import joblib
import numpy as np

from bot.nlu.featurizer import SparseFeatures
from bot.nlu.interfaces import Component, Message
from bot.training.data import TrainingData


def _softmax(scores: np.ndarray, temperature: float) -> np.ndarray:
    z = scores / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    out: np.ndarray = e / e.sum(axis=-1, keepdims=True)
    return out


def to_matrix(rows: list[list[SparseFeatures]]) -> Any:
    """Stack per-message feature blocks into one CSR matrix for scikit-learn."""
    from scipy.sparse import csr_matrix

    data: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    indptr = [0]
    width = 0
    for blocks in rows:
        offset = 0
        for block in blocks:
            cols.append(block.indices + offset)
            data.append(block.values)
            offset += block.dim
        width = offset
        indptr.append(indptr[-1] + sum(len(b.indices) for b in blocks))
    return csr_matrix(
        (
            np.concatenate(data) if data else np.zeros(0),
            np.concatenate(cols) if cols else np.zeros(0, np.int64),
            np.array(indptr),
        ),
        shape=(len(rows), width),
    )


def single_threaded() -> Any:
    """BLAS on one thread while fitting: these problems are small and sparse, and on a busy
    2-core machine OpenBLAS's threads made the logistic regression 15× slower (5.4 s against
    0.37 s on 300 examples)."""
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    return threadpool_limits(1)


def fit_temperature(scores: np.ndarray, labels: np.ndarray) -> float:
    """The temperature minimising the negative log-likelihood of ``labels``."""
    from scipy.optimize import minimize_scalar

    def nll(t: float) -> float:
        p = _softmax(scores, t)
        return float(-np.log(p[np.arange(len(labels)), labels] + 1e-12).mean())

    result = minimize_scalar(nll, bounds=(0.05, 20.0), method="bounded")
    return float(result.x)


def _shape(word: str) -> str:
    return "".join(
        "d" if c.isdigit() else "A" if c.isupper() else "a" if c.isalpha() else c for c in word
    )


def _bigrams(word: str) -> set[str]:
    padded = f" {word} "
    return {padded[i : i + 2] for i in range(len(padded) - 1)}


class WordVocabulary:
    """The training messages' words, to tell how far a new message is from all of them."""

    def __init__(self, words: set[str] | None = None, shapes: set[str] | None = None) -> None:
        self.words = words or set()
        self.shapes = shapes or set()
        self.chars = {c for w in self.words for c in w}
        self._grams: list[tuple[str, set[str]]] | None = None

    @staticmethod
    def message_words(message: Message) -> list[str]:
        """The message's tokens with a letter or a digit (punctuation says nothing)."""
        texts = [t.text for t in message.tokens] if message.tokens else message.norm.split()
        return [t for t in texts if any(c.isalnum() for c in t)]

    @classmethod
    def learn(cls, messages: list[Message]) -> WordVocabulary:
        words = [w for m in messages for w in cls.message_words(m)]
        return cls({w.lower() for w in words}, {_shape(w) for w in words if _has_digit(w)})

    def known(self, word: str) -> bool:
        return word.lower() in self.words or (_has_digit(word) and _shape(word) in self.shapes)

    def resemblance(self, word: str) -> float:
        """1 for a training word; for another word in [0, 1): a CJK word by the share of its
        characters in training words, a Latin word by the best Dice coefficient of its
        character bigrams with a training word's."""
        low = word.lower()
        if self.known(word):
            return 1.0
        if not low.isascii():
            return sum(c in self.chars for c in low) / len(low)
        if self._grams is None:
            self._grams = [(w, _bigrams(w)) for w in sorted(self.words) if w.isascii()]
        mine = _bigrams(low)
        best = 0.0
        for _, grams in self._grams:
            shared = len(mine & grams)
            if shared:
                best = max(best, 2 * shared / (len(mine) + len(grams)))
        return min(best, 0.99)

    def word_evidence(self, message: Message) -> float:
        """1 when a word of the message is a training word (or it has no words); else the
        square of the mean resemblance of its words to training words (a word or two that
        share a few letters with training words is still weak evidence)."""
        words = self.message_words(message)
        if not self.words or not words or any(self.known(w) for w in words):
            return 1.0
        return float(sum(self.resemblance(w) for w in words) / len(words)) ** 2


def _has_digit(word: str) -> bool:
    return any(c.isdigit() for c in word)


class LogisticRegressionClassifier(Component):
    name = "LogisticRegressionClassifier"
    defaults: ClassVar[dict[str, Any]] = {
        "C": 20.0,
        "class_weight": "balanced",
        "max_iter": 2000,
        "calibration_folds": 5,  # 0 turns temperature scaling off
        "ranking_length": 10,
        "random_seed": 42,
    }

    def __init__(
        self,
        config: dict[str, Any],
        model: Any = None,
        temperature: float = 1.0,
    ) -> None:
        super().__init__(config)
        self.model = model
        self.temperature = temperature
        self.labels: list[str] = []
        self.vocabulary = WordVocabulary()
        self._coef_t = np.zeros((0, 0))
        self._intercept = np.zeros(0)
        if model is not None:
            self._prepare()

    def _prepare(self) -> None:
        """Weights laid out for the per-message dot product (features × classes)."""
        self.labels = [str(c) for c in self.model.classes_]
        coef = np.asarray(self.model.coef_, dtype=np.float64)
        intercept = np.asarray(self.model.intercept_, dtype=np.float64)
        if coef.shape[0] == 1:  # binary: scikit-learn keeps one row for the positive class
            coef = np.vstack([-coef, coef]) / 2
            intercept = np.array([-intercept[0], intercept[0]]) / 2
        self._coef_t = np.ascontiguousarray(coef.T)
        self._intercept = intercept

    def scores(self, features: list[SparseFeatures]) -> np.ndarray:
        """The decision function of the trained model for one message."""
        result = self._intercept.copy()
        offset = 0
        for block in features:
            if len(block.indices):
                result += block.values @ self._coef_t[block.indices + offset]
            offset += block.dim
        return result

    def _new_model(self) -> Any:
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(
            C=float(self.config["C"]),
            class_weight=self.config["class_weight"],
            max_iter=int(self.config["max_iter"]),
            random_state=int(self.config["random_seed"]),
        )

    def train(self, data: TrainingData, messages: list[Message]) -> None:
        self.fit([m.features for m in messages], [e.base_intent for e in data.examples])
        self.learn_words(messages)
        for message in messages:
            self.process(message)

    def learn_words(self, messages: list[Message]) -> None:
        """Remember the training messages' words (see ``WordVocabulary``)."""
        self.vocabulary = WordVocabulary.learn(messages)

    def fit(self, rows: list[list[SparseFeatures]], targets: list[str]) -> None:
        """Learn ``targets`` (one label per row of features), with calibration."""
        with single_threaded():
            self._fit(rows, targets)

    def _fit(self, rows: list[list[SparseFeatures]], targets: list[str]) -> None:
        from sklearn.model_selection import StratifiedKFold

        x = to_matrix(rows)
        y = np.array(targets)
        if len(set(targets)) < 2:
            from bot.errors import TrainingDataError

            raise TrainingDataError(
                f"{self.name}: needs examples of at least two labels, found {sorted(set(targets))}"
            )
        self.model = self._new_model().fit(x, y)
        self._prepare()
        folds = int(self.config["calibration_folds"])
        counts = np.unique(y, return_counts=True)[1]
        if folds >= 2 and len(self.labels) > 1 and counts.min() >= folds:
            scores = np.zeros((len(y), len(self.labels)), dtype=np.float64)
            seed = int(self.config["random_seed"])
            splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
            for train_idx, test_idx in splitter.split(x, y):
                fold = self._new_model().fit(x[train_idx], y[train_idx])
                cols = [self.labels.index(c) for c in fold.classes_]
                fold_scores = np.full((len(test_idx), len(self.labels)), -1e3)
                decision = np.asarray(fold.decision_function(x[test_idx]), dtype=np.float64)
                if decision.ndim == 1:  # binary: one column, the positive class
                    decision = np.column_stack([-decision / 2, decision / 2])
                fold_scores[:, cols] = decision
                scores[test_idx] = fold_scores
            label_idx = np.array([self.labels.index(v) for v in y])
            self.temperature = fit_temperature(scores, label_idx)

    def process(self, message: Message) -> None:
        if self.model is None:
            raise RuntimeError("LogisticRegressionClassifier is not trained")
        if not message.norm.strip() or not message.features:
            message.intent = None
            message.intent_ranking = []
            return
        ranking = self.rank(message.features, self.vocabulary.word_evidence(message))
        message.intent = dict(ranking[0])
        message.intent_ranking = ranking

    def rank(self, features: list[SparseFeatures], evidence: float = 1.0) -> list[dict[str, Any]]:
        """``[{"name", "confidence"}, ...]`` best first, ``ranking_length`` long (0: all).
        ``evidence`` below 1 mixes the probabilities with the uniform distribution (weight
        ``1 - evidence``): the order stays, the confidence drops."""
        probs = _softmax(self.scores(features), self.temperature)
        if evidence < 1.0:
            probs = evidence * probs + (1.0 - evidence) / len(probs)
        length = int(self.config["ranking_length"]) or len(probs)
        order = np.argsort(-probs)[:length].tolist()
        values = probs.tolist()  # Python floats: float(probs[i]) without a NumPy scalar each
        labels = self.labels
        return [{"name": labels[i], "confidence": round(values[i], 6)} for i in order]

    def persist(self, directory: Path) -> None:
        joblib.dump(self.model, directory / "model.joblib")
        (directory / "calibration.json").write_text(
            json.dumps({"temperature": self.temperature}), encoding="utf-8"
        )
        (directory / "words.json").write_text(
            json.dumps(
                {"words": sorted(self.vocabulary.words), "shapes": sorted(self.vocabulary.shapes)},
                ensure_ascii=False,
            ),
            encoding="utf-8",
        )

    @classmethod
    def load(cls, directory: Path, config: dict[str, Any]) -> Self:
        calibration = json.loads((directory / "calibration.json").read_text(encoding="utf-8"))
        loaded = cls(config, joblib.load(directory / "model.joblib"), calibration["temperature"])
        words = directory / "words.json"
        if words.is_file():  # models trained before it have none: scored as before
            payload = json.loads(words.read_text(encoding="utf-8"))
            loaded.vocabulary = WordVocabulary(set(payload["words"]), set(payload["shapes"]))
        return loaded
