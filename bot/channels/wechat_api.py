"""The WeChat server API used by the channel: access token (cached until shortly before it
expires, one fetch at a time per process) and the customer-service message API."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx

logger = logging.getLogger(__name__)

TOKEN_ERRORS = {40001, 40014, 42001}  # invalid, malformed or expired access token
REFRESH_MARGIN = 300.0  # seconds before ``expires_in`` a token is fetched again


class WeChatApiError(Exception):
    def __init__(self, errcode: int, errmsg: str) -> None:
        super().__init__(f"WeChat API error {errcode}: {errmsg}")
        self.errcode = errcode


class WeChatApi:
    def __init__(self, api_base: str, appid: str, secret: str, *, timeout: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.api_base = api_base.rstrip("/")
        self.appid = appid
        self.secret = secret
        self.timeout = timeout
        self.clock = clock
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = asyncio.Lock()
        self._client: httpx.AsyncClient | None = None
        self.token_fetches = 0

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=self.timeout)
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

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

    async def access_token(self, *, refresh: bool = False, stale: str | None = None) -> str:
        """The cached token, fetched when missing, expiring, or equal to ``stale`` (a token the
        API just refused; a concurrent caller may already have replaced it)."""
        async with self._lock:
            if (self._token and not refresh and self.clock() < self._expires_at
                    and (stale is None or self._token != stale)):
                return self._token
            response = await self.client.get(
                f"{self.api_base}/cgi-bin/token",
                params={"grant_type": "client_credential", "appid": self.appid,
                        "secret": self.secret})
            data = self._checked(response)
            token = data.get("access_token")
            if not isinstance(token, str) or not token:
                raise WeChatApiError(-1, "no access_token in the answer")
            expires_in = float(data.get("expires_in") or 7200)
            self._token = token
            self._expires_at = self.clock() + max(expires_in - REFRESH_MARGIN, expires_in / 2)
            self.token_fetches += 1
            return token

    async def send_text(self, openid: str, content: str) -> None:
        """``POST /cgi-bin/message/custom/send``; a refused token is refetched once."""
        body = {"touser": openid, "msgtype": "text", "text": {"content": content}}
        token = await self.access_token()
        for attempt in (1, 2):
            response = await self.client.post(f"{self.api_base}/cgi-bin/message/custom/send",
                                              params={"access_token": token}, json=body)
            try:
                self._checked(response)
                return
            except WeChatApiError as exc:
                if exc.errcode not in TOKEN_ERRORS or attempt == 2:
                    raise
                logger.info("WeChat refused the access token (%s); fetching a new one",
                            exc.errcode)
                token = await self.access_token(stale=token)
