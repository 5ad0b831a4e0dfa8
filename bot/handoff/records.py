"""The handoff's records as the stores return them: a handoff (one stay of a conversation with
the humans), an agent account, a ticket (a message left instead of waiting). Plain data."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from bot.errors import BotError
from bot.handoff.tables import MAX_NAME


@dataclass
class Handoff:
    id: str
    conversation_id: str
    channel: str | None
    customer_id: str | None
    customer_name: str | None
    group: str
    priority: int
    reason: str
    reason_detail: str | None
    status: str
    enqueued_at: float
    assigned_at: float | None = None
    accepted_at: float | None = None
    closed_at: float | None = None
    agent: str | None = None
    resolution: str | None = None
    rating: int | None = None
    preview: str | None = None
    told_position: int | None = None  # what a push-channel customer last heard


@dataclass
class AgentAccount:
    username: str
    groups: list[str]
    role: str
    capacity: int
    status: str
    created_at: float
    last_assigned_at: float = 0.0

    @property
    def supervisor(self) -> bool:
        return self.role == "supervisor"

    def may_see(self, handoff: Handoff) -> bool:
        """Supervisors see every conversation; an agent only while it is assigned to them
        (access ends with the assignment: after a close or a transfer, what the customer
        writes next is not theirs to read) or while it waits in one of their groups."""
        return (
            self.supervisor
            or (handoff.agent == self.username and handoff.status in ("assigned", "active"))
            or (handoff.status == "waiting" and handoff.group in self.groups)
        )


@dataclass
class Ticket:
    id: int
    handoff_id: str | None
    conversation_id: str
    customer_id: str | None
    group: str | None
    text: str
    created_at: float
    status: str


def new_id() -> str:
    return uuid.uuid4().hex


def check_name(value: str, what: str) -> str:
    value = value.strip()
    if not value or len(value) > MAX_NAME or not value.isprintable() or "," in value:
        raise BotError(
            f"{what} must be 1-{MAX_NAME} printable characters without commas, got {value!r}"
        )
    return value
