"""Server settings: ``server:`` and ``channels:`` of ``config.yml``, overridden by env vars.

Every value has a default, so a project without these sections runs as is. Secrets are best
given through the environment (``BOT_OPERATOR_TOKEN``, ``BOT_JWT_SECRET``,
``BOT_JWT_PUBLIC_KEY``, ``BOT_AUTH_TOKEN``, ``BOT_API_JWT_SECRET``) rather than committed in
``config.yml``.

Two JWT keys, on purpose: ``BOT_JWT_SECRET`` verifies the app channel's *customer* tokens
(``sub`` = customer id) and falls back to a public development secret; ``BOT_API_JWT_SECRET``
(Rasa's ``--jwt-secret``) verifies tokens for the HTTP API (``user.role``/``user.username``)
and has no fallback, so the development secret can never sign an admin token.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bot.errors import ConfigError
from bot.project import Project
from bot.settings_file import read_mapping

ENV_NAME = "BOT_ENV"
OPERATOR_TOKEN_ENV = "BOT_OPERATOR_TOKEN"
JWT_SECRET_ENV = "BOT_JWT_SECRET"
JWT_PUBLIC_KEY_ENV = "BOT_JWT_PUBLIC_KEY"
AUTH_TOKEN_ENV = "BOT_AUTH_TOKEN"  # Rasa's --auth-token (``?token=``)
API_JWT_SECRET_ENV = "BOT_API_JWT_SECRET"  # Rasa's --jwt-secret
API_JWT_METHOD_ENV = "BOT_API_JWT_METHOD"  # Rasa's --jwt-method
API_JWT_METHODS = frozenset(
    {
        "HS256",
        "HS384",
        "HS512",
        "RS256",
        "RS384",
        "RS512",
        "ES256",
        "ES384",
        "ES512",
        "PS256",
        "PS384",
        "PS512",
    }
)

# Signs and verifies app-channel tokens when no secret is configured, so that development
# works out of the box (``bot token C1001``). It is public, hence refused in production.
DEV_JWT_SECRET = "bankbot-development-secret-do-not-use-in-production"


def is_production(env: Mapping[str, str] | None = None) -> bool:
    return (env if env is not None else os.environ).get(ENV_NAME, "").lower() in {
        "production",
        "prod",
    }


@dataclass(frozen=True)
class JwtSettings:
    """How the app channel verifies ``Authorization: Bearer <JWT>``."""

    secret: str | None = None  # HS256
    public_key: str | None = None  # RS256, PEM text
    leeway: float = 30.0  # seconds of clock skew allowed on ``exp``

    @property
    def algorithm(self) -> str:
        return "RS256" if self.public_key else "HS256"

    @property
    def key(self) -> str:
        return self.public_key or self.secret or DEV_JWT_SECRET

    @property
    def uses_dev_secret(self) -> bool:
        return not self.public_key and (not self.secret or self.secret == DEV_JWT_SECRET)


@dataclass(frozen=True)
class ApiJwtSettings:
    """How the HTTP API verifies ``Authorization: Bearer <JWT>`` (Rasa's ``--jwt-secret`` and
    ``--jwt-method``): HS* with a shared secret, RS*/ES*/PS* with the public key (PEM text or
    a file). Claims as Rasa's: ``user.role == "admin"`` may use any conversation, otherwise
    ``user.username`` must be the conversation id."""

    secret: str | None = None
    method: str = "HS256"
    leeway: float = 30.0
    # ``exp`` is checked when present; Rasa (sanic-jwt) accepts tokens without one, as the
    # HTTP API's tokens are usually minted by hand. ``server.jwt_require_exp: true`` refuses them.
    require_exp: bool = False

    @property
    def enabled(self) -> bool:
        return bool(self.secret)


@dataclass(frozen=True)
class RateLimit:
    """Token bucket per conversation: ``burst`` messages at once, refilled at ``per_minute``."""

    per_minute: float = 60.0
    burst: int = 20

    @property
    def enabled(self) -> bool:
        return self.per_minute > 0


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 5005
    workers: int = 1
    operator_token: str | None = None
    max_body_bytes: int = 64 * 1024
    max_message_chars: int = 2000
    rate_limit: RateLimit = field(default_factory=RateLimit)
    shutdown_timeout: float = 15.0
    jwt: JwtSettings = field(default_factory=JwtSettings)
    production: bool = False
    auth_token: str | None = None  # Rasa's --auth-token: ``?token=`` on the HTTP API
    api_jwt: ApiJwtSettings = field(default_factory=ApiJwtSettings)
    # Rasa's --cors: origins whose browser pages may call the server ("*": any)
    cors_origins: tuple[str, ...] = ()
    # Seconds a client may take to send a request's head (garbage or a bare-LF request line
    # never completes one: answered 408 and closed), and an idle connection stays open.
    request_timeout: float = 10.0
    keep_alive_timeout: float = 15.0

    def check(self) -> None:
        """Refuse settings that must not run (the public dev secret in production)."""
        if self.production and self.jwt.uses_dev_secret:
            raise ConfigError(
                f"{ENV_NAME}=production: the development JWT secret is refused. Set "
                f"{JWT_SECRET_ENV} (HS256) or {JWT_PUBLIC_KEY_ENV} (RS256), or "
                "channels.app.jwt_secret / jwt_public_key in config.yml"
            )
        if self.production and self.operator_token is not None and len(self.operator_token) < 16:
            raise ConfigError("the operator token must be at least 16 characters in production")
        if self.production and self.auth_token is not None and len(self.auth_token) < 16:
            raise ConfigError(
                f"the auth token ({AUTH_TOKEN_ENV}) must be at least 16 characters in production"
            )
        if self.api_jwt.method not in API_JWT_METHODS:
            raise ConfigError(
                f"JWT method {self.api_jwt.method!r} is not supported; use one of "
                f"{', '.join(sorted(API_JWT_METHODS))}"
            )
        if self.api_jwt.enabled and self.api_jwt.secret == DEV_JWT_SECRET:
            raise ConfigError("the HTTP API's JWT secret must not be the public development secret")
        if (
            self.api_jwt.enabled
            and not self.api_jwt.method.startswith("HS")
            and "-----BEGIN" not in (self.api_jwt.secret or "")
        ):
            raise ConfigError(
                f"JWT method {self.api_jwt.method} needs the public key (PEM) as the JWT secret"
            )


def _section(raw: Mapping[str, Any], key: str, path: Path) -> dict[str, Any]:
    value = raw.get(key) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"{path}: '{key}' must be a mapping")
    return value


def _number(
    section: Mapping[str, Any], key: str, default: float, where: str, minimum: float = 0
) -> float:
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise ConfigError(f"{where}.{key} must be a number >= {minimum:g}, got {value!r}")
    return float(value)


def _public_key(value: str | None, root: Path) -> str | None:
    """PEM text, or the path of a PEM file (relative to the project)."""
    if not value:
        return None
    if "-----BEGIN" in value:
        return value
    path = Path(value) if Path(value).is_absolute() else root / value
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"JWT public key {value!r} is neither PEM text nor a readable file: {exc}"
        ) from exc


def settings_from_mapping(
    raw: Mapping[str, Any],
    root: Path,
    env: Mapping[str, str] | None = None,
    path: Path = Path("config.yml"),
) -> ServerSettings:
    env = env if env is not None else os.environ
    server = _section(raw, "server", path)
    channels = _section(raw, "channels", path)
    app = channels.get("app") or {}
    if not isinstance(app, dict):
        raise ConfigError(f"{path}: 'channels.app' must be a mapping")
    limit = server.get("rate_limit") or {}
    if not isinstance(limit, dict):
        raise ConfigError(f"{path}: 'server.rate_limit' must be a mapping (per_minute, burst)")
    token = env.get(OPERATOR_TOKEN_ENV) or server.get("operator_token")
    auth_token = env.get(AUTH_TOKEN_ENV) or server.get("auth_token")
    api_secret = env.get(API_JWT_SECRET_ENV) or server.get("jwt_secret")
    api_method = env.get(API_JWT_METHOD_ENV) or server.get("jwt_method") or "HS256"
    secret = env.get(JWT_SECRET_ENV) or app.get("jwt_secret")
    public = env.get(JWT_PUBLIC_KEY_ENV) or app.get("jwt_public_key")
    cors = server.get("cors") or ()
    if isinstance(cors, str):
        cors = (cors,)
    if not isinstance(cors, list | tuple) or not all(isinstance(o, str) for o in cors):
        raise ConfigError(f"{path}: 'server.cors' must be an origin or a list of origins")
    return ServerSettings(
        host=str(server.get("host", "127.0.0.1")),
        port=int(_number(server, "port", 5005, "server")),
        workers=max(1, int(_number(server, "workers", 1, "server", 1))),
        operator_token=str(token) if token else None,
        max_body_bytes=int(_number(server, "max_body_bytes", 64 * 1024, "server", 1024)),
        max_message_chars=int(_number(server, "max_message_chars", 2000, "server", 1)),
        rate_limit=RateLimit(
            per_minute=_number(limit, "per_minute", 60, "server.rate_limit"),
            burst=int(_number(limit, "burst", 20, "server.rate_limit", 1)),
        ),
        shutdown_timeout=_number(server, "shutdown_timeout", 15, "server"),
        jwt=JwtSettings(
            secret=str(secret) if secret else None,
            public_key=_public_key(str(public) if public else None, root),
            leeway=_number(app, "leeway", 30, "channels.app"),
        ),
        production=is_production(env),
        auth_token=str(auth_token) if auth_token else None,
        api_jwt=ApiJwtSettings(
            secret=_api_jwt_key(str(api_secret) if api_secret else None, str(api_method), root),
            method=str(api_method).upper(),
            require_exp=bool(server.get("jwt_require_exp", False)),
        ),
        cors_origins=tuple(cors),
        request_timeout=_number(server, "request_timeout", 10, "server", 0.5),
        keep_alive_timeout=_number(server, "keep_alive_timeout", 15, "server", 0.5),
    )


def _api_jwt_key(value: str | None, method: str, root: Path) -> str | None:
    """An HS* secret as it is; for the other methods the public key, as PEM or a file path."""
    if not value or method.upper().startswith("HS"):
        return value
    return _public_key(value, root)


def with_overrides(
    settings: ServerSettings,
    *,
    auth_token: str | None = None,
    jwt_secret: str | None = None,
    jwt_method: str | None = None,
    root: Path | None = None,
) -> ServerSettings:
    """``settings`` with Rasa's ``--auth-token``, ``--jwt-secret`` and ``--jwt-method`` given
    on the command line (None: keep the configured value)."""
    method = (jwt_method or settings.api_jwt.method).upper()
    secret = (
        _api_jwt_key(jwt_secret, method, root or Path.cwd())
        if jwt_secret
        else settings.api_jwt.secret
    )
    return replace(
        settings,
        auth_token=auth_token or settings.auth_token,
        api_jwt=replace(settings.api_jwt, secret=secret, method=method),
    )


def load_settings(project: Project, env: Mapping[str, str] | None = None) -> ServerSettings:
    raw = read_mapping(
        project.config_file,
        required=True,
        holds="server, channels, ...",
        missing_fix="create it or pass --config FILE",
    )
    return settings_from_mapping(raw, project.root, env, project.config_file)
