"""``POST /webhooks/app/webhook``: the bank app's channel, with signed identity.

Same body and answer as the REST channel, plus ``Authorization: Bearer <JWT>``. The customer id
comes only from the verified token (``sub``); the conversation is then ``customer:<id>``, so a
customer continues one history across channels, and the body's ``sender`` is ignored. Without
the header the conversation is anonymous (the body's ``sender``). A header with a bad token
is a 401: a client that tried to identify must not silently become anonymous.
"""

from __future__ import annotations

from sanic import Blueprint, Request
from sanic.response import HTTPResponse

from bot.channels.base import ChannelError, OnNewMessage
from bot.channels.identity import Customer, InvalidToken, TokenKeys, verify_token
from bot.channels.inputs import anonymous_sender, incoming_message, json_object
from bot.channels.rest import reply
from bot.core.messages import UserMessage

CHANNEL = "app"


def bearer_token(request: Request) -> str | None:
    header: str | None = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ChannelError(
            401, "Authorization header must be 'Bearer <token>'", {"WWW-Authenticate": "Bearer"}
        )
    return token.strip()


def authenticate(request: Request, settings: TokenKeys) -> Customer | None:
    token = bearer_token(request)
    if token is None:
        return None
    try:
        return verify_token(token, settings)
    except InvalidToken as exc:
        raise ChannelError(
            401, str(exc), {"WWW-Authenticate": 'Bearer error="invalid_token"'}
        ) from None


def app_blueprint(on_new_message: OnNewMessage, settings: TokenKeys) -> Blueprint:
    bp = Blueprint("channel_app", url_prefix=f"/webhooks/{CHANNEL}")

    @bp.post("/webhook")
    async def webhook(request: Request) -> HTTPResponse | None:
        customer = authenticate(request, settings)
        message = incoming_message(json_object(request), sender_required=customer is None)
        if customer is None:
            user = UserMessage(message.text, anonymous_sender(message), CHANNEL, message.metadata)
        else:
            user = UserMessage(
                message.text,
                customer.conversation_id,
                CHANNEL,
                message.metadata,
                customer.customer_id,
            )
        return await reply(request, await on_new_message(user))

    return bp
