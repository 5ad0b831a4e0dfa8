"""Score fusion and calibration: a logistic regression over each candidate entry's retrieval
features gives the probability that the entry answers the query.

It is fitted at build time on the knowledge base itself: some similar questions are held out
as pseudo-queries (their own rows excluded from the dense and BM25 search, and a classifier
trained without them), and every candidate is labelled right or wrong. Knowledge bases too
small for that use :data:`DEFAULT_WEIGHTS`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

FEATURES = (
    "dense",  # best cosine between the query and one of the entry's variants
    "dense_gap",  # dense minus the best dense of all candidates (≤ 0)
    "lexical",  # best BM25 of a variant, divided by the query terms' total idf
    "lexical_gap",
    "classifier",  # entry-id classifier probability (0 without a classifier)
    "classifier_gap",
    "answer_lexical",  # BM25 of the entry's answer text, normalised like lexical
    "answer_lexical_gap",
)
CALIBRATOR_FILE = "calibrator.json"
# Used when the KB has too few paraphrases to hold some out (a hand-set prior in the range of
# what fitting gives on KBs of a few dozen entries).
DEFAULT_WEIGHTS = {
    "dense": 4.0,
    "dense_gap": 2.0,
    "lexical": 2.0,
    "lexical_gap": 2.0,
    "classifier": 4.0,
    "classifier_gap": 3.0,
    "answer_lexical": 2.0,
    "answer_lexical_gap": 2.0,
}
DEFAULT_BIAS = -4.0


def feature_matrix(
    dense: np.ndarray, lexical: np.ndarray, classifier: np.ndarray, answer: np.ndarray
) -> np.ndarray:
    """``(candidates, len(FEATURES))`` float32 from the four raw scores per candidate."""
    if dense.size == 0:
        return np.zeros((0, len(FEATURES)), np.float32)
    cols = []
    for raw in (dense, lexical, classifier, answer):
        cols += [raw, raw - raw.max()]
    return np.stack(cols, axis=1).astype(np.float32)


class Calibrator:
    def __init__(self, weights: np.ndarray, bias: float, fitted_on: int = 0):
        self.weights = weights.astype(np.float32)
        self.bias = float(bias)
        self.fitted_on = fitted_on

    @classmethod
    def default(cls) -> Calibrator:
        return cls(np.asarray([DEFAULT_WEIGHTS[f] for f in FEATURES]), DEFAULT_BIAS)

    @classmethod
    def fit(cls, x: np.ndarray, y: np.ndarray, queries: int, l2: float = 1.0) -> Calibrator:
        """Logistic regression on candidate features ``x`` and 0/1 labels ``y`` with every
        weight ≥ 0 (a higher similarity never lowers the score); the defaults when the data
        are too few."""
        from scipy.optimize import minimize

        if queries < 20 or y.sum() < 10 or (y == 0).sum() < 10:
            return cls.default()
        x64 = x.astype(np.float64)
        y64 = y.astype(np.float64)
        n = x64.shape[0]

        def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
            w, b = theta[:-1], theta[-1]
            z = x64 @ w + b
            p = 1.0 / (1.0 + np.exp(-z))
            value = np.logaddexp(0.0, z).sum() - y64 @ z + 0.5 * l2 * (w @ w)
            grad = np.append(x64.T @ (p - y64) + l2 * w, (p - y64).sum())
            return float(value) / n, grad / n

        start = np.zeros(x64.shape[1] + 1)
        bounds = [(0.0, None)] * x64.shape[1] + [(None, None)]
        result = minimize(loss, start, jac=True, method="L-BFGS-B", bounds=bounds)
        return cls(result.x[:-1], float(result.x[-1]), queries)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Probabilities in [0, 1], one per row of ``x``."""
        z = x @ self.weights + self.bias
        probs: np.ndarray = (1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))).astype(np.float32)
        return probs

    def to_json(self) -> dict[str, Any]:
        return {
            "features": list(FEATURES),
            "weights": [round(float(w), 6) for w in self.weights],
            "bias": round(self.bias, 6),
            "fitted_on_queries": self.fitted_on,
        }

    def save(self, directory: Path) -> None:
        (directory / CALIBRATOR_FILE).write_text(json.dumps(self.to_json(), indent=1), "utf-8")

    @classmethod
    def load(cls, directory: Path) -> Calibrator:
        data = json.loads((directory / CALIBRATOR_FILE).read_text(encoding="utf-8"))
        if tuple(data["features"]) != FEATURES:
            raise ValueError("calibrator features changed; rebuild the knowledge base")
        return cls(np.asarray(data["weights"]), data["bias"], data.get("fitted_on_queries", 0))
