"""A trained policy for turns no rule or story covers: logistic regression over the
featurised recent history (intents, entities, slots, previous actions, active loop of the
last ``max_history`` states), trained on the stories and the rules.

Inference applies the learned weights directly: one row lookup per active feature."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Self

import joblib
import numpy as np

from bot.core.policies.interfaces import Policy, PolicyPrediction
from bot.core.stories import Story
from bot.core.tracker import DialogueStateTracker, State, states_from_events
from bot.core.training_events import story_events
from bot.domain import Domain


def history_features(states: list[State], max_history: int) -> list[str]:
    features = []
    for offset, state in enumerate(reversed(states[-max_history:])):
        for key, value in state:
            features.append(f"{offset}|{key}={value}")
    return features


class SklearnPolicy(Policy):
    name = "SklearnPolicy"
    default_priority = 1
    defaults: ClassVar[dict[str, Any]] = {"max_history": 5, "C": 10.0, "max_iter": 2000}

    def __init__(
        self, config: dict[str, Any], model: Any = None, vocabulary: dict[str, int] | None = None
    ) -> None:
        super().__init__(config)
        self.model = model
        self.vocabulary = vocabulary or {}
        self.labels: list[str] = []
        self._coef_t = np.zeros((0, 0))
        self._intercept = np.zeros(0)
        # Dialogue states recur constantly: (offset, state) → the vocabulary columns of its
        # features, and the last max_history states → the prediction.
        self._columns: dict[tuple[int, State], tuple[int, ...]] = {}
        self._predictions: dict[tuple[State, ...], tuple[str, float]] = {}
        if model is not None:
            self._prepare()

    def _prepare(self) -> None:
        self.labels = [str(c) for c in self.model.classes_]
        coef = np.asarray(self.model.coef_, dtype=np.float64)
        intercept = np.asarray(self.model.intercept_, dtype=np.float64)
        if coef.shape[0] == 1:
            coef = np.vstack([-coef, coef]) / 2
            intercept = np.array([-intercept[0], intercept[0]]) / 2
        self._coef_t = np.ascontiguousarray(coef.T)
        self._intercept = intercept
        self._columns = {}
        self._predictions = {}

    def train(self, stories: list[Story], rules: list[Story], domain: Domain) -> None:
        from scipy.sparse import csr_matrix
        from sklearn.linear_model import LogisticRegression

        h = int(self.config["max_history"])
        rows: list[list[str]] = []
        labels: list[str] = []
        for story in [*stories, *rules]:
            history: list[State] = []
            for state, action in states_from_events(story_events(story), domain):
                if action is None:
                    break
                history.append(state)
                rows.append(history_features(history, h))
                labels.append(action)
        if len(set(labels)) < 2:
            self.model = None
            return
        vocabulary: dict[str, int] = {}
        for row in rows:
            for f in row:
                vocabulary.setdefault(f, len(vocabulary))
        indptr, indices = [0], []
        for row in rows:
            cols = sorted({vocabulary[f] for f in row})
            indices.extend(cols)
            indptr.append(len(indices))
        x = csr_matrix(
            (np.ones(len(indices)), np.array(indices, dtype=np.int64), np.array(indptr)),
            shape=(len(rows), len(vocabulary)),
        )
        self.vocabulary = vocabulary
        self.model = LogisticRegression(
            C=float(self.config["C"]), max_iter=int(self.config["max_iter"])
        ).fit(x, np.array(labels))
        self._prepare()

    def _state_columns(self, offset: int, state: State) -> tuple[int, ...]:
        key = (offset, state)
        cols = self._columns.get(key)
        if cols is None:
            vocabulary = self.vocabulary
            features = (f"{offset}|{k}={v}" for k, v in state)
            cols = tuple(vocabulary[f] for f in features if f in vocabulary)
            if len(self._columns) >= 50_000:
                self._columns.clear()
            self._columns[key] = cols
        return cols

    def _probs(self, states: list[State]) -> np.ndarray:
        """The probability of each of ``labels`` (the features of :func:`history_features`)."""
        h = int(self.config["max_history"])
        known: set[int] = set()
        for offset, state in enumerate(reversed(states[-h:])):
            known.update(self._state_columns(offset, state))
        idx = sorted(known)
        scores = self._intercept + (self._coef_t[idx].sum(axis=0) if idx else 0.0)
        scores = scores - scores.max()
        probs: np.ndarray = np.exp(scores)
        probs /= probs.sum()
        return probs

    def probabilities(self, states: list[State]) -> dict[str, float]:
        probs = self._probs(states)
        return {label: float(p) for label, p in zip(self.labels, probs, strict=True)}

    def predict(
        self,
        tracker: DialogueStateTracker,
        states: list[tuple[State, str | None]],
        domain: Domain,
    ) -> PolicyPrediction | None:
        if self.model is None:
            return None
        recent = tuple(s for s, _ in states[-int(self.config["max_history"]) :])
        known = self._predictions.get(recent)
        if known is None:
            probs = self._probs(list(recent))
            best = int(np.argmax(probs))  # the first of equal maxima, as max() over labels
            known = (self.labels[best], float(probs[best]))
            if len(self._predictions) >= 50_000:
                self._predictions.clear()
            self._predictions[recent] = known
        return self._prediction(*known)

    def persist(self, directory: Path) -> None:
        joblib.dump(
            {"model": self.model, "vocabulary": self.vocabulary}, directory / "model.joblib"
        )

    @classmethod
    def load(cls, directory: Path, config: dict[str, Any]) -> Self:
        data = joblib.load(directory / "model.joblib")
        return cls(config, data["model"], data["vocabulary"])
