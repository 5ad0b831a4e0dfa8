"""Who may call the operator and HTTP API routes, as Rasa's ``--auth-token`` /
``--jwt-secret`` and our operator token allow.

A request is accepted with any one of:

- ``?token=<auth token>`` (``server.auth_token`` / ``BOT_AUTH_TOKEN``; Rasa's ``--auth-token``):
  full access;
- ``Authorization: Bearer <operator token>`` (``server.operator_token`` /
  ``BOT_OPERATOR_TOKEN``): full access;
- ``Authorization: Bearer <JWT>`` verified with ``server.jwt_secret`` / ``BOT_API_JWT_SECRET``
  and ``jwt_method`` (HS256 by default; Rasa's ``--jwt-secret``, ``--jwt-method``): claims
  ``{"user": {"username", "role"}}``; ``role: admin`` has full access, any other role only to
  the conversation whose id is ``username`` (a 403 elsewhere).

Without any of them configured every such route answers 401 and says what to set: the API is
closed by default (Rasa opens it only with ``--enable-api``; ours is always mounted, never open).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from sanic import Request

from bot.channels.identity import InvalidToken, decode_token
from bot.server.errors import ApiError
from bot.server.settings import (
    API_JWT_SECRET_ENV,
    AUTH_TOKEN_ENV,
    OPERATOR_TOKEN_ENV,
    ServerSettings,
)

_BEARER = {"WWW-Authenticate": "Bearer"}


@dataclass(frozen=True)
class Caller:
    """An authenticated caller: ``admin`` may use every conversation, otherwise only the one
    named ``username``."""

    admin: bool
    username: str | None = None
    via: str = "token"  # token | operator | jwt

    def may_use(self, conversation_id: str | None) -> bool:
        return self.admin or (conversation_id is not None and self.username == conversation_id)


def _same(given: str, expected: str) -> bool:
    # surrogateescape: header bytes that are not UTF-8 arrive as lone surrogates
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode())


def _jwt_caller(token: str, settings: ServerSettings) -> Caller:
    """The caller a Rasa-style API JWT names; ApiError 401 when it cannot be trusted."""
    conf = settings.api_jwt
    assert conf.secret is not None
    try:
        claims = decode_token(
            token,
            conf.secret,
            conf.method,
            leeway=conf.leeway,
            require=("exp",) if conf.require_exp else (),
        )
    except InvalidToken as exc:
        raise ApiError(
            401, str(exc), {"WWW-Authenticate": 'Bearer error="invalid_token"'}
        ) from None
    user = claims.get("user")
    if not isinstance(user, dict):
        raise ApiError(
            403, 'token has no \'user\' claim ({"username", "role"}); the HTTP API needs one'
        )
    role, username = user.get("role"), user.get("username")
    if role == "admin":
        return Caller(True, username if isinstance(username, str) else None, "jwt")
    if not isinstance(username, str) or not username:
        raise ApiError(403, "token's user has no 'username' and is not an admin")
    return Caller(False, username, "jwt")


def caller(request: Request, settings: ServerSettings) -> Caller:
    """The authenticated caller of an operator / HTTP API route, or ApiError 401."""
    given = request.args.get("token")
    if given is not None:
        if settings.auth_token is None:
            raise ApiError(
                401,
                f"'?token=' is not accepted: no auth token is configured (set "
                f"{AUTH_TOKEN_ENV} or server.auth_token)",
                _BEARER,
            )
        if not _same(given, settings.auth_token):
            raise ApiError(401, "wrong auth token", _BEARER)
        return Caller(True, via="token")
    header = request.headers.get("authorization")
    configured = (
        settings.operator_token is not None
        or settings.auth_token is not None
        or settings.api_jwt.enabled
    )
    if not configured:
        raise ApiError(
            401,
            f"the operator API is disabled: set {OPERATOR_TOKEN_ENV} or "
            f"server.operator_token (or {AUTH_TOKEN_ENV}, {API_JWT_SECRET_ENV}"
            " for Rasa's token and JWT authentication)",
            _BEARER,
        )
    scheme, _, value = (header or "").strip().partition(" ")
    value = value.strip()
    if scheme.lower() != "bearer" or not value:
        raise ApiError(
            401,
            "these endpoints need 'Authorization: Bearer <operator token or "
            "JWT>' or '?token=<auth token>'",
            _BEARER,
        )
    if settings.operator_token is not None and _same(value, settings.operator_token):
        return Caller(True, via="operator")
    if settings.api_jwt.enabled and value.count(".") == 2:
        return _jwt_caller(value, settings)
    if settings.api_jwt.enabled:
        raise ApiError(401, "wrong operator token, and not a JWT either", _BEARER)
    raise ApiError(401, "wrong operator token", _BEARER)


def authorize(
    request: Request, settings: ServerSettings, conversation_id: str | None = None
) -> Caller:
    """:func:`caller`, then a 403 unless it may use ``conversation_id`` (None: a route about
    the whole server, which needs full access)."""
    who = caller(request, settings)
    if not who.may_use(conversation_id):
        if conversation_id is None:
            raise ApiError(
                403,
                f"user {who.username!r} has insufficient permissions: this route needs an admin",
            )
        raise ApiError(
            403,
            f"user {who.username!r} has insufficient permissions for "
            f"conversation {conversation_id!r}",
        )
    return who
