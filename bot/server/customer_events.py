"""What the customer's page gets besides turn replies: ``GET /webhooks/app/events`` (server-sent
events: an agent's messages, the queue position) and ``GET /webhooks/app/history`` (the
conversation so far, for a reloaded page); ``GET /webhooks/app/welcome`` (the welcome with 猜你想问,
the most asked topics).

A logged-in customer's token never travels in a URL (URLs land in access logs and browser
history): ``history`` takes it in ``Authorization: Bearer``; an ``EventSource`` cannot send
headers, so the page first asks ``POST /webhooks/app/events/ticket`` (with the header) for a
**ticket**: random, valid :data:`TICKET_SECONDS`, single use, bound to that customer's
conversation, and opens ``/events?ticket=…``. The old ``?token=`` is refused (401, saying
what to do). Tickets are kept in Redis when ``$BOT_REDIS_URL`` is set (several workers: the
ticket may be redeemed by another one), else (or while Redis does not answer) in the process.
An anonymous visitor names their sender id (``?sender=``), which the page keeps to itself."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
import time
from collections.abc import Callable
from typing import Any

from sanic import Blueprint, Request
from sanic.response import HTTPResponse
from sanic.response import json as json_response

from bot.builtin_responses import builtin_responses
from bot.channels.app import authenticate
from bot.channels.inputs import MAX_SENDER_CHARS, check_anonymous, clean
from bot.core.actions.responses import bot_message
from bot.handoff.service import HandoffService
from bot.redis import REDIS_PREFIX, RedisOutage, is_outage, redis_url, shared_client
from bot.server.agent_api import sse
from bot.server.errors import ApiError
from bot.server.settings import JwtSettings

logger = logging.getLogger(__name__)
TICKET_SECONDS = 30
WELCOME_TOPICS = 4  # 猜你想问 buttons
TOKEN_IN_URL = (
    "the token is not accepted in the URL: send it as 'Authorization: Bearer <token>', or get a "
    "one-time ticket from POST /webhooks/app/events/ticket and open /webhooks/app/events?ticket=…"
)


class Tickets:
    """One-time tickets for an event stream: ticket -> what it is bound to (a conversation id,
    an agent), for ``ttl`` seconds. ``kind`` names the stream (a ticket of one is no ticket of
    another). With ``url`` they are kept in Redis; while Redis does not answer (one log line
    per outage), in this process, so a page reconnecting to the same worker still gets in."""

    def __init__(
        self,
        url: str | None = None,
        ttl: int = TICKET_SECONDS,
        clock: Callable[[], float] = time.time,
        *,
        kind: str = "sse",
    ) -> None:
        self.url, self.ttl, self.clock, self.kind = url, ttl, clock, kind
        self._local: dict[str, tuple[str, float]] = {}
        self.outage = RedisOutage(f"{kind} stream tickets are per process", log=logger)

    def _key(self, ticket: str) -> str:
        return f"{REDIS_PREFIX}{self.kind}-ticket:{ticket}"

    async def issue(self, conversation_id: str) -> str:
        ticket = secrets.token_urlsafe(24)
        if self.url and self.outage.usable:
            try:
                await shared_client(self.url).set(self._key(ticket), conversation_id, ex=self.ttl)
            except Exception as exc:
                if not is_outage(exc):
                    raise
                self.outage.failed(exc)
            else:
                self.outage.answered()
                return ticket
        now = self.clock()
        for old in [t for t, (_, until) in self._local.items() if until <= now]:
            del self._local[old]
        self._local[ticket] = (conversation_id, now + self.ttl)
        return ticket

    async def redeem(self, ticket: str) -> str | None:
        """What a valid ticket is bound to; the ticket is used up. None when unknown, used or
        expired. (A ticket issued in this process while Redis was down is found here.)"""
        if not ticket or len(ticket) > 100:
            return None
        if self.url and self.outage.usable:
            try:
                value: Any = await shared_client(self.url).getdel(self._key(ticket))
            except Exception as exc:
                if not is_outage(exc):
                    raise
                self.outage.failed(exc)
            else:
                self.outage.answered()
                if value:
                    return str(value)
        found = self._local.pop(ticket, None)
        if found is None or found[1] <= self.clock():
            return None
        return found[0]


class RedactTokens(logging.Filter):
    """Blanks ``token=…`` in the request line of access-log records (Sanic's ``sanic.access``,
    should it be switched on): a token a stale client still puts in a URL is not logged."""

    PATTERN = re.compile(r"([?&]token=)[^&\s\"]+")

    def filter(self, record: logging.LogRecord) -> bool:
        request = getattr(record, "request", None)
        if isinstance(request, str):
            record.request = self.PATTERN.sub(r"\1[redacted]", request)
        if isinstance(record.msg, str):
            record.msg = self.PATTERN.sub(r"\1[redacted]", record.msg)
        return True


def redact_access_log() -> None:
    access = logging.getLogger("sanic.access")
    if not any(isinstance(f, RedactTokens) for f in access.filters):
        access.addFilter(RedactTokens())


def welcome_message(service: HandoffService) -> dict[str, Any]:
    """``utter_welcome`` with 猜你想问: the most asked topics of this process as buttons (FAQ
    entries by their question, self-service intents by ``utter_welcome_topic_<intent>``), or
    the response's own buttons until customers asked something."""
    ctx = service.ctx
    event = ctx.words("utter_welcome")
    message = {k: v for k, v in bot_message(event, "").items() if k != "recipient_id"}
    buttons: list[dict[str, str]] = []
    for key, title in ctx.most_asked(WELCOME_TOPICS * 2):
        kind, _, name = key.partition(":")
        if kind == "faq" and title:
            buttons.append({"title": title, "payload": "/faq" + json.dumps({"topic": name})})
        elif kind == "intent" and f"utter_welcome_topic_{name}" in builtin_responses():
            label = ctx.words(f"utter_welcome_topic_{name}").get("text") or name
            buttons.append({"title": str(label), "payload": f"/{name}"})
    if buttons:
        message["buttons"] = buttons[:WELCOME_TOPICS]
    return message


def _refuse_token_in_url(request: Request) -> None:
    if "token" in request.args:
        logger.warning("refused a customer token in the URL of %s", request.path)
        raise ApiError(401, TOKEN_IN_URL)


def customer_conversation(request: Request, jwt: JwtSettings) -> str:
    _refuse_token_in_url(request)
    customer = authenticate(request, jwt)
    if customer is not None:
        return customer.conversation_id
    sender = clean(str(request.args.get("sender") or "")).strip()
    if not sender or len(sender) > MAX_SENDER_CHARS:
        raise ApiError(400, "give ?sender=<your anonymous sender id> or a customer token")
    return check_anonymous(sender)


def customer_blueprint(
    service: HandoffService,
    jwt: JwtSettings,
    stopping: asyncio.Event,
    tickets: Tickets | None = None,
) -> Blueprint:
    bp = Blueprint("customer_events", url_prefix="/webhooks/app")
    redact_access_log()
    store = tickets if tickets is not None else Tickets(redis_url())

    @bp.get("/history")
    async def history(request: Request) -> HTTPResponse:
        conversation = customer_conversation(request, jwt)
        return json_response({"messages": await service.history(conversation)}, ensure_ascii=False)

    @bp.get("/preferences")
    async def preferences(request: Request) -> HTTPResponse:
        """What the page should offer this customer: large text from the handoff's elderly
        age on (``priorities.elderly_age``, 60), read from the customer's profile."""
        _refuse_token_in_url(request)
        customer = authenticate(request, jwt)
        profile = await service.ctx.profile(customer.customer_id) if customer else None
        age = profile.age if profile else None
        elderly = service.config.priorities.elderly_age
        return json_response({"large_text": age is not None and age >= elderly})

    @bp.get("/welcome")
    async def welcome(request: Request) -> HTTPResponse:
        return json_response({"messages": [welcome_message(service)]}, ensure_ascii=False)

    @bp.post("/events/ticket")
    async def ticket(request: Request) -> HTTPResponse:
        _refuse_token_in_url(request)
        customer = authenticate(request, jwt)
        if customer is None:
            raise ApiError(401, "send the customer token as 'Authorization: Bearer <token>'")
        issued = await store.issue(customer.conversation_id)
        return json_response(
            {"ticket": issued, "expires_in": store.ttl}, headers={"Cache-Control": "no-store"}
        )

    @bp.get("/events")
    async def events(request: Request) -> None:
        given = request.args.get("ticket")
        if given is not None:
            conversation = await store.redeem(str(given))
            if conversation is None:
                raise ApiError(401, "the ticket is unknown, used or expired: get a new one")
        else:
            conversation = customer_conversation(request, jwt)

        async def first() -> list[tuple[str, dict[str, Any]]]:
            status = await service.customer_status(conversation)
            return [("queue", status)] if status else []

        await sse(request, [f"conversation:{conversation}"], stopping, first, service)

    return bp
