"""Rasa's HTTP API, the routes integrations call (``docs/server.md``):

- ``GET /version``, ``GET /status``, ``GET /domain`` (JSON, or YAML when ``Accept`` asks);
- ``GET /conversations/{id}/tracker`` (``include_events``, ``until``);
- ``POST /conversations/{id}/tracker/events`` (append), ``PUT`` (replace);
- ``POST /conversations/{id}/trigger_intent``, ``/predict``, ``/execute``.

Authentication (:mod:`bot.server.auth`): the auth token (``?token=``), the operator token, or a
Rasa-style JWT (``user.role == admin`` for everything, else ``user.username`` = the
conversation). Writes happen under the conversation's lock, as turns do.

Identity stays with the channels: no event may set the verified ``customer_id`` slot, and an
intent triggered here runs with the customer the conversation's channel verified last.
"""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

import yaml
from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json, text

from bot import __version__
from bot.agent import Agent
from bot.channels.inputs import clean_any, json_body, json_object
from bot.core import events as ev
from bot.core.actions.responses import bot_message
from bot.core.actions.slot_extraction import PROTECTED_SLOTS
from bot.core.events import Event
from bot.core.messages import UserMessage
from bot.core.tracker import LISTEN, DialogueStateTracker, applied_events
from bot.privacy import mask_value
from bot.server.api import model_id
from bot.server.auth import authorize
from bot.server.errors import ApiError
from bot.server.operator import check_parse_data, conversation_id
from bot.server.settings import ServerSettings
from bot.server.turns import TurnRunner

MINIMUM_COMPATIBLE_VERSION = "0.1.0"  # the oldest bankbot whose models this one loads
VERBOSITIES = ("ALL", "APPLIED", "AFTER_RESTART", "NONE")
EXTERNAL_PREFIX = "EXTERNAL: "  # Rasa's text of a triggered intent
YAML_TYPE = "application/x-yaml"
REPLACED = "replaced_by_api"  # metadata of the restart that a PUT of the events writes

# A channel that can send messages to a conversation outside a turn (socket.io, WeChat):
# ``push(conversation_id, messages in REST shape)``.
Pusher = Callable[[str, list[dict[str, Any]]], Awaitable[None]]

# Event kinds accepted from the API, with their typed fields: (name, types, required).
_STR = (str,)
_OPT_STR = (str, type(None))
_NUMBER = (int, float, type(None))
_FIELDS: dict[str, tuple[tuple[str, tuple[type, ...], bool], ...]] = {
    "user": (
        ("text", _OPT_STR, False),
        ("parse_data", (dict,), False),
        ("input_channel", _OPT_STR, False),
        ("message_id", _OPT_STR, False),
    ),
    "bot": (("text", _OPT_STR, False), ("data", (dict,), False)),
    "action": (("name", _STR, True), ("policy", _OPT_STR, False), ("confidence", _NUMBER, False)),
    "slot": (("name", _STR, True),),
    "active_loop": (("name", _OPT_STR, False),),
    "followup": (("name", _STR, True),),
    "action_execution_rejected": (
        ("name", _STR, True),
        ("policy", _OPT_STR, False),
        ("confidence", _NUMBER, False),
    ),
    "loop_interrupted": (("is_interrupted", (bool,), True),),
    "reset_slots": (),
    "restart": (),
    "pause": (),
    "resume": (),
    "session_started": (),
    "rewind": (),
    "undo": (),
    "user_featurization": (),
}


def verbosity(request: Request) -> str:
    value = (request.args.get("include_events") or "AFTER_RESTART").upper()
    if value not in VERBOSITIES:
        raise ApiError(
            400, f"include_events must be one of {', '.join(VERBOSITIES)}; got {value!r}"
        )
    return value


def after_latest_restart(events: list[Event]) -> list[Event]:
    for i in range(len(events) - 1, -1, -1):
        if events[i].get("event") == "restart":
            return events[i + 1 :]
    return list(events)


def state(tracker: DialogueStateTracker, include: str) -> dict[str, Any]:
    """The tracker JSON with the events ``include_events`` asks for (Rasa's verbosity), with
    ID, phone and card numbers masked (under the encrypt policy the tracker holds the
    originals; this view is an export: docs/persistence.md, "Personal data at rest")."""
    body = tracker.current_state()
    if include == "AFTER_RESTART":
        body["events"] = after_latest_restart(tracker.events)
    elif include == "APPLIED":
        body["events"] = applied_events(tracker.events)
    elif include == "NONE":
        body["events"] = None
    masked: dict[str, Any] = mask_value(body)
    return {**masked, "sender_id": body.get("sender_id")} if masked is not body else body


def _until(request: Request) -> float | None:
    raw = request.args.get("until")
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise ApiError(400, f"until must be a timestamp (seconds), got {raw!r}") from None
    if not math.isfinite(value):
        raise ApiError(400, "until must be a finite timestamp")
    return value


def _kind(value: Any) -> str:
    return type(value).__name__ if value is not None else "null"


def parse_events(data: Any, now: float) -> list[Event]:
    """Rasa events from a request body (one event or a list), checked field by field."""
    items = data if isinstance(data, list) else [data]
    if not items:
        raise ApiError(400, "no events in the request body")
    out: list[Event] = []
    for i, item in enumerate(items):
        where = f"event {i}" if isinstance(data, list) else "the event"
        if not isinstance(item, dict):
            raise ApiError(400, f"{where} must be an object with an 'event' key, got {_kind(item)}")
        kind = item.get("event")
        if kind not in _FIELDS:
            known = ", ".join(sorted(_FIELDS))
            raise ApiError(
                400, f"{where}: unknown or unsupported event type {kind!r}; one of {known}"
            )
        event: Event = {"event": kind}
        for name, types, required in _FIELDS[kind]:
            if name not in item:
                if required:
                    raise ApiError(400, f"{where} ({kind}) needs '{name}'")
                continue
            if not isinstance(item[name], types) or (
                isinstance(item[name], bool) and (bool not in types)
            ):
                raise ApiError(
                    400, f"{where} ({kind}): '{name}' has the wrong type ({_kind(item[name])})"
                )
            event[name] = item[name]
        stamp = item.get("timestamp")
        if stamp is None:
            stamp = now
        elif isinstance(stamp, bool) or not isinstance(stamp, int | float):
            raise ApiError(400, f"{where}: 'timestamp' must be a number")
        event["timestamp"] = float(stamp)
        metadata = item.get("metadata")
        if metadata is not None:
            if not isinstance(metadata, dict):
                raise ApiError(400, f"{where}: 'metadata' must be an object")
            event["metadata"] = metadata
        if kind == "slot":
            if event["name"] in PROTECTED_SLOTS:
                raise ApiError(
                    400,
                    f"{where}: slot '{event['name']}' is the verified customer "
                    "and is set only by the channel that verified them",
                )
            event["value"] = item.get("value")
        elif kind == "user":
            parse_data = dict(
                event.get("parse_data")
                or {"intent": {"name": None, "confidence": 0.0}, "entities": []}
            )
            check_parse_data(parse_data)
            parse_data["entities"] = [
                e
                for e in parse_data.get("entities") or []
                if e.get("entity") not in PROTECTED_SLOTS
            ]
            event["parse_data"] = parse_data
            event.setdefault("text", None)
            event.setdefault("input_channel", None)
            event.setdefault("message_id", None)
            event.setdefault("metadata", {})
        elif kind == "bot":
            event.setdefault("text", None)
            event.setdefault("data", {})
            event.setdefault("metadata", {})
        out.append(clean_any(event))
    return out


def _begins_with_session_start(events: list[Event]) -> bool:
    return (
        len(events) >= 2
        and events[0].get("event") == "action"
        and events[0].get("name") == "action_session_start"
        and events[1].get("event") == "session_started"
    )


def _session_start(now: float) -> list[Event]:
    return [
        ev.action("action_session_start", timestamp=now),
        ev.session_started(timestamp=now),
        ev.action(LISTEN, timestamp=now),
    ]


def _triggered_entities(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if isinstance(value, dict):
        pairs = list(value.items())
    elif isinstance(value, list):
        pairs = []
        for item in value:
            if not (
                isinstance(item, dict) and isinstance(item.get("entity"), str) and "value" in item
            ):
                raise ApiError(
                    400,
                    "field 'entities' must be an object {entity: value} or a "
                    'list of {"entity", "value"}',
                )
            pairs.append((item["entity"], item["value"]))
    else:
        raise ApiError(
            400,
            'field \'entities\' must be an object {entity: value} or a list of {"entity", "value"}',
        )
    return [
        {"entity": str(name), "value": v, "start": 0, "end": 0, "extractor": "http_api"}
        for name, v in pairs
    ]


def _name_field(data: dict[str, Any], what: str) -> str:
    """The request's ``name`` (of an intent or an action): a non-empty string."""
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ApiError(400, f"field 'name' (the {what}) must be a non-empty string")
    return name


def _number_field(data: dict[str, Any], name: str) -> float | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ApiError(400, f"field '{name}' must be a number")
    return float(value)


def rasa_api_blueprint(
    agent: Agent,
    settings: ServerSettings,
    runner: TurnRunner,
    pushers: dict[str, Pusher] | None = None,
) -> Blueprint:
    bp = Blueprint("rasa_api")
    processor = agent.processor
    pushers = pushers if pushers is not None else {}

    def output_channel(request: Request, tracker: DialogueStateTracker) -> str | None:
        """The channel ``?output_channel=`` names (``latest``: the conversation's latest input
        channel), when it can send outside a turn."""
        name = request.args.get("output_channel")
        if name == "latest":
            name = tracker.latest_input_channel
        return name if name in pushers else None

    async def push(channel: str | None, conversation: str, messages: list[dict[str, Any]]) -> None:
        if channel is not None and messages:
            await pushers[channel](conversation, messages)

    async def existing(conversation: str) -> DialogueStateTracker:
        if not await processor.tracker_store.exists(conversation):
            raise ApiError(404, f"conversation {conversation!r} not found")
        return await processor.get_tracker(conversation)

    @bp.get("/version")
    async def version(request: Request) -> HTTPResponse:
        return json(
            {"version": __version__, "minimum_compatible_version": MINIMUM_COMPATIBLE_VERSION}
        )

    @bp.get("/status")
    async def status(request: Request) -> HTTPResponse:
        authorize(request, settings)
        return json(
            {
                "model_file": agent.model.path.name,
                "model_id": model_id(agent),
                "fingerprint": agent.model.meta.fingerprint,
                "num_active_training_jobs": 0,
            }
        )

    @bp.get("/domain")
    async def domain(request: Request) -> HTTPResponse:
        authorize(request, settings)
        accept = (request.headers.get("accept") or "").lower()
        data = processor.domain.as_rasa_dict()
        if ("yaml" in accept or "yml" in accept) and "json" not in accept:
            return text(
                yaml.safe_dump(data, allow_unicode=True, sort_keys=False), content_type=YAML_TYPE
            )
        if not accept or "json" in accept or "*/*" in accept or "application/*" in accept:
            return json(data, ensure_ascii=False)
        raise ApiError(
            406,
            f"the domain is served as JSON ('Accept: application/json') or "
            f"YAML ('Accept: {YAML_TYPE}'), not {accept!r}",
        )

    @bp.get("/conversations/<conversation:str>/tracker")
    async def tracker(request: Request, conversation: str) -> HTTPResponse:
        sender = conversation_id(conversation)
        authorize(request, settings, sender)
        include, until = verbosity(request), _until(request)
        current = await processor.get_tracker(sender)
        if until is not None:
            current = DialogueStateTracker.from_events(
                sender,
                [e for e in current.events if float(e.get("timestamp") or 0) <= until],
                processor.domain,
            )
        return json(state(current, include), ensure_ascii=False)

    @bp.post("/conversations/<conversation:str>/tracker/events")
    async def append_events(request: Request, conversation: str) -> HTTPResponse:
        sender = conversation_id(conversation)
        authorize(request, settings, sender)
        include = verbosity(request)
        now = time.time()
        events = parse_events(json_body(request), now)
        async with runner.in_flight_scope(), processor.lock(sender):
            if not _begins_with_session_start(events) and not (
                await processor.tracker_store.count(sender)
            ):
                events = [*_session_start(now), *events]
            await processor.tracker_store.append(sender, events)
            current = await processor.get_tracker(sender)
        if request.args.get("execute_side_effects", "").lower() in {"1", "true", "yes"}:
            await push(
                output_channel(request, current),
                sender,
                [bot_message(e, sender) for e in events if e["event"] == "bot"],
            )
        return json(state(current, include), ensure_ascii=False)

    @bp.put("/conversations/<conversation:str>/tracker/events")
    async def replace_events(request: Request, conversation: str) -> HTTPResponse:
        sender = conversation_id(conversation)
        authorize(request, settings, sender)
        include = verbosity(request)
        now = time.time()
        data = json_body(request)
        events = parse_events(data, now) if data != [] else []
        # The store is append-only (an audit trail): a restart marks where the replacement
        # begins, so the tracker's state is exactly the given events'.
        marker = {**ev.restart(timestamp=now), "metadata": {REPLACED: True}}
        async with runner.in_flight_scope(), processor.lock(sender):
            await processor.tracker_store.append(sender, [marker, *events])
            current = await processor.get_tracker(sender)
        return json(state(current, include), ensure_ascii=False)

    @bp.post("/conversations/<conversation:str>/trigger_intent")
    async def trigger_intent(request: Request, conversation: str) -> HTTPResponse:
        sender = conversation_id(conversation)
        authorize(request, settings, sender)
        include = verbosity(request)
        data = json_object(request)
        name = _name_field(data, "intent")
        if name not in processor.domain.intents:
            raise ApiError(404, f"the intent {name!r} does not exist in the domain")
        entities = clean_any(_triggered_entities(data.get("entities")))
        before = await processor.get_tracker(sender)
        channel = output_channel(request, before)
        intent = {"name": name, "confidence": 1.0}
        message_text = f"{EXTERNAL_PREFIX}{name}"
        parse = {
            "text": message_text,
            "intent": intent,
            "intent_ranking": [intent],
            "entities": entities,
        }
        verified = before.slots.get("customer_id")  # as the conversation's channel set it
        message = UserMessage(
            message_text,
            sender,
            channel or "http_api",
            {"triggered_by": "http_api"},
            verified if isinstance(verified, str) else None,
        )
        messages = await runner.run(message, parse)
        await push(channel, sender, messages)
        current = await processor.get_tracker(sender)
        return json({"tracker": state(current, include), "messages": messages}, ensure_ascii=False)

    @bp.post("/conversations/<conversation:str>/predict")
    async def predict(request: Request, conversation: str) -> HTTPResponse:
        sender = conversation_id(conversation)
        authorize(request, settings, sender)
        current = await existing(sender)
        best = processor.predict(current)
        domain = processor.domain
        scores = dict.fromkeys(domain.action_names, 0.0)
        states = current.past_states()
        for policy in processor.policies.policies:
            guess = policy.predict(current, states, domain)
            if guess is not None:
                scores[guess.action] = max(scores.get(guess.action, 0.0), guess.confidence)
        scores[best.action] = max(scores.get(best.action, 0.0), best.confidence)
        ranked = [
            {"action": a, "score": s}
            for a, s in sorted(scores.items(), key=lambda item: (-item[1], item[0]))
        ]
        return json(
            {
                "scores": ranked,
                "policy": best.policy,
                "confidence": best.confidence,
                "tracker": state(current, "AFTER_RESTART"),
            },
            ensure_ascii=False,
        )

    @bp.post("/conversations/<conversation:str>/execute")
    async def execute(request: Request, conversation: str) -> HTTPResponse:
        sender = conversation_id(conversation)
        authorize(request, settings, sender)
        include = verbosity(request)
        data = json_object(request)
        name = _name_field(data, "action")
        policy = data.get("policy")
        if policy is not None and not isinstance(policy, str):
            raise ApiError(400, "field 'policy' must be a string")
        confidence = _number_field(data, "confidence")
        if not processor.knows_action(name):
            raise ApiError(
                404, f"unknown action {name!r}: not a response, form, default or custom action"
            )
        before = await existing(sender)
        channel = output_channel(request, before)
        async with runner.in_flight_scope():
            result = await processor.execute_action(
                sender, name, policy=policy, confidence=confidence, input_channel=channel
            )
        await push(channel, sender, result.messages)
        current = await processor.get_tracker(sender)
        return json(
            {"tracker": state(current, include), "messages": result.messages}, ensure_ascii=False
        )

    return bp
