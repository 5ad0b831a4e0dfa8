"""The WeChat server API used by the channel: the access token and the customer-service
message API.

The token comes from ``POST /cgi-bin/stable_token``. Each process caches it until shortly
before it expires and fetches it one caller at a time; with a :class:`RedisTokenStore` the
workers share one token (one fetches under a short Redis lock, the others wait for it). A
token the API refuses is fetched again with ``force_refresh: false``; only when WeChat hands
back the very token it refused is it fetched with ``force_refresh: true`` (limited per day).
Texts over :data:`TEXT_LIMIT` bytes are sent as several messages (:func:`split_text`).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from typing import Any

import httpx

from bot.redis import redis_client

logger = logging.getLogger(__name__)

TOKEN_ERRORS = {40001, 40014, 42001}  # invalid, malformed or expired access token
REFRESH_MARGIN = 300.0  # seconds before ``expires_in`` a token is fetched again
TEXT_LIMIT = 2048  # bytes of UTF-8 in one text message (customer-service API, passive reply)
BREAKS = "。！？\n"  # a part ends after one of these when it can


class WeChatApiError(Exception):
    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"WeChat API error {errcode}: {errmsg}")
        self.errcode = errcode


def split_text(content: str, limit: int = TEXT_LIMIT) -> list[str]:
    """``content`` in parts of at most ``limit`` UTF-8 bytes, in order, joining back to
    ``content``: each part ends after its last 。！？ or line break (and the line breaks right
    after it), else it is cut hard between two characters."""
    if len(content.encode("utf-8")) <= limit:
        return [content]
    parts: list[str] = []
    start = 0
    while start < len(content):
        size, end, cut = 0, start, 0
        while end < len(content):  # the longest prefix that fits
            width = len(content[end].encode("utf-8"))
            if size + width > limit:
                break
            size += width
            end += 1
            if content[end - 1] in BREAKS:
                cut = end
        if end == len(content):
            cut = end
        elif cut:
            while cut < end and content[cut] == "\n":  # no part starts with a line break
                cut += 1
        else:
            cut = max(end, start + 1)  # hard cut (a limit below one character still advances)
        parts.append(content[start:cut])
        start = cut
    return parts


class RedisTokenStore:
    """The access token shared by every worker: ``<prefix><appid>`` holds it with its
    remaining lifetime as TTL, ``<prefix><appid>:lock`` (``SET NX PX``) lets one worker fetch.
    Redis errors propagate; :class:`WeChatApi` then fetches in its own process."""

    PREFIX = "bankbot:wechat:token:"
    # SET when the key still holds the expected token (or is gone): a worker that saw a stale
    # token never overwrites a fresher one.
    REPLACE = """
local current = redis.call('GET', KEYS[1])
if current == false or current == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
"""
    RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

    def __init__(
        self,
        client: Any,
        appid: str,
        *,
        prefix: str = PREFIX,
        lock_seconds: float = 15.0,
        wait_seconds: float = 15.0,
        poll_seconds: float = 0.05,
        owns_client: bool = False,
    ) -> None:
        self.redis = client
        self.key = f"{prefix}{appid}"
        self.lock_key = f"{self.key}:lock"
        self.lock_ms = max(1, round(lock_seconds * 1000))
        self.poll_seconds = poll_seconds
        self.polls = max(1, round(wait_seconds / poll_seconds))
        self.owns_client = owns_client

    @classmethod
    def from_url(cls, url: str, appid: str, **options: Any) -> RedisTokenStore:
        client = redis_client(url, timeout=2.0, retries=None, decode_responses=False)
        return cls(client, appid, owns_client=True, **options)

    @staticmethod
    def _text(value: Any) -> str | None:
        if value is None:
            return None
        return value.decode("utf-8") if isinstance(value, bytes) else str(value)

    async def get(self) -> tuple[str | None, float]:
        """The stored token (``None`` when there is none) and its remaining seconds."""
        async with self.redis.pipeline(transaction=True) as pipe:
            value, ttl_ms = await pipe.get(self.key).pttl(self.key).execute()
        return self._text(value), max(0.0, float(ttl_ms) / 1000)

    async def replace(self, expected: str | None, token: str, lifetime: float) -> bool:
        """Store ``token`` for ``lifetime`` seconds unless the key holds another token than
        ``expected`` (a fresher one)."""
        ttl_ms = max(1, int(lifetime * 1000))
        done = await self.redis.eval(self.REPLACE, 1, self.key, expected or "", token, ttl_ms)
        return bool(done)

    async def acquire(self) -> str | None:
        """The lock's id when this worker may fetch, else ``None``."""
        lock_id = secrets.token_hex(8)
        taken = await self.redis.set(self.lock_key, lock_id, nx=True, px=self.lock_ms)
        return lock_id if taken else None

    async def release(self, lock_id: str) -> None:
        await self.redis.eval(self.RELEASE, 1, self.lock_key, lock_id)

    async def close(self) -> None:
        if self.owns_client:
            await self.redis.aclose()


class WeChatApi:
    def __init__(
        self,
        api_base: str,
        appid: str,
        secret: str,
        *,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        shared: RedisTokenStore | None = None,
    ) -> None:
        self.api_base = api_base.rstrip("/")
        self.appid = appid
        self.secret = secret
        self.timeout = timeout
        self.clock = clock
        self.shared = shared  # the token shared with the other workers (Redis)
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()
        self._client: httpx.AsyncClient | None = None
        self.token_fetches = 0  # stable_token calls of this process
        self.forced_fetches = 0  # of which with force_refresh true

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        if self.shared is not None:
            await self.shared.close()

    @staticmethod
    def _checked(response: httpx.Response) -> dict[str, Any]:
        response.raise_for_status()
        data = response.json()
        if not isinstance(data, dict):
            raise WeChatApiError(-1, f"unexpected answer {data!r}")
        code = int(data.get("errcode") or 0)
        if code:
            raise WeChatApiError(code, str(data.get("errmsg", "")))
        return data

    # the access token
    async def _fetch(self, force: bool) -> tuple[str, float]:
        """``POST /cgi-bin/stable_token``: the token and the seconds it may be used for."""
        response = await self.client.post(
            f"{self.api_base}/cgi-bin/stable_token",
            json={
                "grant_type": "client_credential",
                "appid": self.appid,
                "secret": self.secret,
                "force_refresh": force,
            },
        )
        self.token_fetches += 1
        self.forced_fetches += force
        data = self._checked(response)
        token = data.get("access_token")
        if not isinstance(token, str) or not token:
            raise WeChatApiError(-1, "no access_token in the answer")
        expires_in = float(data.get("expires_in") or 7200)
        return token, max(expires_in - REFRESH_MARGIN, expires_in / 2)

    async def _fetch_fresh(self, stale: str | None) -> tuple[str, float]:
        """A token other than ``stale``: forced only when WeChat hands back the refused one."""
        token, lifetime = await self._fetch(False)
        if stale is not None and token == stale:
            logger.warning("WeChat returned the access token it refused; forcing a refresh")
            token, lifetime = await self._fetch(True)
        return token, lifetime

    async def _shared_token(self, shared: RedisTokenStore, stale: str | None) -> tuple[str, float]:
        """The workers' token from Redis; fetched (and stored) under the Redis lock when
        missing or equal to ``stale``; fetched here when Redis is down."""
        lock_id: str | None = None
        current: str | None = None
        try:
            for _ in range(shared.polls):
                current, lifetime = await shared.get()
                if current and lifetime > 0 and current != stale:
                    return current, lifetime
                lock_id = await shared.acquire()
                if lock_id is not None:
                    current, lifetime = await shared.get()  # stored while we asked?
                    if current and lifetime > 0 and current != stale:
                        await shared.release(lock_id)
                        return current, lifetime
                    break
                await asyncio.sleep(shared.poll_seconds)
            else:
                logger.warning(
                    "no WeChat access token from another worker in time; "
                    "fetching it in this process"
                )
        except Exception as exc:  # Redis down: never fail the send for it
            logger.error(
                "Redis unavailable for the shared WeChat access token (%s); "
                "fetching it in this process",
                exc,
            )
            return await self._fetch_fresh(stale)
        try:
            token, lifetime = await self._fetch_fresh(stale)
            try:
                if not await shared.replace(current, token, lifetime):
                    fresher, left = await shared.get()  # another worker stored a newer one
                    if fresher and left > 0 and fresher != stale:
                        return fresher, left
            except Exception as exc:
                logger.error("WeChat access token not stored in Redis: %s", exc)
            return token, lifetime
        finally:
            if lock_id is not None:
                try:
                    await shared.release(lock_id)
                except Exception as exc:  # expires by itself
                    logger.error("Redis lock for the WeChat access token not released: %s", exc)

    async def access_token(self, *, stale: str | None = None) -> str:
        """The cached token, fetched when missing, expiring, or equal to ``stale`` (a token the
        API just refused; a concurrent caller or another worker may already have replaced
        it)."""
        async with self._lock:
            if self._token and self.clock() < self._expires_at and self._token != stale:
                return self._token
            if self.shared is not None:
                token, lifetime = await self._shared_token(self.shared, stale)
            else:
                token, lifetime = await self._fetch_fresh(stale)
            self._token = token
            self._expires_at = self.clock() + lifetime
            return token

    # customer-service messages
    async def send_text(self, openid: str, content: str) -> None:
        """``POST /cgi-bin/message/custom/send``, as several messages in order when longer
        than :data:`TEXT_LIMIT` bytes; a refused token is replaced once per message."""
        for part in split_text(content):
            await self._send_one(openid, part)

    async def _send_one(self, openid: str, content: str) -> None:
        body = {"touser": openid, "msgtype": "text", "text": {"content": content}}
        token = await self.access_token()
        for attempt in (1, 2):
            response = await self.client.post(
                f"{self.api_base}/cgi-bin/message/custom/send",
                params={"access_token": token},
                json=body,
            )
            try:
                self._checked(response)
                return
            except WeChatApiError as exc:
                if exc.errcode not in TOKEN_ERRORS or attempt == 2:
                    raise
                logger.info("WeChat refused the access token (%s); fetching a new one", exc.errcode)
                token = await self.access_token(stale=token)
