"""The messages a turn takes and gives: :class:`UserMessage` (what a channel hands the
processor) and :class:`TurnResult` (what happened in the turn). No I/O here; channels, the
processor and the after-turn stages all speak these types."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from bot.core.events import Event

# What a turn did: the bot answered; the message was only stored (a human has the
# conversation); this turn handed the conversation to a human (queued); an action refused to
# run (the fallback answered instead); an action failed (the customer got the apology); the
# message was over the length limit and not processed.
Outcome = Literal["answered", "paused", "queued", "rejected", "failed", "too_long"]


@dataclass
class UserMessage:
    text: str
    sender_id: str
    input_channel: str = "rest"
    metadata: dict[str, Any] = field(default_factory=dict)
    customer_id: str | None = None  # verified by the channel, never from the text
    message_id: str | None = None


@dataclass
class TurnResult:
    messages: list[dict[str, Any]]
    events: list[Event]
    parse_data: dict[str, Any]
    actions: list[tuple[str, str, float]]  # (action, policy, confidence) that ran
    customer_id: str | None = None  # verified by the channel for this turn
    rejected: list[str] = field(default_factory=list)  # actions that refused to run
    outcome: Outcome = "answered"
