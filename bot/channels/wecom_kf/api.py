"""The WeCom API used by the kf channel: the access token (``GET /cgi-bin/gettoken`` with the
corpid and the 微信客服 secret, cached and shared by the workers as for the Official Account,
:class:`~bot.channels.wechat.api.WeChatApi`), ``kf/sync_msg``, ``kf/send_msg``,
``kf/send_msg_on_event`` and ``kf/service_state/get`` / ``trans``.

A refused token (40001, 40014, 42001) is fetched again once per call and the call retried.
"""

from __future__ import annotations

import logging
from typing import Any

from bot.channels.wechat.api import TOKEN_ERRORS, WeChatApi, WeChatApiError

logger = logging.getLogger(__name__)

STATE_NOT_ALLOWED = 95018  # send_msg: the session's state does not allow the API to send
COUNT_LIMIT = 95001  # send_msg: the five messages after the customer's last are used up
SYNC_TOKEN_INVALID = 95007  # sync_msg: the callback's token is invalid or expired
# Session states (kf/service_state): the bot ("智能助手") answers in 0 and 1.
NEW, BOT, QUEUED, SERVICER, ENDED = 0, 1, 2, 3, 4
STATES = {
    NEW: "new",
    BOT: "bot",
    QUEUED: "queued for a servicer",
    SERVICER: "with a servicer",
    ENDED: "ended",
}

KfApiError = WeChatApiError


class WeComKfApi(WeChatApi):
    def __init__(self, api_base: str, corpid: str, secret: str, **options: Any) -> None:
        super().__init__(api_base, corpid, secret, **options)

    async def _fetch(self, force: bool) -> tuple[str, float]:
        """``GET /cgi-bin/gettoken``: the token and the seconds it may be used for."""
        response = await self.client.get(
            f"{self.api_base}/cgi-bin/gettoken",
            params={"corpid": self.appid, "corpsecret": self.secret},
        )
        self.token_fetches += 1
        data = self._checked(response)
        token = data.get("access_token")
        if not isinstance(token, str) or not token:
            raise WeChatApiError(-1, "no access_token in the answer")
        expires_in = float(data.get("expires_in") or 7200)
        return token, max(expires_in - 300.0, expires_in / 2)

    async def _fetch_fresh(self, stale: str | None) -> tuple[str, float]:
        return await self._fetch(False)  # gettoken has no force_refresh

    async def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """``POST {api_base}/cgi-bin/{path}``; a refused token is replaced once."""
        token = await self.access_token()
        for attempt in (1, 2):
            response = await self.client.post(
                f"{self.api_base}/cgi-bin/{path}", params={"access_token": token}, json=body
            )
            try:
                return self._checked(response)
            except WeChatApiError as exc:
                if exc.errcode not in TOKEN_ERRORS or attempt == 2:
                    raise
                logger.info("WeCom refused the access token (%s); fetching a new one", exc.errcode)
                token = await self.access_token(stale=token)
        raise AssertionError("unreachable")

    async def sync_msg(
        self, open_kfid: str, token: str | None, cursor: str | None, limit: int = 1000
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"open_kfid": open_kfid, "limit": limit}
        if token:
            body["token"] = token
        if cursor:
            body["cursor"] = cursor
        return await self.call("kf/sync_msg", body)

    async def send_msg(self, open_kfid: str, external_userid: str, message: dict[str, Any]) -> str:
        """One message (``{"msgtype": "text", "text": {...}}`` or ``msgmenu``); its msgid."""
        body = {"touser": external_userid, "open_kfid": open_kfid, **message}
        return str((await self.call("kf/send_msg", body)).get("msgid") or "")

    async def send_on_event(self, code: str, message: dict[str, Any]) -> None:
        """The answer to an event (``welcome_code`` of enter_session): not counted in the
        five messages, valid for 20 seconds."""
        await self.call("kf/send_msg_on_event", {"code": code, **message})

    async def service_state(self, open_kfid: str, external_userid: str) -> tuple[int, str | None]:
        data = await self.call(
            "kf/service_state/get", {"open_kfid": open_kfid, "external_userid": external_userid}
        )
        servicer = data.get("servicer_userid")
        return int(data.get("service_state") or 0), str(servicer) if servicer else None

    async def trans(
        self, open_kfid: str, external_userid: str, state: int, servicer_userid: str | None = None
    ) -> str | None:
        """Change the session's state; the ``msg_code`` WeCom returns, if any."""
        body: dict[str, Any] = {
            "open_kfid": open_kfid,
            "external_userid": external_userid,
            "service_state": state,
        }
        if servicer_userid:
            body["servicer_userid"] = servicer_userid
        code = (await self.call("kf/service_state/trans", body)).get("msg_code")
        return str(code) if code else None
