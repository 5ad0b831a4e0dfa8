"""An entry-id classifier (multinomial logistic regression on word + character TF-IDF),
trained on each entry's question variants.

Only for small knowledge bases: its weight matrix is ``features × entries`` and training cost
grows with both (two fits per build: one for calibration, one final; about 8 s each at 1,000
generated entries on 2 cores), so the build trains it up to ``classifier_max_entries`` entries
(default 1,000) and leaves it out above; retrieval then fuses dense and BM25 scores alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bot.kb.features import SparseFeaturizer
from bot.kb.text import Analysed

WEIGHTS_FILE = "classifier.npz"


class EntryClassifier:
    """``predict(doc)`` → probability of every entry (entry order of the build)."""

    def __init__(
        self,
        featurizer: SparseFeaturizer,
        weights: np.ndarray,
        bias: np.ndarray,
        n_entries: int,
        classes: np.ndarray,
    ):
        self.featurizer = featurizer
        self.weights = np.ascontiguousarray(weights, dtype=np.float32)  # (features, classes)
        self.bias = bias.astype(np.float32)
        self.n_entries = n_entries
        self.classes = classes.astype(np.int64)  # class column → entry number

    @classmethod
    def fit(
        cls,
        docs: Sequence[Analysed],
        labels: np.ndarray,
        n_entries: int,
        c: float = 20.0,
        max_features: int | None = 50000,
    ) -> EntryClassifier:
        from sklearn.linear_model import LogisticRegression

        featurizer, x = SparseFeaturizer.fit(docs, min_df=1, max_features=max_features)
        classes = np.unique(labels)
        if classes.size < 2:  # one entry: a constant model
            weights = np.zeros((featurizer.n_features, 1), np.float32)
            return cls(featurizer, weights, np.zeros(1, np.float32), n_entries, classes)
        model = LogisticRegression(C=c, max_iter=300, solver="lbfgs")
        model.fit(x, labels)
        weights = model.coef_.T
        bias = model.intercept_
        if classes.size == 2:  # binary: scikit-learn keeps one column
            weights = np.hstack([-weights / 2, weights / 2])
            bias = np.asarray([-bias[0] / 2, bias[0] / 2])
        return cls(featurizer, weights, np.asarray(bias), n_entries, model.classes_)

    def predict(self, doc: Analysed) -> tuple[np.ndarray, float]:
        """Probabilities over all entries (zeros for entries without training rows) and the
        coverage of ``doc`` by the classifier's vocabulary."""
        cols, values, coverage = self.featurizer.one(doc)
        logits = self.bias + (values @ self.weights[cols] if cols.size else 0.0)
        logits = logits - logits.max()
        exp = np.exp(logits)
        probs = np.zeros(self.n_entries, np.float32)
        probs[self.classes] = exp / exp.sum()
        return probs, coverage

    def save(self, directory: Path) -> None:
        self.featurizer.save(directory, "classifier")
        np.savez(
            directory / WEIGHTS_FILE,
            weights=self.weights, bias=self.bias, classes=self.classes,
            n_entries=np.asarray(self.n_entries),
        )

    @classmethod
    def load(cls, directory: Path) -> EntryClassifier:
        featurizer = SparseFeaturizer.load(directory, "classifier")
        with np.load(directory / WEIGHTS_FILE) as z:
            return cls(featurizer, z["weights"], z["bias"], int(z["n_entries"]), z["classes"])
