"""Signed WeChat requests are fresh and used once.

WeChat's signature covers the token, ``timestamp`` and ``nonce`` only (in plain mode not the
body), so a leaked signed query string could otherwise be replayed for ever, with any body.
:class:`ReplayGuard` refuses a ``timestamp`` more than ``window`` seconds from now (either
way) and remembers every ``(timestamp, nonce)`` for twice the window with a digest of what
it signed (the method, body and ``echostr``): the same pair again with the same content is
WeChat's own retry (answered by the ``MsgId`` deduplication, no second turn), with another
content a replay (403).

With ``$BOT_REDIS_URL`` the pairs are kept in Redis (``SET NX``), so a replay to another
worker is refused too; when Redis fails, in this process (one log line until it answers).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

from bot.channels.base import ChannelError
from bot.redis import REDIS_PREFIX

if TYPE_CHECKING:
    from redis.asyncio import Redis

logger = logging.getLogger(__name__)

KEY_PREFIX = f"{REDIS_PREFIX}wechat:nonce:"
MAX_NONCE_CHARS = 64


def digest(method: str, body: bytes, echostr: str) -> str:
    """What a signed request carries besides its query string's signed values."""
    content = method.encode() + b"\0" + body + b"\0" + echostr.encode("utf-8", "replace")
    return hashlib.sha256(content).hexdigest()


class ReplayGuard:
    def __init__(
        self,
        window: float = 300.0,
        *,
        redis: Redis | None = None,
        clock: Callable[[], float] = time.time,
        max_keys: int = 200_000,
    ) -> None:
        self.window = window
        self.redis = redis
        self.clock = clock
        self.max_keys = max_keys
        self._seen: OrderedDict[str, tuple[str, float]] = OrderedDict()  # digest, expires
        self._redis_down = False

    def check_time(self, timestamp: str, now: float | None = None) -> None:
        """A 403 unless ``timestamp`` (Unix seconds) is within the window of ``now``."""
        now = self.clock() if now is None else now
        if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
            raise ChannelError(403, "timestamp must be Unix seconds (digits)")
        if abs(int(timestamp) - now) > self.window:
            raise ChannelError(
                403,
                f"timestamp {timestamp} is outside the ±{self.window:g} s window of the "
                "server's clock: a stale or replayed request (or a clock to correct)",
            )

    async def check(self, timestamp: str, nonce: str, content: str) -> None:
        """:meth:`check_time`, then a 403 when ``(timestamp, nonce)`` signed other content."""
        now = self.clock()
        self.check_time(timestamp, now)
        if not nonce or len(nonce) > MAX_NONCE_CHARS or not nonce.isprintable():
            raise ChannelError(403, f"nonce must be 1-{MAX_NONCE_CHARS} printable characters")
        key = f"{timestamp}:{nonce}"
        first = await self._first_content(key, content, now)
        if first != content:
            logger.warning("WeChat request with a replayed timestamp/nonce %s refused", key)
            raise ChannelError(
                403, "replayed request: this timestamp and nonce already signed another request"
            )

    async def _first_content(self, key: str, content: str, now: float) -> str:
        """The content first seen with ``key`` (``content`` itself when it is new)."""
        if self.redis is not None:
            try:
                seconds = max(1, round(2 * self.window))
                name = KEY_PREFIX + key
                if await self.redis.set(name, content, nx=True, ex=seconds):
                    self._up()
                    return content
                stored = await self.redis.get(name)
                self._up()
                if stored is None:  # expired meanwhile
                    return content
                return stored.decode() if isinstance(stored, bytes) else str(stored)
            except Exception as exc:  # redis.RedisError, OSError, timeouts
                if not self._redis_down:
                    logger.warning(
                        "WeChat nonces: Redis unavailable (%s); remembered in this process", exc
                    )
                self._redis_down = True
        return self._first_local(key, content, now)

    def _up(self) -> None:
        if self._redis_down:
            logger.info("WeChat nonces: Redis answers again")
        self._redis_down = False

    def _first_local(self, key: str, content: str, now: float) -> str:
        while self._seen:
            oldest, (_, expires) = next(iter(self._seen.items()))
            if expires > now and len(self._seen) < self.max_keys:
                break
            del self._seen[oldest]
        found = self._seen.get(key)
        if found is not None:
            return found[0]
        self._seen[key] = (content, now + 2 * self.window)
        return content
