"""A local fake of the WeCom 微信客服 API (aiohttp on 127.0.0.1, port 0), written from the public
documentation (developer.work.weixin.qq.com, 微信客服):

- ``GET /cgi-bin/gettoken?corpid&corpsecret``: a token valid ``token_lifetime`` seconds;
  :meth:`FakeWeCom.expire_tokens` makes every issued token answer 42001;
- ``POST /cgi-bin/kf/sync_msg`` (``cursor``, ``token``, ``limit``, ``open_kfid``): the
  account's messages after the cursor, ``limit`` at a time, ``has_more`` and
  ``next_cursor``; a callback token must be one :meth:`callback` issued;
- ``POST /cgi-bin/kf/send_msg``: only in states 0 and 1 (else 95018), at most five messages
  within 48 hours of the customer's last message (else 95001), text up to 2,048 bytes;
- ``POST /cgi-bin/kf/send_msg_on_event``: a welcome code once, not counted in the five;
- ``POST /cgi-bin/kf/service_state/get`` / ``trans``: the states 0-4 and the allowed changes
  (95016 otherwise; state 3 needs a known servicer, 95014).

The callbacks WeCom would send are made by :meth:`callback_body` with an independent
implementation of the message encryption (AES-256-CBC, PKCS#7 to 32 bytes, receive id = the
corpid) over ``cryptography``.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import os
import struct
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

WINDOW = 48 * 3600
ALLOWED = {0: {1, 2, 3, 4}, 1: {2, 3, 4}, 2: {3, 4}, 3: {2, 3, 4}, 4: set()}


def sha1_signature(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def encrypt(aes_key: str, receive_id: str, message: str) -> str:
    key = base64.b64decode(aes_key + "=")
    body = message.encode()
    plain = os.urandom(16) + struct.pack(">I", len(body)) + body + receive_id.encode()
    pad = 32 - len(plain) % 32
    plain += bytes([pad]) * pad
    enc = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(enc.update(plain) + enc.finalize()).decode()


def decrypt(aes_key: str, encrypted: str) -> tuple[str, str]:
    key = base64.b64decode(aes_key + "=")
    dec = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    plain = dec.update(base64.b64decode(encrypted)) + dec.finalize()
    plain = plain[: -plain[-1]]
    (length,) = struct.unpack(">I", plain[16:20])
    return plain[20 : 20 + length].decode(), plain[20 + length :].decode()


@dataclass
class Session:
    state: int = 0
    servicer: str | None = None
    last_customer: float = 0.0
    sent: int = 0


@dataclass
class FakeWeCom:
    corpid: str
    secret: str
    token: str  # the callback Token
    aes_key: str
    servicers: set[str] = field(default_factory=lambda: {"zhangsan"})
    token_lifetime: int = 7200
    now: float = field(default_factory=time.time)  # the fake's clock (tests move it)
    tokens: dict[str, float] = field(default_factory=dict)  # access token -> expires at
    fetches: int = 0
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # per open_kfid
    sync_calls: list[dict[str, Any]] = field(default_factory=list)
    callback_tokens: set[str] = field(default_factory=set)
    sessions: dict[tuple[str, str], Session] = field(default_factory=dict)
    sent: list[dict[str, Any]] = field(default_factory=list)  # accepted send_msg bodies
    refused: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    on_event: list[dict[str, Any]] = field(default_factory=list)  # send_msg_on_event bodies
    welcome_codes: set[str] = field(default_factory=set)
    transitions: list[tuple[str, int, str | None]] = field(default_factory=list)
    base: str = ""
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    _runner: web.AppRunner | None = None

    # the server
    async def start(self) -> FakeWeCom:
        app = web.Application()
        app.router.add_get("/cgi-bin/gettoken", self._gettoken)
        app.router.add_post("/cgi-bin/kf/sync_msg", self._sync_msg)
        app.router.add_post("/cgi-bin/kf/send_msg", self._send_msg)
        app.router.add_post("/cgi-bin/kf/send_msg_on_event", self._send_on_event)
        app.router.add_post("/cgi-bin/kf/service_state/get", self._state_get)
        app.router.add_post("/cgi-bin/kf/service_state/trans", self._state_trans)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @staticmethod
    def _error(code: int, message: str) -> web.Response:
        return web.json_response({"errcode": code, "errmsg": message})

    def _token_error(self, request: web.Request) -> web.Response | None:
        token = request.query.get("access_token", "")
        if token not in self.tokens:
            return self._error(40014, "invalid access_token")
        if self.tokens[token] <= self.now:
            return self._error(42001, "access_token expired")
        return None

    async def _gettoken(self, request: web.Request) -> web.Response:
        self.fetches += 1
        if request.query.get("corpid") != self.corpid:
            return self._error(40013, "invalid corpid")
        if request.query.get("corpsecret") != self.secret:
            return self._error(40001, "invalid secret")
        valid = [t for t, at in self.tokens.items() if at > self.now]
        token = valid[0] if valid else f"token-{next(self._ids)}"
        self.tokens.setdefault(token, self.now + self.token_lifetime)
        left = int(self.tokens[token] - self.now)
        return web.json_response(
            {"errcode": 0, "errmsg": "ok", "access_token": token, "expires_in": left}
        )

    async def _sync_msg(self, request: web.Request) -> web.Response:
        error = self._token_error(request)
        if error is not None:
            return error
        body = await request.json()
        self.sync_calls.append(body)
        if body.get("token") and body["token"] not in self.callback_tokens:
            return self._error(95007, "invalid msg token")
        items = self.messages.get(str(body.get("open_kfid")), [])
        cursor = str(body.get("cursor") or "")
        start = int(cursor.removeprefix("c")) if cursor else 0
        limit = min(int(body.get("limit") or 1000), 1000)
        page = items[start : start + limit]
        end = start + len(page)
        return web.json_response(
            {
                "errcode": 0,
                "errmsg": "ok",
                "next_cursor": f"c{end}",
                "has_more": 1 if end < len(items) else 0,
                "msg_list": page,
            }
        )

    async def _send_msg(self, request: web.Request) -> web.Response:
        error = self._token_error(request)
        if error is not None:
            return error
        body = await request.json()
        session = self.sessions.get((body.get("open_kfid", ""), body.get("touser", "")))
        if session is None or session.state not in (0, 1):
            self.refused.append((95018, body))
            return self._error(95018, "send msg failed, session state not allowed")
        if self.now - session.last_customer > WINDOW or session.sent >= 5:
            self.refused.append((95001, body))
            return self._error(95001, "send msg count limit")
        if body.get("msgtype") == "text":
            if len(body["text"]["content"].encode()) > 2048:
                return self._error(44004, "text content too long")
        elif body.get("msgtype") != "msgmenu":
            return self._error(40008, "invalid message type")
        session.sent += 1
        self.sent.append(body)
        return web.json_response({"errcode": 0, "errmsg": "ok", "msgid": f"sent-{next(self._ids)}"})

    async def _send_on_event(self, request: web.Request) -> web.Response:
        error = self._token_error(request)
        if error is not None:
            return error
        body = await request.json()
        if body.get("code") not in self.welcome_codes:
            return self._error(95016, "invalid code")  # used or unknown
        self.welcome_codes.discard(body["code"])
        self.on_event.append(body)
        return web.json_response({"errcode": 0, "errmsg": "ok", "msgid": "event-msg"})

    async def _state_get(self, request: web.Request) -> web.Response:
        error = self._token_error(request)
        if error is not None:
            return error
        body = await request.json()
        session = self.sessions.get((body.get("open_kfid", ""), body.get("external_userid", "")))
        state = session.state if session else 4
        answer: dict[str, Any] = {"errcode": 0, "errmsg": "ok", "service_state": state}
        if session and session.state == 3:
            answer["servicer_userid"] = session.servicer
        return web.json_response(answer)

    async def _state_trans(self, request: web.Request) -> web.Response:
        error = self._token_error(request)
        if error is not None:
            return error
        body = await request.json()
        key = (body.get("open_kfid", ""), body.get("external_userid", ""))
        session = self.sessions.get(key)
        target = int(body.get("service_state", -1))
        if session is None or target not in ALLOWED[session.state]:
            return self._error(95016, "service state transition not allowed")
        servicer = body.get("servicer_userid")
        if target == 3 and servicer not in self.servicers:
            return self._error(95014, "servicer not in service")
        session.state = target
        session.servicer = servicer if target == 3 else None
        self.transitions.append((key[1], target, session.servicer))
        return web.json_response({"errcode": 0, "errmsg": "ok", "msg_code": "MSG_CODE"})

    # what WeChat users and WeCom do
    def _add(self, open_kfid: str, item: dict[str, Any]) -> dict[str, Any]:
        item.setdefault("msgid", f"msg-{next(self._ids)}")
        item.setdefault("open_kfid", open_kfid)
        self.messages.setdefault(open_kfid, []).append(item)
        return item

    def customer_says(
        self,
        open_kfid: str,
        user: str,
        content: str,
        *,
        menu_id: str | None = None,
        send_time: float | None = None,
        msgid: str | None = None,
    ) -> dict[str, Any]:
        at = self.now if send_time is None else send_time
        session = self.sessions.get((open_kfid, user))
        if session is None or session.state == 4:
            session = self.sessions[(open_kfid, user)] = Session()
        session.last_customer, session.sent = at, 0
        text: dict[str, Any] = {"content": content}
        if menu_id:
            text["menu_id"] = menu_id
        item = {
            "external_userid": user,
            "send_time": int(at),
            "origin": 3,
            "msgtype": "text",
            "text": text,
        }
        if msgid:
            item["msgid"] = msgid
        return self._add(open_kfid, item)

    def customer_sends_image(self, open_kfid: str, user: str) -> dict[str, Any]:
        session = self.sessions.setdefault((open_kfid, user), Session())
        session.last_customer, session.sent = self.now, 0
        item = {
            "external_userid": user,
            "send_time": int(self.now),
            "origin": 3,
            "msgtype": "image",
            "image": {"media_id": "MEDIA"},
        }
        return self._add(open_kfid, item)

    def enter_session(self, open_kfid: str, user: str) -> str:
        code = f"welcome-{next(self._ids)}"
        self.welcome_codes.add(code)
        self.sessions.setdefault((open_kfid, user), Session())
        self._add(
            open_kfid,
            {
                "send_time": int(self.now),
                "origin": 4,
                "msgtype": "event",
                "event": {
                    "event_type": "enter_session",
                    "open_kfid": open_kfid,
                    "external_userid": user,
                    "scene": "123",
                    "welcome_code": code,
                },
            },
        )
        return code

    def end_session(self, open_kfid: str, user: str) -> None:
        """The servicer (or WeCom) ends the session: state 4 and the event."""
        session = self.sessions[(open_kfid, user)]
        old = session.servicer
        session.state, session.servicer = 4, None
        self._add(
            open_kfid,
            {
                "send_time": int(self.now),
                "origin": 4,
                "msgtype": "event",
                "event": {
                    "event_type": "session_status_change",
                    "open_kfid": open_kfid,
                    "external_userid": user,
                    "change_type": 3,
                    "old_servicer_userid": old or "",
                    "msg_code": "END_CODE",
                },
            },
        )

    def expire_tokens(self) -> None:
        for token in self.tokens:
            self.tokens[token] = self.now

    def callback_body(self, open_kfid: str) -> tuple[dict[str, str], bytes]:
        """The query and body of a ``kf_msg_or_event`` callback (a new sync token)."""
        sync_token = f"ENC{next(self._ids)}"
        self.callback_tokens.add(sync_token)
        inner = (
            f"<xml><ToUserName><![CDATA[{self.corpid}]]></ToUserName>"
            f"<CreateTime>{int(self.now)}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
            "<Event><![CDATA[kf_msg_or_event]]></Event>"
            f"<Token><![CDATA[{sync_token}]]></Token>"
            f"<OpenKfId><![CDATA[{open_kfid}]]></OpenKfId></xml>"
        )
        encrypted = encrypt(self.aes_key, self.corpid, inner)
        timestamp, nonce = str(int(self.now)), str(next(self._ids))
        query = {
            "msg_signature": sha1_signature(self.token, timestamp, nonce, encrypted),
            "timestamp": timestamp,
            "nonce": nonce,
        }
        body = (
            f"<xml><ToUserName><![CDATA[{self.corpid}]]></ToUserName>"
            f"<Encrypt><![CDATA[{encrypted}]]></Encrypt><AgentID><![CDATA[]]></AgentID></xml>"
        ).encode()
        return query, body

    def texts_to(self, user: str) -> list[str]:
        """What the user received (text contents and menu heads), in order."""
        out: list[str] = []
        for body in self.sent:
            if body["touser"] != user:
                continue
            if body["msgtype"] == "text":
                out.append(body["text"]["content"])
            else:
                out.append(body["msgmenu"].get("head_content", ""))
        return out
