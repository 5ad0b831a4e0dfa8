"""Rasa's socket.io channel (``socketio:`` in credentials.yml), so that rasa-webchat and
similar widgets connect unchanged.

A python-socketio ``AsyncServer`` on the Sanic app at ``socketio_path`` (``/socket.io``):

- ``session_request {"session_id"?}`` → ``session_confirm <session id>`` (a fresh one when the
  client sends none);
- ``<user_message_evt> {"message", "session_id", "metadata"}`` (``user_uttered``) → the bot's
  answers, each emitted as ``<bot_message_evt>`` (``bot_uttered``) in Rasa's shapes:
  ``{"text"}``, ``{"text", "quick_replies": [{"content_type": "text", "title", "payload"}]}``
  for buttons, ``{"attachment": {"type": "image", "payload": {"src"}}}`` for images,
  ``{"attachment": ...}``, generic templates for ``elements``, and a custom payload as it is
  (Rasa's ``{"data": ...}`` form emits its ``data``). Texts are split at blank lines as Rasa
  does, the buttons going with the last part.

With ``jwt_key`` (Rasa's option) a connection must bring ``auth: {"token": <JWT>}`` signed
with it (``jwt_method``, HS256 by default); it authenticates the widget, not the customer.

The conversation is the session id with ``session_persistence: true`` (a reconnecting widget
keeps its history; every socket of the session gets the answers), else the socket id. Either
way it is anonymous, like the REST channel: ids that pose as verified customers are refused.
With persistence a socket may only speak in the session it was confirmed for.

A payload that cannot be used is answered with an ``error`` event
``{"error": "<what is wrong>", "status": <code>}`` and changes nothing; a refused message (rate
limit, busy conversation) likewise. The server never fails on a client's payload.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import socketio
from sanic import Sanic

from bot.channels.base import BotMessages, MessageRefused, OnNewMessage
from bot.channels.identity import InvalidToken, decode_token
from bot.core import strict_json
from bot.core.messages import UserMessage

logger = logging.getLogger(__name__)

CHANNEL = "socketio"
ERROR_EVENT = "error"
MAX_SESSION_CHARS = 255


@dataclass(frozen=True)
class SocketIOSettings:
    """``socketio:`` of credentials.yml (Rasa's keys)."""

    user_message_evt: str = "user_uttered"
    bot_message_evt: str = "bot_uttered"
    session_persistence: bool = False
    socketio_path: str = "/socket.io"
    namespace: str | None = None
    metadata_key: str = "metadata"
    # None: any origin (as Rasa, for widgets embedded on the bank's pages); or a list.
    cors_allowed_origins: tuple[str, ...] | None = None
    # Rasa's jwt_key / jwt_method: a connection must bring auth {"token": <JWT>} signed so.
    # It authenticates the widget only; the conversation stays anonymous.
    jwt_key: str | None = None
    jwt_method: str = "HS256"

    @classmethod
    def from_credentials(cls, raw: dict[str, Any] | None) -> SocketIOSettings:
        raw = raw or {}

        def text(key: str, default: str) -> str:
            value = raw.get(key, default)
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"socketio.{key} must be a non-empty string, got {value!r}")
            return value

        namespace = raw.get("namespace")
        if namespace is not None and not isinstance(namespace, str):
            raise ValueError(f"socketio.namespace must be a string, got {namespace!r}")
        persistence = raw.get("session_persistence", False)
        if not isinstance(persistence, bool):
            raise ValueError(
                f"socketio.session_persistence must be true or false, got {persistence!r}"
            )
        origins = raw.get("cors_allowed_origins")
        if isinstance(origins, str):
            origins = None if origins == "*" else [origins]
        if origins is not None and not (
            isinstance(origins, list) and all(isinstance(o, str) for o in origins)
        ):
            raise ValueError("socketio.cors_allowed_origins must be '*' or a list of origins")
        jwt_key = raw.get("jwt_key")
        if jwt_key is not None and (not isinstance(jwt_key, str) or not jwt_key):
            raise ValueError("socketio.jwt_key must be a non-empty string")
        return cls(
            jwt_key=jwt_key,
            jwt_method=text("jwt_method", "HS256").upper(),
            user_message_evt=text("user_message_evt", "user_uttered"),
            bot_message_evt=text("bot_message_evt", "bot_uttered"),
            session_persistence=persistence,
            socketio_path=text("socketio_path", "/socket.io"),
            namespace=namespace or None,
            metadata_key=text("metadata_key", "metadata"),
            cors_allowed_origins=tuple(origins) if origins is not None else None,
        )


def _split(text: str) -> list[str]:
    parts = [p for p in text.strip().split("\n\n") if p.strip()]
    return parts or [text]


def socket_messages(message: dict[str, Any]) -> list[dict[str, Any]]:
    """One bot message (REST shape) as the payloads Rasa's socket.io channel emits."""
    out: list[dict[str, Any]] = []
    text = message.get("text")
    buttons = message.get("quick_replies") or message.get("buttons")
    if isinstance(text, str) and text:
        parts: list[dict[str, Any]] = [{"text": part} for part in _split(text)]
        if buttons:
            parts[-1]["quick_replies"] = [
                {"content_type": "text", "title": b.get("title"), "payload": b.get("payload")}
                for b in buttons
                if isinstance(b, dict)
            ]
        out.extend(parts)
    elif buttons:
        out.append(
            {
                "text": "",
                "quick_replies": [
                    {"content_type": "text", "title": b.get("title"), "payload": b.get("payload")}
                    for b in buttons
                    if isinstance(b, dict)
                ],
            }
        )
    custom = message.get("custom")
    if custom:
        out.append(
            custom["data"] if isinstance(custom, dict) and set(custom) == {"data"} else custom
        )
    if message.get("image"):
        out.append({"attachment": {"type": "image", "payload": {"src": message["image"]}}})
    if message.get("attachment"):
        out.append({"attachment": message["attachment"]})
    for element in message.get("elements") or []:
        out.append(
            {
                "attachment": {
                    "type": "template",
                    "payload": {"template_type": "generic", "elements": element},
                }
            }
        )
    return out


class SocketIOChannel:
    """The channel; ``attach(app)`` mounts it, ``push`` sends outside a turn (HTTP API)."""

    name = CHANNEL

    def __init__(
        self,
        settings: SocketIOSettings,
        on_new_message: OnNewMessage,
        refuse_session: Callable[[str], str | None],
        *,
        max_payload_bytes: int = 64 * 1024,
    ) -> None:
        """``refuse_session(id)`` is why a session id may not be used (None: it may)."""
        self.settings = settings
        self.on_new_message = on_new_message
        self.refuse_session = refuse_session
        origins: Any = (
            list(settings.cors_allowed_origins)
            if (settings.cors_allowed_origins is not None)
            else "*"
        )
        self.sio = socketio.AsyncServer(
            async_mode="sanic",
            cors_allowed_origins=origins,
            max_http_buffer_size=max_payload_bytes,
            logger=False,
            engineio_logger=False,
        )
        ns = settings.namespace
        self.sio.on("connect", self._connect, namespace=ns)
        self.sio.on("session_request", self._session_request, namespace=ns)
        self.sio.on(settings.user_message_evt, self._user_message, namespace=ns)

    def attach(self, app: Sanic[Any, Any]) -> None:
        self.sio.attach(app, socketio_path=self.settings.socketio_path)

        @app.before_server_stop
        async def stop_socketio(app: Sanic[Any, Any]) -> None:
            await self.sio.shutdown()

    # -- events ----------------------------------------------------------------------------

    async def _connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> bool:
        """With ``jwt_key`` a connection without a valid ``auth.token`` is refused (Rasa)."""
        key = self.settings.jwt_key
        if key is None:
            return True
        token = auth.get("token") if isinstance(auth, dict) else None
        if not isinstance(token, str) or not token.strip():
            return False
        token = token.strip().removeprefix("Bearer ").strip()
        try:  # as Rasa: the signature, and exp when the token has one
            decode_token(token, key, self.settings.jwt_method, require=())
        except InvalidToken as exc:
            logger.info("socket.io connection %s refused: %s", sid, exc)
            return False
        return True

    async def _error(self, sid: str, status: int, message: str) -> None:
        await self.sio.emit(
            ERROR_EVENT,
            {"error": message, "status": status},
            to=sid,
            namespace=self.settings.namespace,
        )

    async def _confirm(self, sid: str, requested: Any) -> str | None:
        """Confirm a session for the socket: the requested id when it may be used, else a
        fresh one (and an error event saying why)."""
        session_id: str | None = None
        if isinstance(requested, str) and requested.strip():
            reason = (
                f"session_id must be at most {MAX_SESSION_CHARS} characters"
                if len(requested) > MAX_SESSION_CHARS
                else self.refuse_session(requested)
            )
            if reason is None:
                session_id = requested
            else:
                await self._error(sid, 400, f"{reason}; a new session was started")
        elif requested is not None and not isinstance(requested, str):
            await self._error(sid, 400, "session_id must be a string; a new session was started")
        session_id = session_id or uuid.uuid4().hex
        ns = self.settings.namespace
        if self.settings.session_persistence:
            previous = (await self.sio.get_session(sid, namespace=ns)).get("session_id")
            if previous and previous != session_id:
                await self.sio.leave_room(sid, previous, namespace=ns)
            await self.sio.enter_room(sid, session_id, namespace=ns)
        await self.sio.save_session(sid, {"session_id": session_id}, namespace=ns)
        await self.sio.emit("session_confirm", session_id, to=sid, namespace=ns)
        return session_id

    async def _session_request(self, sid: str, data: Any = None) -> None:
        try:
            requested = data.get("session_id") if isinstance(data, dict) else None
            await self._confirm(sid, requested)
        except Exception:  # a client's payload never fails the server
            logger.exception("socket.io session_request of %s failed", sid)

    async def _user_message(self, sid: str, data: Any = None) -> None:
        try:
            await self._handle(sid, data)
        except Exception:
            logger.exception("socket.io message of %s failed", sid)
            await self._error(sid, 500, "internal server error")

    async def _handle(self, sid: str, data: Any) -> None:
        settings = self.settings
        if not isinstance(data, dict):
            await self._error(
                sid,
                400,
                f"{settings.user_message_evt} needs an object "
                '{"message", "session_id", "metadata"}',
            )
            return
        text = data.get("message")
        if not isinstance(text, str) or not text.strip():
            await self._error(sid, 400, "field 'message' must be a non-empty string")
            return
        metadata = data.get(settings.metadata_key)
        if isinstance(metadata, str):  # Rasa accepts metadata as a JSON string too
            try:
                metadata = strict_json.loads(metadata)
            except (ValueError, RecursionError):
                metadata = None
        if metadata is None:
            metadata = {}
        if not isinstance(metadata, dict):
            await self._error(sid, 400, f"field '{settings.metadata_key}' must be an object")
            return
        room = sid
        if settings.session_persistence:
            confirmed = (await self.sio.get_session(sid, namespace=settings.namespace)).get(
                "session_id"
            )
            given = data.get("session_id")
            if confirmed is None:
                if not isinstance(given, str) or not given.strip():
                    await self._error(
                        sid,
                        400,
                        "no session: send session_request first (or "
                        "a 'session_id' with the message)",
                    )
                    return
                confirmed = await self._confirm(sid, given)
                if confirmed != given:
                    return  # refused: the client was told and has a fresh session now
            elif given is not None and given != confirmed:
                await self._error(
                    sid,
                    403,
                    "this socket's session is another one; send session_request to change sessions",
                )
                return
            room = str(confirmed)
        message = UserMessage(text, room, CHANNEL, metadata)
        try:
            replies = await self.on_new_message(message)
        except MessageRefused as exc:
            await self._error(sid, exc.status, exc.message)
            return
        await self.send(room, replies)

    # -- output ----------------------------------------------------------------------------

    async def send(self, room: str, replies: BotMessages) -> None:
        for reply in replies:
            for payload in socket_messages(reply):
                await self.sio.emit(
                    self.settings.bot_message_evt,
                    payload,
                    to=room,
                    namespace=self.settings.namespace,
                )

    async def push(self, conversation_id: str, replies: BotMessages) -> None:
        """Messages for a conversation from outside a turn (``output_channel=socketio``):
        every socket in its room (the session with persistence, else the socket) gets them."""
        await self.send(conversation_id, replies)
