"""The OpenAPI 3 document of the server (``GET /openapi.json``), written by hand."""

from __future__ import annotations

from typing import Any

from bot import __version__


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    texts = {400: "bad request (the message names the problem)",
             401: "missing, invalid or expired credentials",
             403: "signature check failed", 413: "body or text too large",
             429: "rate limit reached (see Retry-After)", 503: "conversation busy"}
    return {str(c): _json(_ref("Error"), texts[c]) for c in codes}


_CONVERSATION = {"name": "conversation_id", "in": "path", "required": True,
                 "schema": {"type": "string", "maxLength": 255},
                 "description": "the conversation (sender) id; verified customers are "
                                "'customer:<customer id>'"}
_STREAM = {"name": "stream", "in": "query", "required": False,
           "schema": {"type": "boolean"},
           "description": "answer newline-delimited JSON (application/x-ndjson), one bot "
                          "message per line"}


def _channel(summary: str, description: str, secured: bool) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary, "description": description, "parameters": [_STREAM],
        "requestBody": {"required": True, "content": {"application/json": {
            "schema": _ref("ChannelMessage")}}},
        "responses": {
            "200": {"description": "the bot's replies", "content": {
                "application/json": {"schema": {"type": "array", "items": _ref("BotMessage")}},
                "application/x-ndjson": {"schema": _ref("BotMessage")}}},
            **(_errors(400, 401, 413, 429, 503) if secured else _errors(400, 413, 429, 503)),
        },
    }
    if secured:
        op["security"] = [{}, {"customerJwt": []}]
    return op


def openapi_document(max_message_chars: int = 2000) -> dict[str, Any]:
    operator: list[dict[str, list[str]]] = [{"operatorToken": []}]
    return {
        "openapi": "3.0.3",
        "info": {"title": "bankbot", "version": __version__,
                 "description": "Customer channels, model and operator API of bankbot."},
        "paths": {
            "/health": {"get": {"summary": "liveness and the loaded model", "responses": {
                "200": _json(_ref("Health"), "the server is up")}}},
            "/metrics": {"get": {"summary": "Prometheus metrics of this worker", "responses": {
                "200": {"description": "Prometheus text format",
                        "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
            "/openapi.json": {"get": {"summary": "this document", "responses": {
                "200": _json({"type": "object"}, "OpenAPI 3 document")}}},
            "/model/parse": {"post": {
                "summary": "parse a text with the NLU model (Rasa's shape)",
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["text"],
                    "properties": {"text": {"type": "string",
                                            "maxLength": max_message_chars}}}}}},
                "responses": {"200": _json(_ref("ParseResult"), "the parse result"),
                              **_errors(400, 413)}}},
            "/webhooks/rest/webhook": {"post": _channel(
                "REST channel (Rasa-compatible, anonymous)",
                "The conversation is the body's 'sender'. Messages over "
                f"{max_message_chars} characters are not processed: the reply says so.",
                secured=False)},
            "/webhooks/app/webhook": {"post": _channel(
                "App channel (signed identity)",
                "With 'Authorization: Bearer <JWT>' the customer is the token's 'sub' and the "
                "conversation is 'customer:<sub>' (the body's 'sender' is ignored); without "
                "it the conversation is anonymous.", secured=True)},
            "/webhooks/wechat/webhook": {
                "get": {
                    "summary": "WeChat URL verification (signature over token, timestamp, "
                    "nonce; answers echostr)",
                    "responses": {"200": {"description": "echostr"}, **_errors(403)},
                },
                "post": {
                    "summary": "WeChat Official Account messages and events (XML, plain or "
                    "AES mode; only when the channel is configured)",
                    "responses": {"200": {"description": "passive XML reply or 'success'"},
                                  **_errors(400, 403, 413)},
                },
            },
            "/conversations/{conversation_id}/tracker": {"get": {
                "summary": "a conversation's tracker (operators)", "security": operator,
                "parameters": [_CONVERSATION],
                "responses": {"200": _json(_ref("Tracker"), "the tracker"), **_errors(400, 401)},
            }},
            "/conversations/{conversation_id}/messages": {"post": {
                "summary": "log a message in a conversation without running the bot "
                           "(operators)",
                "security": operator, "parameters": [_CONVERSATION],
                "requestBody": {"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["text"], "properties": {
                        "text": {"type": "string"},
                        "sender": {"type": "string", "enum": ["user", "bot"],
                                   "default": "user"},
                        "parse_data": {"type": "object"}}}}}},
                "responses": {"200": _json(_ref("Tracker"), "the tracker afterwards"),
                              **_errors(400, 401, 413, 503)}}},
        },
        "components": {
            "securitySchemes": {
                "customerJwt": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                                "description": "HS256 or RS256; 'sub' = customer id, 'exp' "
                                               "required"},
                "operatorToken": {"type": "http", "scheme": "bearer",
                                  "description": "BOT_OPERATOR_TOKEN"},
            },
            "schemas": {
                "Error": {"type": "object", "required": ["error", "status"], "properties": {
                    "error": {"type": "string"}, "status": {"type": "integer"}}},
                "Health": {"type": "object", "properties": {
                    "status": {"type": "string", "enum": ["ok"]}, "model": {"type": "string"}}},
                "ChannelMessage": {"type": "object", "required": ["message"], "properties": {
                    "sender": {"type": "string", "maxLength": 255,
                               "description": "required unless a verified token is sent"},
                    "message": {"type": "string",
                                "description": "text, or an intent payload '/intent{...}'"},
                    "metadata": {"type": "object"}}},
                "BotMessage": {"type": "object", "required": ["recipient_id"], "properties": {
                    "recipient_id": {"type": "string"}, "text": {"type": "string"},
                    "buttons": {"type": "array", "items": {"type": "object", "properties": {
                        "title": {"type": "string"}, "payload": {"type": "string"}}}},
                    "image": {"type": "string"}, "custom": {"type": "object"}}},
                "ParseResult": {"type": "object", "properties": {
                    "text": {"type": "string"}, "intent": {"type": "object"},
                    "intent_ranking": {"type": "array", "items": {"type": "object"}},
                    "entities": {"type": "array", "items": {"type": "object"}}}},
                "Tracker": {"type": "object", "properties": {
                    "sender_id": {"type": "string"}, "slots": {"type": "object"},
                    "latest_message": {"type": "object"}, "paused": {"type": "boolean"},
                    "events": {"type": "array", "items": {"type": "object"}}}},
            },
        },
    }
