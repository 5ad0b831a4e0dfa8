"""Every error is JSON: ``{"error": "<what is wrong>", "status": <code>}``.

Handlers raise :class:`ApiError`; channels raise :class:`~bot.channels.base.ChannelError`
(which ApiError extends) and :class:`~bot.channels.base.MessageRefused`, answered alike;
Sanic's own errors (404, 405, 413 from the body limit) get the same shape; a database or
Redis that does not answer is a 503 with ``Retry-After`` (one log line per outage, not per
request; the pool reconnects by itself); anything else is a bug, logged with its traceback
and answered with a 500 that names no internals.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from sanic import Request, Sanic
from sanic.exceptions import SanicException
from sanic.response import HTTPResponse, json

from bot.channels.base import ChannelError, MessageRefused
from bot.core.lock_store import LockTimeoutError
from bot.redis import is_outage
from bot.server.metrics import BotMetrics

logger = logging.getLogger(__name__)
RETRY_AFTER = "2"  # seconds a client waits before retrying during an outage


class ApiError(ChannelError):
    """A refused request; ``extra`` fields are added to the JSON body."""

    def __init__(
        self, status: int, message: str, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(status, message, headers)
        self.extra = extra


def error_response(
    status: int, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> HTTPResponse:
    # a path or method Sanic could not decode holds lone surrogates, which UTF-8 cannot encode
    message = message.encode("utf-8", "backslashreplace").decode("utf-8")
    return json(
        {"error": message, "status": status, **extra},
        status=status,
        headers=headers,
        ensure_ascii=False,
    )


class OutageLog:
    """Logs a backing service's outage once: the first failure after ``quiet`` seconds
    without one starts a new outage (one ERROR line); the failures in between are counted."""

    def __init__(
        self, what: str, quiet: float = 10.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.what = what
        self.quiet = quiet
        self.clock = clock
        self._last = -float("inf")
        self.outages = 0
        self.failures = 0

    def failed(self, exc: BaseException) -> None:
        now = self.clock()
        self.failures += 1
        if now - self._last >= self.quiet:
            self.outages += 1
            first = (str(exc) or repr(exc)).strip().splitlines()
            logger.error(
                "%s unavailable (%s: %s); answering 503 until it is back",
                self.what,
                type(exc).__name__,
                first[0] if first else "",
            )
        self._last = now


def database_outage(exc: BaseException) -> bool:
    """Whether ``exc`` is the database not answering (connection refused or cut, pool
    exhausted, SQLite busy) rather than a bug in a statement."""
    try:
        from sqlalchemy import exc as sa_exc
    except ImportError:  # pragma: no cover - SQLAlchemy is a dependency
        return False
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(
        exc,
        sa_exc.OperationalError
        | sa_exc.InterfaceError
        | sa_exc.DisconnectionError
        | sa_exc.TimeoutError,
    )


_KIND = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "bad_method",
    413: "too_large",
    429: "rate_limited",
    503: "busy",
}
DATABASE_DOWN = "the conversation store is unavailable; try again shortly"
REDIS_DOWN = "shared state (Redis) is unavailable; try again shortly"


def install_error_handlers(app: Sanic[Any, Any], metrics: BotMetrics) -> None:
    def count(status: int) -> None:
        metrics.errors.labels(_KIND.get(status, "internal" if status >= 500 else "client")).inc()

    async def on_api_error(request: Request, exc: Exception) -> HTTPResponse:
        assert isinstance(exc, ChannelError)
        count(exc.status)
        return error_response(exc.status, exc.message, exc.headers, **getattr(exc, "extra", {}))

    async def on_refused(request: Request, exc: Exception) -> HTTPResponse:
        assert isinstance(exc, MessageRefused)
        count(exc.status)
        headers = {"Retry-After": exc.retry_after} if exc.retry_after else None
        return error_response(exc.status, exc.message, headers)

    async def on_sanic_error(request: Request, exc: Exception) -> HTTPResponse:
        assert isinstance(exc, SanicException)
        status = exc.status_code
        message = str(exc) or "request failed"
        if status == 413:
            limit = request.app.config.REQUEST_MAX_SIZE
            message = f"request body is larger than {limit:,} bytes"
        elif status == 404:
            message = f"no such endpoint: {request.method} {request.path}"
        elif status == 405:
            message = f"{request.method} is not allowed on {request.path}"
        if status >= 500:
            logger.error("server error on %s %s: %s", request.method, request.path, exc)
            message = "internal server error"
        count(status)
        return error_response(status, message, dict(exc.headers or {}))

    async def on_busy(request: Request, exc: Exception) -> HTTPResponse:
        count(503)
        return error_response(503, f"{exc}; try again shortly", {"Retry-After": "1"})

    database = OutageLog("database")
    redis = OutageLog("Redis")

    async def on_bug(request: Request, exc: Exception) -> HTTPResponse:
        if database_outage(exc):
            database.failed(exc)
            metrics.errors.labels("database_down").inc()
            return error_response(503, DATABASE_DOWN, {"Retry-After": RETRY_AFTER})
        if is_outage(exc) and type(exc).__module__.startswith("redis"):
            redis.failed(exc)
            metrics.errors.labels("redis_down").inc()
            return error_response(503, REDIS_DOWN, {"Retry-After": RETRY_AFTER})
        logger.exception("unhandled error on %s %s", request.method, request.path)
        count(500)
        return error_response(500, "internal server error")

    app.error_handler.add(ChannelError, on_api_error)
    app.error_handler.add(MessageRefused, on_refused)
    app.error_handler.add(LockTimeoutError, on_busy)
    app.error_handler.add(SanicException, on_sanic_error)
    app.error_handler.add(Exception, on_bug)
