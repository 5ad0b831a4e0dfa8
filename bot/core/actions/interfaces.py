"""Contract of an action. No I/O here."""

from __future__ import annotations

import random
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.core.events import Event
from bot.core.tracker import DialogueStateTracker
from bot.domain import Domain


class CustomActionExecutor(Protocol):
    """Runs actions written with ``rasa_sdk`` (in-process or on an action server)."""

    def names(self) -> set[str]: ...

    async def run(
        self, name: str, tracker: dict[str, Any], domain: dict[str, Any]
    ) -> dict[str, Any]:
        """The action server's answer: ``{"events": [...], "responses": [...]}``."""
        ...


@dataclass
class ActionContext:
    domain: Domain
    channel: str | None = None
    executor: CustomActionExecutor | None = None
    rng: random.Random = field(default_factory=random.Random)
    clock: Callable[[], float] = time.time


class Action(ABC):
    def __init__(self, name: str) -> None:
        self.name = name

    @abstractmethod
    async def run(self, tracker: DialogueStateTracker, context: ActionContext) -> list[Event]:
        """Events to append after this action's ``action`` event (bot messages included)."""
