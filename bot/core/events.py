"""Rasa events as plain dicts (``{"event": "user", "timestamp": ..., ...}``).

These are the shapes ``rasa_sdk`` sends and receives, so a tracker built from them can be
sent to an action server unchanged.
"""

from __future__ import annotations

import time
from typing import Any

Event = dict[str, Any]


def _event(kind: str, timestamp: float | None, **fields: Any) -> Event:
    return {"event": kind, "timestamp": time.time() if timestamp is None else timestamp, **fields}


def user(
    text: str | None,
    parse_data: dict[str, Any],
    *,
    input_channel: str | None = None,
    message_id: str | None = None,
    metadata: dict[str, Any] | None = None,
    timestamp: float | None = None,
) -> Event:
    return _event(
        "user",
        timestamp,
        text=text,
        parse_data=parse_data,
        input_channel=input_channel,
        message_id=message_id,
        metadata=metadata or {},
    )


def bot(
    text: str | None,
    data: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
    timestamp: float | None = None,
) -> Event:
    return _event("bot", timestamp, text=text, data=data or {}, metadata=metadata or {})


def action(
    name: str,
    policy: str | None = None,
    confidence: float | None = None,
    timestamp: float | None = None,
) -> Event:
    return _event("action", timestamp, name=name, policy=policy, confidence=confidence)


def slot(name: str, value: Any, timestamp: float | None = None) -> Event:
    return _event("slot", timestamp, name=name, value=value)


def active_loop(name: str | None, timestamp: float | None = None) -> Event:
    return _event("active_loop", timestamp, name=name)


def session_started(timestamp: float | None = None) -> Event:
    return _event("session_started", timestamp)


def restart(timestamp: float | None = None) -> Event:
    return _event("restart", timestamp)


def pause(timestamp: float | None = None) -> Event:
    return _event("pause", timestamp)


def resume(timestamp: float | None = None) -> Event:
    return _event("resume", timestamp)


def followup(name: str, timestamp: float | None = None) -> Event:
    return _event("followup", timestamp, name=name)


def reset_slots(timestamp: float | None = None) -> Event:
    return _event("reset_slots", timestamp)


def rewind(timestamp: float | None = None) -> Event:
    """Rasa's ``UserUtteranceReverted``: undo the last user message and what followed."""
    return _event("rewind", timestamp)


def undo(timestamp: float | None = None) -> Event:
    """Rasa's ``ActionReverted``: undo the last action."""
    return _event("undo", timestamp)


def action_execution_rejected(
    name: str,
    timestamp: float | None = None,
    policy: str | None = None,
    confidence: float | None = None,
) -> Event:
    return _event(
        "action_execution_rejected", timestamp, name=name, policy=policy, confidence=confidence
    )


def loop_interrupted(is_interrupted: bool, timestamp: float | None = None) -> Event:
    return _event("loop_interrupted", timestamp, is_interrupted=is_interrupted)
