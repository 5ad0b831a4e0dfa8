"""Signed customer identity: verifying app-channel JWTs and issuing development tokens.

A token is accepted only with the configured algorithm (HS256 with a shared secret, or RS256
with the bank's public key), a valid signature, a ``sub`` (the customer id) and an ``exp``
in the future (with ``leeway`` seconds of clock skew).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol

import jwt

from bot.errors import BotError

MAX_CUSTOMER_ID = 64


class TokenKeys(Protocol):
    """How customer tokens are signed and verified (the server's ``JwtSettings``)."""

    @property
    def algorithm(self) -> str: ...  # RS256 with a public key, else HS256

    @property
    def key(self) -> str: ...  # the public key, the secret, or the development secret

    @property
    def leeway(self) -> float: ...  # seconds of clock skew allowed on ``exp``

    @property
    def public_key(self) -> str | None: ...

    @property
    def uses_dev_secret(self) -> bool: ...


class InvalidToken(BotError):
    """The bearer token cannot be trusted; the message says why (safe to show the client)."""


@dataclass(frozen=True)
class Customer:
    customer_id: str

    @property
    def conversation_id(self) -> str:
        """One history per customer, whatever the channel."""
        return f"customer:{self.customer_id}"


def decode_token(
    token: str,
    key: str,
    algorithm: str,
    *,
    require: tuple[str, ...] = ("exp",),
    leeway: float = 30.0,
) -> dict[str, Any]:
    """The claims of ``token`` signed with ``key`` by ``algorithm`` (only that one: no
    ``none``, no HS256 signed with a public key), with ``require`` claims and ``exp`` checked.
    :class:`InvalidToken` says what is wrong. Shared by the app channel and the HTTP API."""
    if not token.isascii():  # header bytes that are not UTF-8 arrive as lone surrogates
        raise InvalidToken("malformed token: a JWT is base64url text, this has other characters")
    try:  # PyJWT checks 'crit' here already (InvalidTokenError, not a DecodeError)
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise InvalidToken(f"malformed token: {exc}") from None
    alg = header.get("alg")
    if alg != algorithm:
        raise InvalidToken(
            f"token algorithm {alg!r} is not accepted; this server expects {algorithm}"
        )
    try:
        claims: dict[str, Any] = jwt.decode(
            token, key, algorithms=[algorithm], options={"require": list(require)}, leeway=leeway
        )
    except jwt.ExpiredSignatureError:
        raise InvalidToken("token has expired; sign in again") from None
    except jwt.MissingRequiredClaimError as exc:
        raise InvalidToken(f"token has no '{exc.claim}' claim") from None
    except jwt.InvalidSignatureError:
        raise InvalidToken(
            "token signature is invalid (forged, or signed with another key)"
        ) from None
    except jwt.PyJWTError as exc:  # any other: unknown 'crit' extensions, bad claims, ...
        raise InvalidToken(f"token is invalid: {exc}") from None
    return claims


def verify_token(token: str, settings: TokenKeys) -> Customer:
    claims = decode_token(
        token, settings.key, settings.algorithm, require=("exp", "sub"), leeway=settings.leeway
    )
    if claims.get("typ") == "agent":  # an agent console token, should the secrets be shared
        raise InvalidToken("this is an agent console token, not a customer's")
    subject = claims.get("sub")
    if (
        not isinstance(subject, str)
        or not subject.strip()
        or len(subject) > MAX_CUSTOMER_ID
        or not subject.isprintable()
    ):
        raise InvalidToken(
            f"token 'sub' must be a customer id of 1-{MAX_CUSTOMER_ID} printable characters"
        )
    return Customer(subject.strip())


def issue_token(
    customer_id: str, settings: TokenKeys, minutes: float = 60, production: bool = False
) -> str:
    """An HS256 token for ``customer_id`` (development and tests)."""
    if settings.public_key:
        raise BotError(
            "the app channel verifies RS256 tokens; sign them with the private key "
            "of your identity provider (bot token only signs HS256)"
        )
    if production and settings.uses_dev_secret:
        raise BotError("BOT_ENV=production: refusing to sign with the development secret")
    if not customer_id.strip() or len(customer_id) > MAX_CUSTOMER_ID:
        raise BotError(f"customer id must be 1-{MAX_CUSTOMER_ID} characters")
    now = int(time.time())
    claims = {"sub": customer_id, "iat": now, "exp": now + int(minutes * 60)}
    return jwt.encode(claims, settings.key, algorithm="HS256")  # no public key: the secret
