"""The handoff's refusals of agent requests."""

from __future__ import annotations

from bot.errors import BotError


class HandoffError(BotError):
    """A refused agent request; ``status`` is the HTTP code to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
