"""The web chat page (``GET /``) and its development login.

``/`` serves ``static/index.html``; ``/static/…`` the page's script and style sheet (plain
files, no build step). The page talks to the REST channel when anonymous and to the app
channel with ``Authorization: Bearer <JWT>`` once a customer is picked.

``GET /dev/login`` lists the sandbox customers the page offers; ``POST /dev/login``
``{"customer_id": "C1001"}`` answers ``{"token", "customer_id", "name", "expires_in"}``, a token
issued exactly as ``bot token`` does (:func:`bot.channels.identity.issue_token`). Only the
sandbox customers of ``docs/bank-backend.md`` can be picked. With ``BOT_ENV=production`` both
answer 404: there is no development login in production (the app signs its users in).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import unquote

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, file, json

from bot.channels.identity import issue_token
from bot.channels.inputs import json_object
from bot.errors import BotError
from bot.server.errors import ApiError
from bot.server.settings import ServerSettings

STATIC = Path(__file__).with_name("static")
TOKEN_MINUTES = 60
# The sandbox customers the development login offers (bot/bank/sandbox.py, bank-domain.md).
DEV_CUSTOMERS: tuple[tuple[str, str], ...] = (
    ("C1001", "张伟"),
    ("C1002", "李秀英"),
    ("C1003", "王磊"),
)
_NO_CACHE = {"Cache-Control": "no-cache"}


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def openapi_paths() -> dict[str, Any]:
    """The page's entries in the server's OpenAPI document."""
    html = {"text/html": {"schema": {"type": "string"}}}
    customer = {
        "type": "object",
        "properties": {"id": {"type": "string"}, "name": {"type": "string"}},
    }
    disabled = _error("BOT_ENV=production: there is no development login")
    return {
        "/": {
            "get": {
                "summary": "the web chat page (H5)",
                "responses": {"200": {"description": "the page", "content": html}},
            }
        },
        "/static/{path}": {
            "get": {
                "summary": "the web chat page's script and style sheet",
                "parameters": [
                    {"name": "path", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {"200": {"description": "the file"}, "404": _error("no such file")},
            }
        },
        "/dev/login": {
            "get": {
                "summary": "sandbox customers offered by the development login",
                "responses": {
                    "200": {
                        "description": "the customers",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "customers": {"type": "array", "items": customer}
                                    },
                                }
                            }
                        },
                    },
                    "404": disabled,
                },
            },
            "post": {
                "summary": "a development token for a sandbox customer (as `bot token`)",
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["customer_id"],
                                "properties": {
                                    "customer_id": {
                                        "type": "string",
                                        "enum": [c for c, _ in DEV_CUSTOMERS],
                                    }
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": {
                        "description": "the token",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "token": {"type": "string"},
                                        "customer_id": {"type": "string"},
                                        "name": {"type": "string"},
                                        "expires_in": {"type": "integer"},
                                    },
                                }
                            }
                        },
                    },
                    "400": _error("not a sandbox customer"),
                    "404": disabled,
                    "409": _error("RS256 is configured: the server cannot sign tokens"),
                },
            },
        },
    }


def webchat_blueprint(settings: ServerSettings, openapi: dict[str, Any] | None = None) -> Blueprint:
    """The page, its files and the development login; with ``openapi`` (the server's OpenAPI
    document) their paths are added to it."""
    if openapi is not None:
        openapi.setdefault("paths", {}).update(openapi_paths())
    bp = Blueprint("webchat")
    bp.static("/static", str(STATIC), name="webchat_static", use_content_range=False)

    @bp.on_request
    async def refuse_control_characters(request: Request) -> None:
        # The folder itself, a NUL (or another control character) or a name longer than a file
        # system allows cannot be a file: the static handler would fail on them with a 500, so
        # such paths are a plain 404 here.
        if request.path.rstrip("/") == "/static":
            raise ApiError(404, "no such file")
        if request.path.startswith("/static/"):
            name = unquote(request.path).removeprefix("/static/")
            too_long = any(len(part.encode("utf-8", "replace")) > 255 for part in name.split("/"))
            if not name or not name.isprintable() or too_long:
                raise ApiError(404, "no such file")

    @bp.get("/")
    async def index(request: Request) -> HTTPResponse:
        return await file(
            STATIC / "index.html", mime_type="text/html; charset=utf-8", headers=_NO_CACHE
        )

    def check_enabled() -> None:
        if settings.production:
            raise ApiError(404, "the development login is disabled when BOT_ENV=production")

    @bp.get("/dev/login")
    async def dev_customers(request: Request) -> HTTPResponse:
        check_enabled()
        return json(
            {"customers": [{"id": cid, "name": name} for cid, name in DEV_CUSTOMERS]},
            ensure_ascii=False,
        )

    @bp.post("/dev/login")
    async def dev_login(request: Request) -> HTTPResponse:
        check_enabled()
        body = json_object(request)
        customer_id = body.get("customer_id")
        names = dict(DEV_CUSTOMERS)
        if not isinstance(customer_id, str) or customer_id not in names:
            raise ApiError(
                400, "'customer_id' must be one of the sandbox customers: " + ", ".join(names)
            )
        try:
            token = issue_token(customer_id, settings.jwt, TOKEN_MINUTES, settings.production)
        except BotError as exc:  # RS256 configured: the server cannot sign
            raise ApiError(409, str(exc)) from None
        return json(
            {
                "token": token,
                "customer_id": customer_id,
                "name": names[customer_id],
                "expires_in": TOKEN_MINUTES * 60,
            },
            ensure_ascii=False,
        )

    return bp
