"""The agent workspace's extra routes beside the agent API (``/agent/...``, the same agent
token): what the console shows in Chinese and suggestions from the conversation's topic.

- ``GET /agent/labels``: ``{"intents", "slots", "reasons"}`` (code → label), from the domain's
  ``intent_labels`` and ``slot_labels`` (trainers edit them) and the handoff's reason labels;
- ``GET /agent/conversations/<id>/topic-suggestions``: knowledge entries for the topic of the
  conversation (its latest customer messages with one, not button payloads), scores below
  :data:`bot.handoff.packet.MIN_SUGGESTION` hidden.
"""

from __future__ import annotations

from typing import Any

from sanic import Blueprint, Request
from sanic.response import HTTPResponse
from sanic.response import json as json_response

from bot.handoff.packet import labels, topic_suggestions
from bot.handoff.service import HandoffService
from bot.server.agent_api import _op, _token, cid, mapped


def workspace_blueprint(service: HandoffService) -> Blueprint:
    bp = Blueprint("agent_workspace", url_prefix="/agent")

    async def agent(request: Request) -> Any:
        return await mapped(service.verify(_token(request)))

    @bp.get("/labels")
    async def labels_route(request: Request) -> HTTPResponse:
        await agent(request)
        domain = service.ctx.domain
        return json_response(labels(domain.raw if domain else {}), ensure_ascii=False)

    @bp.get("/conversations/<conversation:str>/topic-suggestions")
    async def topic(request: Request, conversation: str) -> HTTPResponse:
        account = await agent(request)
        messages = await mapped(service.messages(account, cid(conversation)))  # visibility
        found = topic_suggestions(messages, service.ctx.search)
        return json_response({"suggestions": found}, ensure_ascii=False)

    return bp


def openapi_paths() -> dict[str, Any]:
    """This module's routes and the customer's ticketed event stream, for /openapi.json."""
    conv = "/agent/conversations/{conversation_id}"
    return {
        "/agent/labels": {"get": _op("Chinese labels of intents, slots and reasons")},
        f"{conv}/topic-suggestions": {
            "get": _op("knowledge suggestions for the conversation's topic", path=True)
        },
        "/webhooks/app/welcome": {
            "get": _op("the page's welcome with 猜你想问 (most asked topics)", secured=False)
        },
        "/webhooks/app/events/ticket": {
            "post": _op(
                "a one-time ticket (30 s) for the customer's event stream; customer JWT in "
                "Authorization",
                secured=False,
            )
        },
        "/webhooks/app/events": {
            "get": _op(
                "the customer's live events (server-sent events); ?token= is refused",
                secured=False,
                query=["ticket", "sender"],
                content="text/event-stream",
            )
        },
    }
