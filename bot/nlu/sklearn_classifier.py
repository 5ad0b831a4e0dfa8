"""Rasa's SklearnIntentClassifier: a support vector machine (scikit-learn ``SVC``) with
the hyper-parameters chosen by grid search over ``C``, ``kernels`` and ``gamma`` with
``max_cross_validation_folds`` folds scored by ``scoring_function``, as Rasa. Probabilities
come from Platt scaling on held-out folds (``CalibratedClassifierCV``); the ranking has
``ranking_length`` intents.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Self

import joblib
import numpy as np

from bot.nlu.classifier import single_threaded, to_matrix
from bot.nlu.interfaces import Component, Message
from bot.training.data import TrainingData


class SklearnIntentClassifier(Component):
    name = "SklearnIntentClassifier"
    defaults: ClassVar[dict[str, Any]] = {
        "C": [1, 2, 5, 10, 20, 100],
        "gamma": [0.1],
        "kernels": ["linear"],
        "max_cross_validation_folds": 5,
        "scoring_function": "f1_weighted",
        "num_threads": 1,
        "ranking_length": 10,
        "random_seed": 42,
    }

    def __init__(self, config: dict[str, Any], model: Any = None) -> None:
        super().__init__(config)
        for key in ("C", "gamma", "kernels"):
            value = self.config[key]
            if not isinstance(value, list):
                self.config[key] = [value]
        self.model = model

    def train(self, data: TrainingData, messages: list[Message]) -> None:
        with single_threaded():
            self._fit(data, messages)
        for message in messages:
            self.process(message)

    def _fit(self, data: TrainingData, messages: list[Message]) -> None:
        from sklearn.model_selection import GridSearchCV
        from sklearn.svm import SVC

        x = to_matrix([m.features for m in messages])
        y = np.array([e.base_intent for e in data.examples])
        counts = np.unique(y, return_counts=True)[1]
        folds = max(2, min(int(self.config["max_cross_validation_folds"]), int(counts.min())))
        grid: list[dict[str, list[Any]]] = [
            {
                "C": [float(c) for c in self.config["C"]],
                "gamma": [float(g) for g in self.config["gamma"]],
                "kernel": [str(k) for k in self.config["kernels"]],
            }
        ]
        seed = int(self.config["random_seed"])
        if counts.min() >= 2:
            from sklearn.calibration import CalibratedClassifierCV

            search = GridSearchCV(
                SVC(class_weight="balanced", random_state=seed),
                grid,
                cv=folds,
                scoring=self.config["scoring_function"],
                n_jobs=int(self.config["num_threads"]),
            )
            best = search.fit(x, y).best_params_
            # Probabilities by Platt scaling on held-out folds (SVC(probability=True) is
            # deprecated in scikit-learn 1.9).
            svc = SVC(class_weight="balanced", random_state=seed, **best)
            self.model = CalibratedClassifierCV(svc, cv=folds, ensemble=False).fit(x, y)
        else:
            from bot.errors import TrainingDataError

            raise TrainingDataError(
                "SklearnIntentClassifier: every intent needs at least two examples for its "
                "cross-validation"
            )

    def process(self, message: Message) -> None:
        if self.model is None:
            raise RuntimeError("SklearnIntentClassifier is not trained")
        if not message.norm.strip() or not message.features:
            message.intent, message.intent_ranking = None, []
            return
        probs = self.model.predict_proba(to_matrix([message.features]))[0]
        order = np.argsort(-probs)[: int(self.config["ranking_length"]) or len(probs)]
        labels = [str(c) for c in self.model.classes_]
        ranking = [{"name": labels[i], "confidence": round(float(probs[i]), 6)} for i in order]
        message.intent = dict(ranking[0])
        message.intent_ranking = ranking

    def persist(self, directory: Path) -> None:
        joblib.dump(self.model, directory / "svc.joblib")

    @classmethod
    def load(cls, directory: Path, config: dict[str, Any]) -> Self:
        return cls(config, joblib.load(directory / "svc.joblib"))
