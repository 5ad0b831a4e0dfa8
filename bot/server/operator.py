"""Operator endpoint ``POST /conversations/{id}/messages``: add a message without running the
bot. Body ``{"text", "sender": "user" | "bot", "parse_data"?}``: ``user`` logs a customer
message (parsed unless ``parse_data`` is given, and its slot mappings applied, as Rasa does),
``bot`` logs a message from a human agent. Answers the tracker afterwards.

Authentication as the HTTP API's (:mod:`bot.server.auth`: operator token, auth token or a
Rasa-style JWT); with none configured every request is refused. The conversation's tracker
(``GET /conversations/{id}/tracker``) is served by :mod:`bot.server.rasa_api`.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import unquote

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json

from bot.agent import Agent
from bot.channels.inputs import MAX_SENDER_CHARS, clean, json_object, string_field
from bot.core import events as ev
from bot.core.actions.slot_extraction import PROTECTED_SLOTS, extract_slots
from bot.privacy import mask_value
from bot.server.auth import authorize
from bot.server.errors import ApiError
from bot.server.settings import ServerSettings

SENDERS = ("user", "bot")


def conversation_id(raw: str) -> str:
    """The path segment, percent-decoded once (Sanic leaves path parameters encoded; decoding
    twice would let ``%253A`` become ``:``)."""
    value = clean(unquote(raw))
    if not value.strip() or len(value) > MAX_SENDER_CHARS:
        raise ApiError(400, f"conversation id must be 1-{MAX_SENDER_CHARS} characters")
    return value


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)


def _check_intent(value: Any, where: str) -> None:
    if not isinstance(value, dict) or not isinstance(value.get("name"), str | None):
        raise ApiError(400, f"field '{where}' must be an object with a 'name' (a string)")
    if "confidence" in value and not _number(value["confidence"]):
        raise ApiError(400, f"field '{where}.confidence' must be a number")


def _check_entity(entity: Any, where: str) -> None:
    if not isinstance(entity, dict) or not isinstance(entity.get("entity"), str):
        raise ApiError(400, f"field '{where}' must be an object with an 'entity' name")
    value = entity.get("value")
    if not (_scalar(value) or (isinstance(value, list) and all(_scalar(v) for v in value))):
        raise ApiError(400, f"field '{where}.value' must be a string, number or list of them")
    for key in ("start", "end"):
        if key in entity and not (_number(entity[key]) and float(entity[key]).is_integer()):
            raise ApiError(400, f"field '{where}.{key}' must be an integer")
    if "confidence" in entity and not _number(entity["confidence"]):
        raise ApiError(400, f"field '{where}.confidence' must be a number")
    for key in ("role", "group", "extractor"):
        if entity.get(key) is not None and not isinstance(entity[key], str):
            raise ApiError(400, f"field '{where}.{key}' must be a string")


def check_parse_data(value: Any) -> None:
    """Operator-given parse data is replayed with the tracker: it must have the right shape
    (a 400 naming the field otherwise, never a 500 later)."""
    if not isinstance(value, dict):
        raise ApiError(400, "field 'parse_data' must be an object")
    _check_intent(value.get("intent"), "parse_data.intent")
    entities = value.get("entities", [])
    if not isinstance(entities, list):
        raise ApiError(
            400, "field 'parse_data.entities' must be a list of objects with an 'entity' name"
        )
    for i, entity in enumerate(entities):
        _check_entity(entity, f"parse_data.entities[{i}]")
    ranking = value.get("intent_ranking", [])
    if not isinstance(ranking, list):
        raise ApiError(400, "field 'parse_data.intent_ranking' must be a list of intents")
    for i, intent in enumerate(ranking):
        _check_intent(intent, f"parse_data.intent_ranking[{i}]")
    if "text" in value and not isinstance(value["text"], str):
        raise ApiError(400, "field 'parse_data.text' must be a string")


def operator_blueprint(agent: Agent, settings: ServerSettings) -> Blueprint:
    bp = Blueprint("operator", url_prefix="/conversations")
    processor = agent.processor

    @bp.post("/<conversation:str>/messages")
    async def add_message(request: Request, conversation: str) -> HTTPResponse:
        sender_id = conversation_id(conversation)
        caller = authorize(request, settings, sender_id)
        data = json_object(request)
        text = string_field(data, "text", max_chars=settings.max_message_chars)
        assert text is not None
        who = data.get("sender", "user")
        if who not in SENDERS:
            raise ApiError(400, f"field 'sender' must be one of {', '.join(SENDERS)}; got {who!r}")
        if who == "bot" and not caller.admin:  # a user must not speak as a human agent
            raise ApiError(
                403, "only operators (or admins) may log the bot's or an agent's messages"
            )
        now = time.time()
        event: dict[str, Any]
        if who == "user":
            parse_data = data.get("parse_data")
            if parse_data is None:
                parse_data = {k: v for k, v in processor.parse(text).items() if k != "text"}
            else:
                check_parse_data(parse_data)
            parse_data = {
                **parse_data,
                "entities": [
                    e
                    for e in parse_data.get("entities") or []
                    if e.get("entity") not in PROTECTED_SLOTS
                ],
            }
            event = ev.user(text, parse_data, input_channel="operator", timestamp=now)
        else:
            event = ev.bot(text, {}, {"operator": True}, timestamp=now)
        async with processor.lock(sender_id):
            tracker = await processor.get_tracker(sender_id)
            tracker.update(event)
            events = [event]
            if who == "user":  # as Rasa: the slot mappings run on a logged user message
                events += [
                    {**e, "timestamp": now} for e in extract_slots(tracker, processor.domain)
                ]
                tracker.extend(events[1:])
            await processor.tracker_store.append(sender_id, events)
        # An export of the conversation: identifiers masked whatever the stored-text policy.
        state = tracker.current_state()
        masked: dict[str, Any] = mask_value(state)
        return json({**masked, "sender_id": state.get("sender_id")}, ensure_ascii=False)

    return bp
