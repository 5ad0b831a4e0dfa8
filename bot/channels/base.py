"""What an input channel gets from the server: an ``on_new_message`` callback (Rasa's
pattern) that runs one turn and answers the bot messages in REST shape
(``{"recipient_id", "text", "buttons", "image", "custom", ...}``).

The callback applies the server's rules (rate limit, length limit, anonymous senders may not
pose as verified customers, retried ``metadata.message_id``) and raises
:class:`MessageRefused` with a status and a message the client may see when it refuses the
message, so a channel needs nothing from ``bot.server``. A channel refuses a request it
cannot read (bad body, bad signature, bad token) with :class:`ChannelError`; the server
answers both as its JSON errors.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from bot.core.messages import UserMessage

BotMessages = list[dict[str, Any]]
OnNewMessage = Callable[[UserMessage], Awaitable[BotMessages]]


class MessageRefused(Exception):
    """The server refused the message; ``message`` is safe to show the client."""

    def __init__(self, status: int, message: str, retry_after: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


class ChannelError(Exception):
    """A request the channel refuses: an HTTP ``status``, a ``message`` safe to show the
    client and the response's ``headers`` (e.g. ``WWW-Authenticate``)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
