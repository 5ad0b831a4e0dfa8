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
    # Evidence of paraphrased entries, each × share (paraphrase_share: 0 for an entry
    # without similar questions, 1 from SHARE_FULL of them): weights learned at build time.
    "dense",  # best cosine between the query and one of the entry's variants
    "dense_gap",  # dense minus the best dense of all candidates (≤ 0)
    "lexical",  # best BM25 of a variant, divided by the query terms' total idf
    "lexical_gap",
    "classifier",  # the entry classifier's score (classifier.py: refined centroid)
    "classifier_gap",
    "answer_lexical",  # BM25 of the entry's category + answer text, normalised like lexical
    "answer_lexical_gap",
    "lowrank",  # the low-rank softmax's probability (lowrank.py; 0 without paraphrases)
    "lowrank_gap",
    # Entries with few paraphrases, × (1 − share): a fixed lexical-first mix (PRIOR) of the
    # same evidence, whose scale (not its mix) is learned. With nothing to hold out, the
    # pseudo-queries of such entries (shortened standard questions) are too unlike real
    # wording to learn a mix from: learned, the mix leaned on dense similarity and fell
    # below plain BM25 on real questions.
    "prior",
    "prior_lead",  # the prior minus the best other candidate's (the top's lead when ≥ 0)
)
SHARE_FULL = 8  # similar questions at which an entry counts as fully paraphrased
# The mix for entries without paraphrases: BM25 of the questions (words + characters) first,
# then the question's TF-IDF cosine (the classifier's centroid of one question), the dense
# cosine and the answer's BM25. Round numbers, chosen on a sample of the public zero-shot
# sets (see docs/knowledge-base.md), not fitted per knowledge base.
PRIOR = {"lexical": 2.0, "classifier": 1.0, "dense": 0.5, "answer_lexical": 0.5}
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
    "lowrank": 0.0,
    "lowrank_gap": 0.0,
    "prior": 2.0,
    "prior_lead": 4.0,
}
DEFAULT_BIAS = -4.0


def paraphrase_share(similar_counts: np.ndarray) -> np.ndarray:
    """Per entry, in [0, 1]: 0 without similar questions, 1 from :data:`SHARE_FULL` on."""
    share = np.log1p(similar_counts) / np.log1p(SHARE_FULL)
    out: np.ndarray = np.clip(share, 0.0, 1.0).astype(np.float32)
    return out


def feature_matrix(
    dense: np.ndarray,
    lexical: np.ndarray,
    classifier: np.ndarray,
    answer: np.ndarray,
    share: np.ndarray | None = None,
    lowrank: np.ndarray | None = None,
) -> np.ndarray:
    """``(candidates, len(FEATURES))`` float32 from the raw scores per candidate, the
    candidates' paraphrase share (1 when not given) and the low-rank probability (0 when not
    given)."""
    if dense.size == 0:
        return np.zeros((0, len(FEATURES)), np.float32)
    if share is None:
        share = np.ones_like(dense)
    if lowrank is None:
        lowrank = np.zeros_like(dense)
    cols = []
    for raw in (dense, lexical, classifier, answer, lowrank):
        cols += [raw * share, (raw - raw.max()) * share]
    prior = (
        PRIOR["lexical"] * lexical
        + PRIOR["classifier"] * classifier
        + PRIOR["dense"] * dense
        + PRIOR["answer_lexical"] * answer
    )
    few = 1.0 - share
    cols += [prior * few, _lead(prior) * few]
    return np.stack(cols, axis=1).astype(np.float32)


def _lead(raw: np.ndarray) -> np.ndarray:
    """Each value minus the best *other* value: the top candidate's lead over the second
    (≥ 0), the others' distance to the top (≤ 0)."""
    if raw.size < 2:
        return np.zeros_like(raw)
    order = np.argsort(-raw)
    out: np.ndarray = raw - raw[order[0]]
    out[order[0]] = raw[order[0]] - raw[order[1]]
    return out


def reliability(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> dict[str, Any]:
    """Predicted vs actual accuracy per confidence bin and the expected calibration error
    (ECE: the bins' |predicted − actual| weighted by their share of the queries)."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    rows = []
    ece = 0.0
    n = max(int(confidence.size), 1)
    for b in range(bins):
        inside = which == b
        count = int(inside.sum())
        if not count:
            continue
        predicted = float(confidence[inside].mean())
        actual = float(correct[inside].mean())
        ece += count / n * abs(predicted - actual)
        rows.append(
            {
                "bin": f"{edges[b]:.1f}-{edges[b + 1]:.1f}",
                "n": count,
                "predicted": round(predicted, 3),
                "actual": round(actual, 3),
            }
        )
    return {"queries": int(confidence.size), "ece": round(ece, 4), "bins": rows}


def format_reliability(report: dict[str, Any]) -> str:
    """A few lines for the terminal."""
    if not report.get("queries"):
        return "calibration: no held-out questions (default weights)"
    lines = [
        f"reliability of the top score on {report['queries']} questions "
        f"({report.get('kind') or 'held out'}): ECE {report['ece']:.3f}",
        "  score bin   n     predicted  actual",
    ]
    for row in report["bins"]:
        lines.append(
            f"  {row['bin']:<10} {row['n']:<5} {row['predicted']:<10.3f} {row['actual']:.3f}"
        )
    return "\n".join(lines)


class Calibrator:
    def __init__(
        self,
        weights: np.ndarray,
        bias: float,
        fitted_on: int = 0,
        report: dict[str, Any] | None = None,
    ):
        self.weights = weights.astype(np.float32)
        self.bias = float(bias)
        self.fitted_on = fitted_on
        self.report: dict[str, Any] = report or {"queries": 0}

    @classmethod
    def fit_checked(cls, xs: list[np.ndarray], ys: list[np.ndarray], kind: str = "") -> Calibrator:
        """Fit on the candidates of held-out queries (one ``(x, y)`` pair per query) and
        measure its calibration honestly: a model fitted on three quarters of the queries
        scores the other quarter, whose top candidates' scores against whether they were
        right give the reliability report (:func:`reliability`); the model kept is then
        fitted on all queries."""
        queries = len(xs)
        fitted = cls.fit(np.vstack(xs), np.concatenate(ys), queries) if xs else cls.default()
        if fitted.fitted_on == 0:
            return fitted
        test = np.arange(queries) % 4 == 0
        train = np.flatnonzero(~test)
        part = cls.fit(
            np.vstack([xs[i] for i in train]),
            np.concatenate([ys[i] for i in train]),
            int(train.size),
        )
        confidence, correct = [], []
        for i in np.flatnonzero(test).tolist():
            if xs[i].shape[0] == 0:
                continue
            scores = part(xs[i])
            top = int(np.argmax(scores))
            confidence.append(float(scores[top]))
            correct.append(float(ys[i][top]))
        report = reliability(np.asarray(confidence), np.asarray(correct))
        report["kind"] = kind
        fitted.report = report
        return fitted

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
            "reliability": self.report,
        }

    def save(self, directory: Path) -> None:
        (directory / CALIBRATOR_FILE).write_text(json.dumps(self.to_json(), indent=1), "utf-8")

    @classmethod
    def load(cls, directory: Path) -> Calibrator:
        data = json.loads((directory / CALIBRATOR_FILE).read_text(encoding="utf-8"))
        if tuple(data["features"]) != FEATURES:
            raise ValueError("calibrator features changed; rebuild the knowledge base")
        return cls(
            np.asarray(data["weights"]),
            data["bias"],
            data.get("fitted_on_queries", 0),
            data.get("reliability"),
        )
