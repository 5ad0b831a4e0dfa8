"""The after-turn stages: work that belongs to a customer's turn but is not the bot's own
dialogue (handing off to a human, queueing, notices). The processor runs them after the
actions and before persisting, under the same conversation lock, on the tracker already in
memory; a stage appends its events to that tracker and its messages to the result. No I/O
here: the contract only."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from bot.core.actions.responses import bot_message
from bot.core.events import Event
from bot.core.messages import TurnResult, UserMessage
from bot.core.tracker import DialogueStateTracker


@dataclass
class Turn:
    """One customer turn while it runs: the conversation's tracker in memory (events appended
    here are persisted with the turn's), the message, the result being built, and the time
    of the turn (``now``, from the processor's ``clock``); ``start``: how many events the
    conversation had before this turn."""

    tracker: DialogueStateTracker
    message: UserMessage
    result: TurnResult
    now: float
    clock: Callable[[], float]
    start: int

    @property
    def sender_id(self) -> str:
        return self.tracker.sender_id

    @property
    def events(self) -> list[Event]:
        """The events of this turn so far."""
        return self.tracker.events[self.start :]

    def add(self, *events: Event) -> None:
        """Append events to the conversation; bot events are also replies of this turn."""
        for event in events:
            self.tracker.update(event)
            if event.get("event") == "bot":
                self.result.messages.append(bot_message(event, self.sender_id))

    def reply(self, message: dict[str, Any]) -> None:
        """A reply of this turn that is not kept in the conversation (a queue position)."""
        self.result.messages.append(message)


class TurnStage(Protocol):
    """An after-turn stage; it may change ``turn.result.outcome``."""

    async def __call__(self, turn: Turn) -> None: ...
