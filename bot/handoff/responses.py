"""The handoff's words: every sentence a customer reads during a handoff is a response
(``bot/resources/responses/handoff.yml``, overridden by the project's ``domain.yml``)
rendered here into a bot event."""

from __future__ import annotations

import random
from typing import Any

from bot.builtin_responses import builtin_responses
from bot.core.actions.responses import choose_variation, render
from bot.core.events import Event
from bot.domain import Domain

REQUEST = "utter_handoff_request"  # said by action_handoff
COMPLAINT = "utter_handoff_complaint"  # said by action_handoff
STARTED = "utter_handoff_started"
QUEUED = "utter_handoff_queued"
QUEUED_NEXT = "utter_handoff_queued_next"
RECEIVED = "utter_handoff_received"
BOT_ANSWERS = "utter_handoff_bot_answers"
FLOW_OFF = "utter_handoff_flow_off"
CAN_LEAVE_MESSAGE = "utter_handoff_can_leave_message"
OUT_OF_HOURS = "utter_handoff_out_of_hours"
LEAVE_MESSAGE = "utter_handoff_leave_message"
MESSAGE_CANCELLED = "utter_handoff_message_cancelled"
TICKET = "utter_handoff_ticket"
ACCEPTED = "utter_handoff_accepted"
TRANSFERRED = "utter_handoff_transferred"
CLOSED = "utter_handoff_closed"
ASK_SOLVED = "utter_handoff_ask_solved"
ASK_COMMENT = "utter_handoff_ask_comment"
PUSH_NEXT = "utter_handoff_push_next"
PUSH_POSITION = "utter_handoff_push_position"
PUSH_CAN_LEAVE_MESSAGE = "utter_handoff_push_can_leave_message"

_RNG = random.Random()


def response(
    name: str,
    domain: Domain | None,
    *,
    channel: str | None = None,
    slots: dict[str, Any] | None = None,
    values: dict[str, Any] | None = None,
    rng: random.Random | None = None,
) -> Event:
    """One bot event of ``name``: the domain's response (else the built-in one) for
    ``channel``, templates filled from ``slots`` and ``values``. When no variation's condition
    holds, the built-in one is used, so the customer is always told."""
    variations = domain.variations(name) if domain is not None else None
    builtin = builtin_responses()[name]
    variation = choose_variation(variations or builtin, channel, rng or _RNG, slots)
    if variation is None:
        variation = builtin[0]
    return render(variation, {**(slots or {}), **(values or {})}, name)


def queue_values(group: str, position: int, minutes: int) -> dict[str, Any]:
    """The values of the queue messages."""
    return {"group": group, "position": position, "ahead": position - 1, "minutes": minutes}
