"""Intent classification: logistic regression over the sparse features, with
temperature scaling fitted on out-of-fold scores so confidences are calibrated."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Self

import joblib
import numpy as np

from bot.nlu.interfaces import Component, Message
from bot.training.data import TrainingData


def _softmax(scores: np.ndarray, temperature: float) -> np.ndarray:
    z = scores / temperature
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    out: np.ndarray = e / e.sum(axis=-1, keepdims=True)
    return out


def stack(features: list[Any]) -> Any:
    from scipy.sparse import hstack

    return features[0] if len(features) == 1 else hstack(features, format="csr")


def fit_temperature(scores: np.ndarray, labels: np.ndarray) -> float:
    """The temperature minimising the negative log-likelihood of ``labels``."""
    from scipy.optimize import minimize_scalar

    def nll(t: float) -> float:
        p = _softmax(scores, t)
        return float(-np.log(p[np.arange(len(labels)), labels] + 1e-12).mean())

    result = minimize_scalar(nll, bounds=(0.05, 20.0), method="bounded")
    return float(result.x)


class LogisticRegressionClassifier(Component):
    name = "LogisticRegressionClassifier"
    defaults: dict[str, Any] = {
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
        self.labels: list[str] = list(model.classes_) if model is not None else []

    def _new_model(self) -> Any:
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(
            C=float(self.config["C"]),
            class_weight=self.config["class_weight"],
            max_iter=int(self.config["max_iter"]),
            random_state=int(self.config["random_seed"]),
        )

    def train(self, data: TrainingData, messages: list[Message]) -> None:
        from scipy.sparse import vstack
        from sklearn.model_selection import StratifiedKFold

        x = vstack([stack(m.features) for m in messages], format="csr")
        y = np.array([e.intent for e in data.examples])
        self.model = self._new_model().fit(x, y)
        self.labels = list(self.model.classes_)
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
                fold_scores[:, cols] = fold.decision_function(x[test_idx])
                scores[test_idx] = fold_scores
            label_idx = np.array([self.labels.index(v) for v in y])
            self.temperature = fit_temperature(scores, label_idx)
        for message in messages:
            self.process(message)

    def process(self, message: Message) -> None:
        if self.model is None:
            raise RuntimeError("LogisticRegressionClassifier is not trained")
        if not message.norm.strip() or not message.features:
            message.intent = None
            message.intent_ranking = []
            return
        scores = self.model.decision_function(stack(message.features))
        scores = np.atleast_2d(scores)
        if scores.shape[1] == 1:  # binary problem: sklearn returns one column
            scores = np.hstack([-scores, scores])
        probs = _softmax(scores[0].astype(np.float64), self.temperature)
        order = np.argsort(-probs)[: int(self.config["ranking_length"])]
        ranking = [{"name": self.labels[i], "confidence": round(float(probs[i]), 6)} for i in order]
        message.intent = dict(ranking[0])
        message.intent_ranking = ranking

    def persist(self, directory: Path) -> None:
        joblib.dump(self.model, directory / "model.joblib")
        (directory / "calibration.json").write_text(
            json.dumps({"temperature": self.temperature}), encoding="utf-8"
        )

    @classmethod
    def load(cls, directory: Path, config: dict[str, Any]) -> Self:
        calibration = json.loads((directory / "calibration.json").read_text(encoding="utf-8"))
        return cls(config, joblib.load(directory / "model.joblib"), calibration["temperature"])
