"""``POST /webhooks/rest/webhook``: Rasa's REST channel.

Body ``{"sender": "id", "message": "text", "metadata": {...}}``; the answer is a JSON list of
bot messages ``{"recipient_id", "text", "buttons", "image", "custom"}``. With ``?stream=true``
the answer is newline-delimited JSON, one bot message per line. The dialogue engine produces
a turn's messages together, so the lines are written as soon as the turn ends (not earlier);
a client written for streaming keeps working when the engine becomes incremental.
REST conversations are anonymous: the customer id is never taken from the body.
"""

from __future__ import annotations

import json
from typing import Any

from sanic import Blueprint, Request
from sanic.response import HTTPResponse
from sanic.response import json as json_response

from bot.channels.base import OnNewMessage
from bot.channels.inputs import anonymous_sender, incoming_message, json_object
from bot.core.messages import UserMessage

NDJSON = "application/x-ndjson; charset=utf-8"


def wants_stream(request: Request) -> bool:
    return request.args.get("stream", "").lower() in {"1", "true", "yes"}


async def reply(request: Request, messages: list[dict[str, Any]]) -> HTTPResponse | None:
    """The turn's messages as one JSON list, or streamed one per line."""
    if not wants_stream(request):
        return json_response(messages, ensure_ascii=False)
    response = await request.respond(content_type=NDJSON)
    for message in messages:
        await response.send(json.dumps(message, ensure_ascii=False) + "\n")
    await response.eof()
    return None


def rest_blueprint(on_new_message: OnNewMessage, name: str = "rest") -> Blueprint:
    bp = Blueprint("channel_rest", url_prefix=f"/webhooks/{name}")

    @bp.get("/")
    async def health(request: Request) -> HTTPResponse:
        return json_response({"status": "ok"})

    @bp.post("/webhook")
    async def webhook(request: Request) -> HTTPResponse | None:
        message = incoming_message(json_object(request))
        sender = anonymous_sender(message)
        messages = await on_new_message(UserMessage(message.text, sender, name, message.metadata))
        return await reply(request, messages)

    return bp
