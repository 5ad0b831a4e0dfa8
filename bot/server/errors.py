"""Every error is JSON: ``{"error": "<what is wrong>", "status": <code>}``.

Handlers raise :class:`ApiError`; channels raise :class:`~bot.channels.base.ChannelError`
(which ApiError extends) and :class:`~bot.channels.base.MessageRefused`, answered alike;
Sanic's own errors (404, 405, 413 from the body limit) get the same shape; anything else is a
bug, logged with its traceback and answered with a 500 that names no internals.
"""

from __future__ import annotations

import logging
from typing import Any

from sanic import Request, Sanic
from sanic.exceptions import SanicException
from sanic.response import HTTPResponse, json

from bot.channels.base import ChannelError, MessageRefused
from bot.core.lock_store import LockTimeoutError
from bot.server.metrics import BotMetrics

logger = logging.getLogger(__name__)


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
    return json(
        {"error": message, "status": status, **extra},
        status=status,
        headers=headers,
        ensure_ascii=False,
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

    async def on_bug(request: Request, exc: Exception) -> HTTPResponse:
        logger.exception("unhandled error on %s %s", request.method, request.path)
        count(500)
        return error_response(500, "internal server error")

    app.error_handler.add(ChannelError, on_api_error)
    app.error_handler.add(MessageRefused, on_refused)
    app.error_handler.add(LockTimeoutError, on_busy)
    app.error_handler.add(SanicException, on_sanic_error)
    app.error_handler.add(Exception, on_bug)
