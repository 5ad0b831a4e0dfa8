"""Memoization over stories: the last ``max_history`` states seen in training → the action
that followed (Rasa's ``MemoizationPolicy``). ``AugmentedMemoizationPolicy`` also looks up
shorter histories, so a story snippet matches in the middle of a longer conversation.
Histories that led to different actions in different stories are dropped as ambiguous."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, ClassVar, Self

from bot.core.policies.interfaces import Policy, PolicyPrediction
from bot.core.stories import Story
from bot.core.tracker import DialogueStateTracker, State, states_from_events
from bot.core.training_events import story_events
from bot.domain import Domain

Key = tuple[State | None, ...]
_AMBIGUOUS = "__ambiguous__"


class MemoizationPolicy(Policy):
    name = "MemoizationPolicy"
    default_priority = 3
    defaults: ClassVar[dict[str, Any]] = {"max_history": 5}
    augmented = False

    def __init__(self, config: dict[str, Any], lookup: dict[Key, str] | None = None) -> None:
        super().__init__(config)
        self.lookup = lookup or {}

    @property
    def max_history(self) -> int:
        return int(self.config["max_history"])

    def _keys(self, states: list[State]) -> list[Key]:
        """Keys for the history ending at the last of ``states``, longest first."""
        h = self.max_history
        window = states[-h:]
        padded: Key = (None,) * (h - len(window)) + tuple(window)
        keys = [padded]
        if self.augmented:
            keys.extend(tuple(window[-n:]) for n in range(len(window) - 1, 0, -1))
        return keys

    def train(self, stories: list[Story], rules: list[Story], domain: Domain) -> None:
        lookup: dict[Key, str] = {}
        for story in stories:
            pairs = states_from_events(story_events(story), domain)
            history: list[State] = []
            for state, action in pairs:
                if action is None:
                    break
                history.append(state)
                for key in self._keys(history):
                    previous = lookup.get(key)
                    if previous is None:
                        lookup[key] = action
                    elif previous != action:
                        lookup[key] = _AMBIGUOUS
        self.lookup = {k: v for k, v in lookup.items() if v != _AMBIGUOUS}

    def predict(
        self,
        tracker: DialogueStateTracker,
        states: list[tuple[State, str | None]],
        domain: Domain,
    ) -> PolicyPrediction | None:
        history = [s for s, _ in states]
        for key in self._keys(history):
            action = self.lookup.get(key)
            if action is not None:
                return self._prediction(action, 1.0)
        return None

    def persist(self, directory: Path) -> None:
        with (directory / "lookup.pkl").open("wb") as f:
            pickle.dump(self.lookup, f)

    @classmethod
    def load(cls, directory: Path, config: dict[str, Any]) -> Self:
        with (directory / "lookup.pkl").open("rb") as f:
            return cls(config, pickle.load(f))


class AugmentedMemoizationPolicy(MemoizationPolicy):
    name = "AugmentedMemoizationPolicy"
    augmented = True
