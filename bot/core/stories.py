"""Stories, rules and test stories as plain data (Rasa 3.x ``stories:`` / ``rules:``).

No I/O here: ``bot.training.story_reader`` reads the YAML, ``bot.training.story_graph``
expands checkpoints and ``or`` steps into flat stories the policies train on. It stays in
``bot.core`` because the policies' ``train`` takes these classes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from bot.training.data import Source


@dataclass(frozen=True)
class UserStep:
    """``- intent: x`` (optionally ``entities:``), or in test stories ``- user: |`` text."""

    intent: str | None
    entities: tuple[dict[str, Any], ...] = ()
    text: str | None = None
    source: Source | None = None


@dataclass(frozen=True)
class ActionStep:
    action: str
    source: Source | None = None


@dataclass(frozen=True)
class SlotStep:
    """``- slot_was_set: [{name: value}, ...]``; a bare name means "set to anything"."""

    slots: tuple[tuple[str, Any], ...]
    source: Source | None = None


@dataclass(frozen=True)
class LoopStep:
    """``- active_loop: form_name`` or ``- active_loop: null``."""

    loop: str | None
    source: Source | None = None


@dataclass(frozen=True)
class CheckpointStep:
    name: str
    source: Source | None = None


@dataclass(frozen=True)
class OrStep:
    alternatives: tuple[UserStep | SlotStep, ...]
    source: Source | None = None


@dataclass(frozen=True)
class WaitStep:
    """Test-story extension ``- wait: SECONDS``: the clock moves on (session expiry)."""

    seconds: float
    source: Source | None = None


@dataclass(frozen=True)
class ResumeStep:
    """Test-story extension ``- resume: true``: an agent hands the conversation back."""

    source: Source | None = None


Step = UserStep | ActionStep | SlotStep | LoopStep | CheckpointStep | OrStep | WaitStep | ResumeStep

ANY_VALUE: Any = object()  # ``slot_was_set: [name]`` without a value


@dataclass(frozen=True)
class Story:
    name: str
    steps: tuple[Step, ...]
    kind: Literal["story", "rule", "test"] = "story"
    source: Source | None = None
    # Rules only:
    condition: tuple[Step, ...] = ()
    conversation_start: bool = False
    wait_for_user_input: bool = True
    # Test-story extension ``metadata:`` (e.g. ``customer_id`` of a verified customer).
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class StoryFile:
    stories: list[Story] = field(default_factory=list)
    rules: list[Story] = field(default_factory=list)
