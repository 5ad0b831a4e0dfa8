"""The OpenAPI 3 document of the server (``GET /openapi.json``), written by hand."""

from __future__ import annotations

from typing import Any

from bot import __version__


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    texts = {
        400: "bad request (the message names the problem)",
        401: "missing, invalid or expired credentials",
        403: "signature check failed, or the caller may not use this conversation",
        404: "no such conversation, intent or action",
        406: "unsupported Accept",
        413: "body or text too large",
        429: "rate limit reached (see Retry-After)",
        503: "conversation busy",
    }
    return {str(c): _json(_ref("Error"), texts[c]) for c in codes}


_CONVERSATION = {
    "name": "conversation_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "maxLength": 255},
    "description": "the conversation (sender) id; verified customers are 'customer:<customer id>'",
}
_STREAM = {
    "name": "stream",
    "in": "query",
    "required": False,
    "schema": {"type": "boolean"},
    "description": "answer newline-delimited JSON (application/x-ndjson), one bot message per line",
}


def _channel(summary: str, description: str, secured: bool) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "description": description,
        "parameters": [_STREAM],
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _ref("ChannelMessage")}},
        },
        "responses": {
            "200": {
                "description": "the bot's replies",
                "content": {
                    "application/json": {"schema": {"type": "array", "items": _ref("BotMessage")}},
                    "application/x-ndjson": {"schema": _ref("BotMessage")},
                },
            },
            **(_errors(400, 401, 413, 429, 503) if secured else _errors(400, 413, 429, 503)),
        },
    }
    if secured:
        op["security"] = [{}, {"customerJwt": []}]
    return op


_API_AUTH: list[dict[str, list[str]]] = [{"authToken": []}, {"operatorToken": []}, {"apiJwt": []}]
_INCLUDE = {
    "name": "include_events",
    "in": "query",
    "required": False,
    "schema": {
        "type": "string",
        "enum": ["ALL", "APPLIED", "AFTER_RESTART", "NONE"],
        "default": "AFTER_RESTART",
    },
    "description": "which events the tracker lists (Rasa's verbosity)",
}
_OUTPUT = {
    "name": "output_channel",
    "in": "query",
    "required": False,
    "schema": {"type": "string"},
    "description": "also send the bot's messages through this channel ('socketio', "
    "'wechat', or 'latest' for the conversation's latest input channel)",
}


def _conversation_op(
    summary: str,
    responses: dict[str, Any],
    *,
    body: dict[str, Any] | None = None,
    params: tuple[dict[str, Any], ...] = (_INCLUDE,),
    codes: tuple[int, ...] = (400, 401, 403),
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "security": _API_AUTH,
        "parameters": [_CONVERSATION, *params],
        "responses": {**responses, **_errors(*codes)},
    }
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return op


def rasa_api_paths() -> dict[str, Any]:
    """Rasa's HTTP API (bot/server/rasa_api.py)."""
    events = {"oneOf": [_ref("Event"), {"type": "array", "items": _ref("Event")}]}
    with_messages = _json(
        {
            "type": "object",
            "properties": {
                "tracker": _ref("Tracker"),
                "messages": {"type": "array", "items": _ref("BotMessage")},
            },
        },
        "the tracker afterwards and the bot's messages",
    )
    return {
        "/version": {
            "get": {
                "summary": "bankbot's version (Rasa's shape)",
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "version": {"type": "string"},
                                "minimum_compatible_version": {"type": "string"},
                            },
                        },
                        "the version",
                    )
                },
            }
        },
        "/status": {
            "get": {
                "summary": "the loaded model",
                "security": _API_AUTH,
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "model_file": {"type": "string"},
                                "model_id": {"type": "string"},
                                "fingerprint": {"type": "string"},
                                "num_active_training_jobs": {"type": "integer"},
                            },
                        },
                        "the model",
                    ),
                    **_errors(401, 403),
                },
            }
        },
        "/domain": {
            "get": {
                "summary": "the domain as JSON, or YAML with 'Accept: application/x-yaml'",
                "security": _API_AUTH,
                "responses": {
                    "200": {
                        "description": "the domain",
                        "content": {
                            "application/json": {"schema": {"type": "object"}},
                            "application/x-yaml": {"schema": {"type": "string"}},
                        },
                    },
                    **_errors(401, 403, 406),
                },
            }
        },
        "/conversations/{conversation_id}/tracker": {
            "get": _conversation_op(
                "a conversation's tracker",
                {"200": _json(_ref("Tracker"), "the tracker")},
                params=(
                    _INCLUDE,
                    {
                        "name": "until",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "number"},
                        "description": "the state at this timestamp",
                    },
                ),
            )
        },
        "/conversations/{conversation_id}/tracker/events": {
            "post": _conversation_op(
                "append events (under the conversation's lock)",
                {"200": _json(_ref("Tracker"), "the tracker afterwards")},
                body=events,
                params=(
                    _INCLUDE,
                    _OUTPUT,
                    {
                        "name": "execute_side_effects",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "boolean"},
                        "description": "send appended bot messages through output_channel",
                    },
                ),
                codes=(400, 401, 403, 413, 503),
            ),
            "put": _conversation_op(
                "replace the events (the store keeps the old ones behind a restart)",
                {"200": _json(_ref("Tracker"), "the tracker afterwards")},
                body={"type": "array", "items": _ref("Event")},
                codes=(400, 401, 403, 413, 503),
            ),
        },
        "/conversations/{conversation_id}/trigger_intent": {
            "post": _conversation_op(
                "run the bot as if the customer had sent this intent",
                {"200": with_messages},
                body={
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "string"},
                        "entities": {
                            "oneOf": [
                                {"type": "object"},
                                {
                                    "type": "array",
                                    "items": {"type": "object", "required": ["entity", "value"]},
                                },
                            ]
                        },
                    },
                },
                params=(_INCLUDE, _OUTPUT),
                codes=(400, 401, 403, 404, 429, 503),
            )
        },
        "/conversations/{conversation_id}/predict": {
            "post": _conversation_op(
                "the policies' scores for the next action (nothing is run)",
                {
                    "200": _json(
                        {
                            "type": "object",
                            "properties": {
                                "scores": {
                                    "type": "array",
                                    "items": {
                                        "type": "object",
                                        "properties": {
                                            "action": {"type": "string"},
                                            "score": {"type": "number"},
                                        },
                                    },
                                },
                                "policy": {"type": "string"},
                                "confidence": {"type": "number"},
                                "tracker": _ref("Tracker"),
                            },
                        },
                        "the scores, best first",
                    )
                },
                params=(),
                codes=(400, 401, 403, 404),
            )
        },
        "/conversations/{conversation_id}/execute": {
            "post": _conversation_op(
                "run one action (nothing is predicted after it)",
                {"200": with_messages},
                body={
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "string"},
                        "policy": {"type": "string"},
                        "confidence": {"type": "number"},
                    },
                },
                params=(_INCLUDE, _OUTPUT),
                codes=(400, 401, 403, 404, 503),
            )
        },
    }


def openapi_document(max_message_chars: int = 2000) -> dict[str, Any]:
    operator: list[dict[str, list[str]]] = _API_AUTH
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "bankbot",
            "version": __version__,
            "description": "Customer channels, model and operator API of bankbot.",
        },
        "paths": {
            "/health": {
                "get": {
                    "summary": "liveness and the loaded model",
                    "responses": {"200": _json(_ref("Health"), "the server is up")},
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics of this worker",
                    "responses": {
                        "200": {
                            "description": "Prometheus text format",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "this document",
                    "responses": {"200": _json({"type": "object"}, "OpenAPI 3 document")},
                }
            },
            "/model/parse": {
                "post": {
                    "summary": "parse a text with the NLU model (Rasa's shape)",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["text"],
                                    "properties": {
                                        "text": {"type": "string", "maxLength": max_message_chars}
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": _json(_ref("ParseResult"), "the parse result"),
                        **_errors(400, 413),
                    },
                }
            },
            "/webhooks/rest/webhook": {
                "post": _channel(
                    "REST channel (Rasa-compatible, anonymous)",
                    "The conversation is the body's 'sender'. Messages over "
                    f"{max_message_chars} characters are not processed: the reply says so.",
                    secured=False,
                )
            },
            "/webhooks/app/webhook": {
                "post": _channel(
                    "App channel (signed identity)",
                    "With 'Authorization: Bearer <JWT>' the customer is the token's 'sub' and the "
                    "conversation is 'customer:<sub>' (the body's 'sender' is ignored); without "
                    "it the conversation is anonymous.",
                    secured=True,
                )
            },
            "/webhooks/wechat/webhook": {
                "get": {
                    "summary": "WeChat URL verification (signature over token, timestamp, "
                    "nonce; answers echostr)",
                    "responses": {"200": {"description": "echostr"}, **_errors(403)},
                },
                "post": {
                    "summary": "WeChat Official Account messages and events (XML, plain or "
                    "AES mode; only when the channel is configured)",
                    "responses": {
                        "200": {"description": "passive XML reply or 'success'"},
                        **_errors(400, 403, 413),
                    },
                },
            },
            "/conversations/{conversation_id}/messages": {
                "post": {
                    "summary": "log a message in a conversation without running the bot "
                    "(operators)",
                    "security": operator,
                    "parameters": [_CONVERSATION],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["text"],
                                    "properties": {
                                        "text": {"type": "string"},
                                        "sender": {
                                            "type": "string",
                                            "enum": ["user", "bot"],
                                            "default": "user",
                                        },
                                        "parse_data": {"type": "object"},
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": _json(_ref("Tracker"), "the tracker afterwards"),
                        **_errors(400, 401, 403, 413, 503),
                    },
                }
            },
            **rasa_api_paths(),
        },
        "components": {
            "securitySchemes": {
                "customerJwt": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "HS256 or RS256; 'sub' = customer id, 'exp' required",
                },
                "operatorToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "BOT_OPERATOR_TOKEN",
                },
                "authToken": {
                    "type": "apiKey",
                    "in": "query",
                    "name": "token",
                    "description": "BOT_AUTH_TOKEN (Rasa's --auth-token)",
                },
                "apiJwt": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "JWT",
                    "description": "BOT_API_JWT_SECRET (Rasa's --jwt-secret); claims "
                    "{user: {username, role}}, 'exp' required; role "
                    "'admin' for every conversation, else only "
                    "username's own",
                },
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error", "status"],
                    "properties": {"error": {"type": "string"}, "status": {"type": "integer"}},
                },
                "Health": {
                    "type": "object",
                    "properties": {
                        "status": {"type": "string", "enum": ["ok"]},
                        "model": {"type": "string"},
                    },
                },
                "ChannelMessage": {
                    "type": "object",
                    "required": ["message"],
                    "properties": {
                        "sender": {
                            "type": "string",
                            "maxLength": 255,
                            "description": "required unless a verified token is sent",
                        },
                        "message": {
                            "type": "string",
                            "description": "text, or an intent payload '/intent{...}'",
                        },
                        "metadata": {"type": "object"},
                    },
                },
                "BotMessage": {
                    "type": "object",
                    "required": ["recipient_id"],
                    "properties": {
                        "recipient_id": {"type": "string"},
                        "text": {"type": "string"},
                        "buttons": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "title": {"type": "string"},
                                    "payload": {"type": "string"},
                                },
                            },
                        },
                        "image": {"type": "string"},
                        "custom": {"type": "object"},
                    },
                },
                "ParseResult": {
                    "type": "object",
                    "properties": {
                        "text": {"type": "string"},
                        "intent": {"type": "object"},
                        "intent_ranking": {"type": "array", "items": {"type": "object"}},
                        "entities": {"type": "array", "items": {"type": "object"}},
                    },
                },
                "Event": {
                    "type": "object",
                    "required": ["event"],
                    "properties": {
                        "event": {
                            "type": "string",
                            "enum": [
                                "user",
                                "bot",
                                "action",
                                "slot",
                                "active_loop",
                                "followup",
                                "action_execution_rejected",
                                "loop_interrupted",
                                "reset_slots",
                                "restart",
                                "pause",
                                "resume",
                                "session_started",
                                "rewind",
                                "undo",
                                "user_featurization",
                            ],
                        },
                        "timestamp": {"type": "number"},
                    },
                    "additionalProperties": True,
                },
                "Tracker": {
                    "type": "object",
                    "properties": {
                        "sender_id": {"type": "string"},
                        "slots": {"type": "object"},
                        "latest_message": {"type": "object"},
                        "paused": {"type": "boolean"},
                        "events": {"type": "array", "items": {"type": "object"}},
                    },
                },
            },
        },
    }
