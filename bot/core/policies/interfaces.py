"""Contract of a dialogue policy. No I/O here."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

from bot.core.stories import Story
from bot.core.tracker import DialogueStateTracker, State
from bot.domain import Domain


@dataclass(frozen=True)
class PolicyPrediction:
    action: str
    confidence: float
    policy: str
    priority: int


class Policy(ABC):
    """Declared as ``- name: X`` under ``policies:``; ``priority`` breaks confidence ties."""

    name: ClassVar[str]
    defaults: ClassVar[dict[str, Any]] = {}
    default_priority: ClassVar[int] = 1

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = {**self.defaults, "priority": self.default_priority, **config}

    @property
    def priority(self) -> int:
        return int(self.config["priority"])

    @abstractmethod
    def train(self, stories: list[Story], rules: list[Story], domain: Domain) -> None:
        """Learn from flattened stories and rules (no checkpoints or ``or`` steps left)."""

    @abstractmethod
    def predict(
        self,
        tracker: DialogueStateTracker,
        states: list[tuple[State, str | None]],
        domain: Domain,
    ) -> PolicyPrediction | None:
        """The next action, or ``None`` to abstain. ``states`` is ``tracker.past_states()``."""

    def persist(self, directory: Path) -> None:  # noqa: B027
        """Save learned state into ``directory``."""

    @classmethod
    def load(cls, directory: Path, config: dict[str, Any]) -> Self:
        return cls(config)

    def _prediction(self, action: str, confidence: float) -> PolicyPrediction:
        return PolicyPrediction(action, confidence, self.name, self.priority)
