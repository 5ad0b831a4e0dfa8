"""What the customer's page gets besides turn replies: ``GET /webhooks/app/events`` (server-sent
events: an agent's messages, the queue position) and ``GET /webhooks/app/history`` (the
conversation so far, for a reloaded page). A logged-in customer authenticates with the app
token (``Authorization: Bearer`` or ``?token=`` for EventSource); an anonymous one names their
sender id (``?sender=``), which the page keeps to itself."""

from __future__ import annotations

import asyncio
from typing import Any

from sanic import Blueprint, Request
from sanic.response import HTTPResponse
from sanic.response import json as json_response

from bot.channels.app import authenticate
from bot.channels.identity import InvalidToken, verify_token
from bot.channels.inputs import MAX_SENDER_CHARS, check_anonymous, clean
from bot.handoff.service import HandoffService
from bot.server.agent_api import sse
from bot.server.errors import ApiError
from bot.server.settings import JwtSettings


def customer_conversation(request: Request, jwt: JwtSettings) -> str:
    customer = authenticate(request, jwt)
    if customer is None and request.args.get("token"):
        try:
            customer = verify_token(str(request.args.get("token")), jwt)
        except InvalidToken as exc:
            raise ApiError(401, str(exc)) from None
    if customer is not None:
        return customer.conversation_id
    sender = clean(str(request.args.get("sender") or "")).strip()
    if not sender or len(sender) > MAX_SENDER_CHARS:
        raise ApiError(400, "give ?sender=<your anonymous sender id> or a customer token")
    return check_anonymous(sender)


def customer_blueprint(
    service: HandoffService, jwt: JwtSettings, stopping: asyncio.Event
) -> Blueprint:
    bp = Blueprint("customer_events", url_prefix="/webhooks/app")

    @bp.get("/history")
    async def history(request: Request) -> HTTPResponse:
        conversation = customer_conversation(request, jwt)
        return json_response({"messages": await service.history(conversation)}, ensure_ascii=False)

    @bp.get("/events")
    async def events(request: Request) -> None:
        conversation = customer_conversation(request, jwt)

        async def first() -> list[tuple[str, dict[str, Any]]]:
            status = await service.customer_status(conversation)
            return [("queue", status)] if status else []

        await sse(request, [f"conversation:{conversation}"], stopping, first, service)

    return bp
