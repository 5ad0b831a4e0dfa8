"""The WeChat Official Account channel: documented signature vectors, URL verification, forged
signatures, plain and safe (AES) mode, MsgId deduplication, the 5-second rule against a local
fake WeChat API server (stable_token cached, refreshed on expiry and on 40001, forced only when
the refused token comes back), replies over 2,048 bytes sent in parts, Redis down, OpenID
binding with one history shared with the app channel, and bad XML (always a 4xx)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import random
import socket
import struct
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import jwt
import pytest
import yaml
from backends import REDIS_URL, redis_problem
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from test_server_project import TrainedBot, new_agent, trained_bot

from bot.agent import Agent
from bot.channels.wechat.channel import WeChatChannel, render_messages, settings_from_mapping
from bot.channels.wechat.crypto import WeChatCrypto, WeChatCryptoError, signature
from bot.channels.wechat.store import BindingStore
from bot.cli.main import build_parser
from bot.cli.wechat_cmd import register
from bot.errors import ConfigError
from bot.server import ServerSettings, create_app
from bot.server.settings import JwtSettings

__all__ = ["trained_bot"]
URL = "/webhooks/wechat/webhook"
TOKEN = "AAAAA"
AES_KEY = base64.b64encode(bytes(range(32))).decode().rstrip("=")
APPID = "wx0123456789abcdef"
SECRET = "app-secret"
JWT_SECRET = "test-secret-0123456789abcdef-0123456789abcdef"
OPENID = "oUSER_OPENID_1"
# a long Chinese answer (5,000+ bytes of UTF-8) with sentence and line ends
LONG_ANSWER = "\n".join(
    f"第{n}条：跨行转账在工作日十七点前提交的，一般当日到账；节假日提交的顺延到下一个工作日。"
    f"如超过两个工作日仍未到账，请携带本人有效身份证件到任一网点查询，或拨打客服热线咨询！"
    for n in range(1, 22)
)


# -- a fake WeChat API ---------------------------------------------------------------------


class FakeWeChat:
    """The WeChat API on 127.0.0.1: ``stable_token`` (the same token until it expires or a
    ``force_refresh`` replaces it, which invalidates the old one) and the customer-service
    send, which refuses unknown or expired tokens."""

    def __init__(self) -> None:
        self.tokens: list[str] = []  # every token issued, in order
        self.current: str | None = None
        self.valid: set[str] = set()
        self.expired: set[str] = set()
        self.fetches: list[bool] = []  # force_refresh of every stable_token call
        self.requests: list[dict[str, Any]] = []  # their bodies
        self.legacy_fetches = 0  # GET /cgi-bin/token (not to be used)
        self.sent: list[tuple[str, dict[str, Any]]] = []  # (access_token, body)
        self.refuse: set[str] = set()  # tokens answered with 40001 once
        self.refuse_all = False
        self.delay = 0.0  # seconds a stable_token call takes
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, data: dict[str, Any]) -> None:
                body = json.dumps(data).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                with fake.lock:
                    fake.legacy_fetches += 1
                self._answer({"errcode": 40013, "errmsg": "use stable_token"})

            def do_POST(self) -> None:
                url = urlparse(self.path)
                token = parse_qs(url.query).get("access_token", [""])[0]
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if url.path == "/cgi-bin/stable_token":
                    time.sleep(fake.delay)
                    self._answer(fake.stable_token(body))
                    return
                with fake.lock:
                    if url.path != "/cgi-bin/message/custom/send":
                        answer = {"errcode": 404, "errmsg": "no such api"}
                    elif token in fake.expired:
                        answer = {"errcode": 42001, "errmsg": "access_token expired"}
                    elif fake.refuse_all or token in fake.refuse or token not in fake.valid:
                        fake.refuse.discard(token)
                        answer = {"errcode": 40001, "errmsg": "invalid credential"}
                    else:
                        fake.sent.append((token, body))
                        answer = {"errcode": 0, "errmsg": "ok"}
                self._answer(answer)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stable_token(self, body: dict[str, Any]) -> dict[str, Any]:
        force = body.get("force_refresh", False)
        if (
            body.get("grant_type") != "client_credential"
            or body.get("appid") != APPID
            or body.get("secret") != SECRET
            or not isinstance(force, bool)
        ):
            return {"errcode": 40013, "errmsg": "invalid appid or arguments"}
        with self.lock:
            self.requests.append(body)
            self.fetches.append(force)
            if force or self.current is None:
                self.issue()
            return {"access_token": self.current, "expires_in": 7200}

    def issue(self) -> None:
        """A new token; the previous one stops working (as after a forced refresh)."""
        if self.current is not None:
            self.valid.discard(self.current)
        self.current = f"TOKEN-{len(self.tokens) + 1}"
        self.tokens.append(self.current)
        self.valid.add(self.current)

    def expire(self) -> None:
        """The current token's 7200 s are over: sends get 42001, the next fetch a new one."""
        with self.lock:
            if self.current is not None:
                self.valid.discard(self.current)
                self.expired.add(self.current)
                self.current = None

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_wechat() -> Iterator[FakeWeChat]:
    fake = FakeWeChat()
    yield fake
    fake.stop()


# -- helpers -------------------------------------------------------------------------------


def sha1(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


# The channel's wall clock in these tests: the documented vectors' timestamps are in its window.
VECTOR_TIME = 1714036800.0


def signed(timestamp: str = "1714036504", nonce: str | None = None, **extra: str) -> str:
    """A signed query; a fresh nonce unless given (each nonce signs one request)."""
    nonce = nonce or str(random.randrange(10**9))
    query = {
        "timestamp": timestamp,
        "nonce": nonce,
        "signature": sha1(TOKEN, timestamp, nonce),
        **extra,
    }
    return URL + "?" + "&".join(f"{k}={v}" for k, v in query.items())


def text_xml(content: str, msg_id: str = "1001", openid: str = OPENID) -> bytes:
    return (
        f"<xml><ToUserName><![CDATA[gh_bank]]></ToUserName>"
        f"<FromUserName><![CDATA[{openid}]]></FromUserName><CreateTime>1348831860"
        f"</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{content}]]>"
        f"</Content><MsgId>{msg_id}</MsgId></xml>"
    ).encode()


def event_xml(event: str, key: str = "", created: str = "1348831861") -> bytes:
    return (
        f"<xml><ToUserName><![CDATA[gh_bank]]></ToUserName><FromUserName><![CDATA["
        f"{OPENID}]]></FromUserName><CreateTime>{created}</CreateTime><MsgType><![CDATA["
        f"event]]></MsgType><Event><![CDATA[{event}]]></Event><EventKey><![CDATA[{key}]]>"
        f"</EventKey></xml>"
    ).encode()


def reply_fields(body: str) -> dict[str, str]:
    return {child.tag: child.text or "" for child in ET.fromstring(body)}


def aes_encrypt(message: str) -> str:
    """Safe-mode encryption written out here, independently of the channel's code."""
    key = base64.b64decode(AES_KEY + "=")
    plain = os.urandom(16) + struct.pack(">I", len(message.encode())) + message.encode()
    plain += APPID.encode()
    pad = 32 - len(plain) % 32
    plain += bytes([pad]) * pad
    encryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(encryptor.update(plain) + encryptor.finalize()).decode()


def aes_decrypt(encrypted: str) -> str:
    key = base64.b64decode(AES_KEY + "=")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    plain = decryptor.update(base64.b64decode(encrypted)) + decryptor.finalize()
    plain = plain[: -plain[-1]]
    length = struct.unpack(">I", plain[16:20])[0]
    assert plain[20 + length :].decode() == APPID
    return plain[20 : 20 + length].decode()


def make_app(
    bot: TrainedBot,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    agent: Agent | None = None,
    **wechat: Any,
) -> Any:
    """An app whose WeChat settings come from a project's config.yml (as ``bot run``)."""
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    section = {
        "token": TOKEN,
        "aes_key": AES_KEY,
        "appid": APPID,
        "secret": SECRET,
        "reply_timeout": 30,
        "bindings_db": f"sqlite:///{tmp_path / 'bindings.db'}",
        **wechat,
    }
    (project / "config.yml").write_text(
        yaml.safe_dump({"channels": {"wechat": section}}), encoding="utf-8"
    )
    monkeypatch.setenv("BOT_PROJECT", str(project))
    for name in (
        "BOT_WECHAT_TOKEN",
        "BOT_WECHAT_AES_KEY",
        "BOT_WECHAT_APPID",
        "BOT_WECHAT_SECRET",
        "BOT_WECHAT_API_BASE",
        "BOT_WECHAT_BINDINGS_DB",
    ):
        monkeypatch.delenv(name, raising=False)
    app = create_app(
        agent or new_agent(bot), ServerSettings(jwt=JwtSettings(JWT_SECRET)), close_stores=False
    )
    channel = app.blueprints["channel_wechat"].ctx.channel
    if channel is not None:
        channel.wall_clock = lambda: VECTOR_TIME  # the fixed vectors' time
    return app


def closed_port() -> int:
    """A local port nothing listens on (connections are refused at once)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def answer_with(
    monkeypatch: pytest.MonkeyPatch,
    channel: WeChatChannel,
    answer: str,
    turns: list[str] | None = None,
) -> None:
    """Every turn of ``channel`` answers ``answer`` (and records the user's text)."""

    async def run(message: Any) -> list[dict[str, Any]]:
        if turns is not None:
            turns.append(message.text)
        return [{"recipient_id": message.sender_id, "text": answer}]

    monkeypatch.setattr(channel, "on_new_message", run)


def channel_of(app: Any) -> WeChatChannel:
    channel = app.blueprints["channel_wechat"].ctx.channel
    assert isinstance(channel, WeChatChannel)
    return channel


# -- signatures and settings ---------------------------------------------------------------


def test_documented_signature_vectors() -> None:
    assert (
        signature(TOKEN, "1714036504", "1514711492") == "f464b24fc39322e44b38aa78f5edd27bd1441696"
    )
    assert signature(TOKEN, "1714037059", "486452656") == "899cf89e464efb63f54ddac96b0a0a235f53aa78"


def test_crypto_round_trip_and_wrong_app() -> None:
    crypto = WeChatCrypto(TOKEN, AES_KEY, APPID)
    assert crypto.decrypt(aes_encrypt("<xml>你好</xml>")) == "<xml>你好</xml>"
    assert aes_decrypt(crypto.encrypt("回复😀")) == "回复😀"
    with pytest.raises(WeChatCryptoError, match="another app id"):
        WeChatCrypto(TOKEN, AES_KEY, "wx-other").decrypt(crypto.encrypt("x"))
    with pytest.raises(WeChatCryptoError):
        crypto.decrypt("not base64!!")
    with pytest.raises(WeChatCryptoError, match="43 characters"):
        WeChatCrypto(TOKEN, "short", APPID)


def test_settings_env_wins_and_bad_values_are_refused() -> None:
    settings = settings_from_mapping(
        {"token": "from-config", "reply_timeout": 2},
        {"BOT_WECHAT_TOKEN": "from-env", "BOT_WECHAT_APPID": APPID},
    )
    assert settings.token == "from-env" and settings.appid == APPID
    assert settings.reply_timeout == 2.0 and settings.enabled
    assert not settings_from_mapping({}, {}).enabled
    with pytest.raises(ConfigError, match="reply_timeout"):
        settings_from_mapping({"reply_timeout": "soon"}, {})


def test_buttons_render_as_numbered_lines() -> None:
    content, payloads = render_messages(
        [
            {"text": "您好"},
            {
                "text": "请选择",
                "buttons": [
                    {"title": "查余额", "payload": "/query_balance"},
                    {"title": "转人工", "payload": "/request_human"},
                ],
            },
        ]
    )
    assert content.startswith("您好\n\n请选择\n1. 查余额\n2. 转人工")
    assert payloads == ["/query_balance", "/request_human"]


# -- the webhook ---------------------------------------------------------------------------


async def test_disabled_without_a_token(
    trained_bot: TrainedBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(trained_bot, tmp_path, monkeypatch, token=None)
    assert app.blueprints["channel_wechat"].ctx.channel is None
    _, response = await app.asgi_client.get(signed(echostr="x"))
    assert response.status == 404 and response.json["status"] == 404


async def test_url_verification(
    trained_bot: TrainedBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(trained_bot, tmp_path, monkeypatch)
    _, response = await app.asgi_client.get(signed(echostr="echo-123"))
    assert response.status == 200 and response.text == "echo-123"
    _, response = await app.asgi_client.get(signed("1714037059", "486452656", echostr="e2"))
    assert response.text == "e2"
    _, response = await app.asgi_client.get(
        URL + "?timestamp=1714036504&nonce=1514711492&echostr=x&signature=" + "0" * 40
    )
    assert response.status == 403 and "signature" in response.json["error"]


async def test_forged_post_is_403_and_not_processed(
    trained_bot: TrainedBot,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    agent = new_agent(trained_bot)
    app = make_app(trained_bot, tmp_path, monkeypatch, agent)
    forged = URL + "?timestamp=1714036504&nonce=1514711492&signature=" + sha1("x", "1", "2")
    _, response = await app.asgi_client.post(forged, content=text_xml("你好"))
    assert response.status == 403
    _, response = await app.asgi_client.post(URL, content=text_xml("你好"))  # unsigned
    assert response.status == 403
    assert "bad signature" in caplog.text
    assert not await agent.processor.tracker_store.exists(f"wechat:{OPENID}")
    _, response = await app.asgi_client.get("/metrics")  # a documented kind, not "client"
    assert 'bot_errors_total{kind="forbidden"} 2.0' in response.text


@pytest.mark.parametrize(
    "query",
    [
        "timestamp=1714036504&nonce=1514711492&signature=%E7%AD%BE%E5%90%8D",  # 签名
        "timestamp=1714036504&nonce=1514711492&signature=%ff",
        "timestamp=%ed%a0%80&nonce=%ff&signature=" + "0" * 40,
        "timestamp=1714036504&nonce=1514711492&signature=" + "0" * 40 + "&encrypt_type=aes"
        "&msg_signature=%E7%AD%BE",
    ],
)
async def test_non_ascii_signatures_are_403_not_500(
    trained_bot: TrainedBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, query: str
) -> None:
    app = make_app(trained_bot, tmp_path, monkeypatch)
    _, response = await app.asgi_client.post(f"{URL}?{query}", content=text_xml("你好"))
    assert response.status == 403 and "signature" in response.json["error"]
    _, response = await app.asgi_client.get(f"{URL}?{query}&echostr=x")
    assert response.status == 403
    _, response = await app.asgi_client.post(signed(), content=text_xml("你好", "6101"))
    assert response.status == 200


async def test_safe_mode_non_ascii_msg_signature_is_403(
    trained_bot: TrainedBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(trained_bot, tmp_path, monkeypatch)
    body = f"<xml><ToUserName>gh_bank</ToUserName><Encrypt>{aes_encrypt('x')}</Encrypt></xml>"
    _, response = await app.asgi_client.post(
        signed(encrypt_type="aes", msg_signature="%E7%AD%BE"), content=body.encode()
    )
    assert response.status == 403 and "msg_signature" in response.json["error"]


async def test_a_non_ascii_digit_is_a_message_not_a_500(
    trained_bot: TrainedBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """'²' and '①' are str.isdigit() but not int(); '４' (full width) presses button 4."""
    agent = new_agent(trained_bot)
    app = make_app(trained_bot, tmp_path, monkeypatch, agent)
    _, response = await app.asgi_client.post(signed(), content=text_xml("你好", "6201"))
    assert "4. 转人工" in reply_fields(response.text)["Content"]
    for n, digit in enumerate(["²", "①"]):
        _, response = await app.asgi_client.post(signed(), content=text_xml(digit, f"620{n + 2}"))
        assert response.status == 200, response.text
    _, response = await app.asgi_client.post(signed(), content=text_xml("你好", "6204"))
    _, response = await app.asgi_client.post(signed(), content=text_xml("４", "6205"))
    assert response.status == 200
    tracker = await agent.processor.get_tracker(f"wechat:{OPENID}")
    assert tracker.latest_message["intent"]["name"] == "request_human"


async def test_plain_text_message_gets_a_passive_xml_reply(
    trained_bot: TrainedBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = new_agent(trained_bot)
    app = make_app(trained_bot, tmp_path, monkeypatch, agent)
    _, response = await app.asgi_client.post(signed(), content=text_xml("你好"))
    assert response.status == 200 and "xml" in response.headers["content-type"]
    reply = reply_fields(response.text)
    assert reply["ToUserName"] == OPENID and reply["FromUserName"] == "gh_bank"
    assert reply["MsgType"] == "text" and reply["Content"]
    assert ". 转人工" in reply["Content"]  # the handoff button as a numbered line
    tracker = await agent.processor.get_tracker(f"wechat:{OPENID}")
    assert tracker.slots.get("customer_id") is None
    user = [e for e in tracker.events if e["event"] == "user"]
    assert user[-1]["input_channel"] == "wechat"


async def test_safe_mode_round_trip(
    trained_bot: TrainedBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(trained_bot, tmp_path, monkeypatch)
    encrypted = aes_encrypt(text_xml("你好", "2001").decode())
    body = (
        f"<xml><ToUserName><![CDATA[gh_bank]]></ToUserName><Encrypt><![CDATA[{encrypted}]]>"
        "</Encrypt></xml>"
    )
    ts, nonce = "1714036504", "1514711492"
    url = signed(ts, nonce, encrypt_type="aes", msg_signature=sha1(TOKEN, ts, nonce, encrypted))
    _, response = await app.asgi_client.post(url, content=body.encode())
    assert response.status == 200
    outer = reply_fields(response.text)
    assert outer["MsgSignature"] == sha1(
        TOKEN, outer["TimeStamp"], outer["Nonce"], outer["Encrypt"]
    )
    inner = reply_fields(aes_decrypt(outer["Encrypt"]))
    assert inner["ToUserName"] == OPENID and inner["Content"]
    # a wrong msg_signature is refused although the plain signature is right
    bad = signed(ts, nonce, encrypt_type="aes", msg_signature="0" * 40)
    _, response = await app.asgi_client.post(bad, content=body.encode())
    assert response.status == 403


async def test_subscribe_greets_and_click_sends_the_payload(
    trained_bot: TrainedBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = new_agent(trained_bot)
    app = make_app(trained_bot, tmp_path, monkeypatch, agent)
    _, response = await app.asgi_client.post(signed(), content=event_xml("subscribe"))
    assert response.status == 200 and reply_fields(response.text)["Content"]
    tracker = await agent.processor.get_tracker(f"wechat:{OPENID}")
    assert tracker.latest_message["intent"]["name"] == "greet"
    _, response = await app.asgi_client.post(
        signed(), content=event_xml("CLICK", "/request_human", "1348831862")
    )
    assert response.status == 200
    tracker = await agent.processor.get_tracker(f"wechat:{OPENID}")
    assert tracker.latest_message["intent"]["name"] == "request_human"
    _, response = await app.asgi_client.post(signed(), content=event_xml("unsubscribe"))
    assert response.text == "success"


async def test_a_retried_msg_id_runs_once(
    trained_bot: TrainedBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = new_agent(trained_bot)
    app = make_app(trained_bot, tmp_path, monkeypatch, agent)
    _, first = await app.asgi_client.post(signed(), content=text_xml("你好", "3001"))
    _, second = await app.asgi_client.post(signed(), content=text_xml("你好", "3001"))
    assert first.status == second.status == 200
    assert reply_fields(first.text)["Content"] == reply_fields(second.text)["Content"]
    tracker = await agent.processor.get_tracker(f"wechat:{OPENID}")
    assert len([e for e in tracker.events if e["event"] == "user"]) == 1
    await app.asgi_client.post(signed(), content=text_xml("你好", "3002"))
    tracker = await agent.processor.get_tracker(f"wechat:{OPENID}")
    assert len([e for e in tracker.events if e["event"] == "user"]) == 2


async def test_slow_turn_answers_success_then_customer_service_api(
    trained_bot: TrainedBot,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fake_wechat: FakeWeChat,
) -> None:
    agent = new_agent(trained_bot)
    app = make_app(
        trained_bot, tmp_path, monkeypatch, agent, reply_timeout=0.01, api_base=fake_wechat.base
    )
    channel = channel_of(app)
    assert channel.api is not None
    now = [1000.0]
    channel.api.clock = lambda: now[0]
    turns = []
    original = agent.handle

    async def slow(message: Any) -> Any:
        turns.append(message.text)
        # slower than the passive window (reply_timeout 0.01 s); the test client waits for
        # tasks the request started, so this cannot block on an event set later
        await asyncio.sleep(0.05)
        return await original(message)

    monkeypatch.setattr(agent, "handle", slow)
    _, response = await app.asgi_client.post(signed(), content=text_xml("你好", "4001"))
    assert response.status == 200 and response.text == "success"
    _, retry = await app.asgi_client.post(signed(), content=text_xml("你好", "4001"))
    assert retry.text == "success"
    await channel.drain()
    assert turns == ["你好"]  # the retry ran no turn
    assert len(fake_wechat.sent) == 1
    token, body = fake_wechat.sent[0]
    assert token == "TOKEN-1" and body["touser"] == OPENID
    assert body["msgtype"] == "text" and body["text"]["content"]

    # the cached token is reused ...
    await app.asgi_client.post(signed(), content=text_xml("开户要带什么材料", "4002"))
    await channel.drain()
    assert fake_wechat.tokens == ["TOKEN-1"] and fake_wechat.sent[-1][0] == "TOKEN-1"
    # ... refreshed when it expires ...
    now[0] += 7200
    fake_wechat.expire()
    await app.asgi_client.post(signed(), content=text_xml("谢谢", "4003"))
    await channel.drain()
    assert fake_wechat.tokens == ["TOKEN-1", "TOKEN-2"] and fake_wechat.sent[-1][0] == "TOKEN-2"
    # ... and fetched again when WeChat refuses it (40001): stable_token hands back the
    # refused token, so the second fetch forces a refresh
    fake_wechat.refuse.add("TOKEN-2")
    await app.asgi_client.post(signed(), content=text_xml("你好", "4004"))
    await channel.drain()
    assert fake_wechat.tokens[-1] == "TOKEN-3" and fake_wechat.sent[-1][0] == "TOKEN-3"
    assert fake_wechat.fetches == [False, False, False, True]
    assert len(fake_wechat.sent) == 4 and fake_wechat.legacy_fetches == 0


async def test_bound_openid_is_the_customer_across_channels(
    trained_bot: TrainedBot,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    agent = new_agent(trained_bot)
    app = make_app(trained_bot, tmp_path, monkeypatch, agent)
    # the operator command, on the project's configured bindings database
    parser = build_parser()
    sub: Any = parser._subparsers._group_actions[0]  # type: ignore[union-attr]
    if "wechat" not in sub.choices:  # until main.py registers bot.cli.wechat_cmd
        register(sub)
    args = parser.parse_args(["wechat", "bind", OPENID, "C1001"])
    assert args.handler(args) == 0
    args = parser.parse_args(["wechat", "list"])
    assert args.handler(args) == 0
    assert f"{OPENID}\tC1001" in capsys.readouterr().out

    _, response = await app.asgi_client.post(signed(), content=text_xml("你好", "5001"))
    assert response.status == 200
    assert not await agent.processor.tracker_store.exists(f"wechat:{OPENID}")
    tracker = await agent.processor.get_tracker("customer:C1001")
    assert tracker.slots["customer_id"] == "C1001"

    token = jwt.encode({"sub": "C1001", "exp": int(time.time()) + 600}, JWT_SECRET, "HS256")
    _, response = await app.asgi_client.post(
        "/webhooks/app/webhook",
        json={"message": "开户要带什么材料"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status == 200
    tracker = await agent.processor.get_tracker("customer:C1001")
    channels = [e["input_channel"] for e in tracker.events if e["event"] == "user"]
    assert channels == ["wechat", "app"]  # one history

    store = BindingStore.from_url(f"sqlite:///{tmp_path / 'bindings.db'}")
    assert store.unbind(OPENID) and store.customer(OPENID) is None
    await app.asgi_client.post(signed(), content=text_xml("你好", "5002"))
    assert await agent.processor.tracker_store.exists(f"wechat:{OPENID}")


BAD_XML = [
    (b"", 400),
    (b'{"json": true}', 400),
    (b"<xml><ToUserName>", 400),
    (b"<root><a/></root>", 400),
    (
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;">]>'
        b"<xml><Content>&b;</Content></xml>",
        400,
    ),
    (b"<xml><MsgType>text</MsgType><Content>hi</Content></xml>", 400),  # no FromUserName
    (b"\xff\xfe<xml>", 400),
    # the DOCTYPE refusal holds in any encoding the XML declaration names
    (
        (
            '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE x [<!ENTITY a "b">]><xml>'
            f"<FromUserName>{OPENID}</FromUserName><MsgType>text</MsgType><Content>&a;</Content>"
            "</xml>"
        ).encode("utf-16"),
        400,
    ),
    (b'<?xml version="1.0" encoding="UTF-7"?>+ADw-!DOCTYPE x+AD4-<xml/>', 400),
    (b"<xml>" + b"<a>x</a>" * 4000 + b"</xml>", 413),
    (b"<xml>" + b"x" * 200_000 + b"</xml>", 413),
]


@pytest.mark.parametrize(("body", "status"), BAD_XML)
async def test_malformed_bodies_are_4xx(
    trained_bot: TrainedBot,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    body: bytes,
    status: int,
) -> None:
    app = make_app(trained_bot, tmp_path, monkeypatch)
    _, response = await app.asgi_client.post(signed(), content=body)
    assert response.status == status, response.text
    assert response.json["status"] == status
    _, response = await app.asgi_client.post(signed(), content=text_xml("你好", "6001"))
    assert response.status == 200


async def test_an_agents_reply_reaches_the_wechat_user(
    trained_bot: TrainedBot,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fake_wechat: FakeWeChat,
) -> None:
    """Handoff over WeChat: the customer asks for a person in WeChat; the agent's reply and the
    rating request are pushed through the customer-service API to that OpenID."""
    app = make_app(trained_bot, tmp_path, monkeypatch, api_base=fake_wechat.base)
    handoff = app.ctx.handoff
    assert "wechat" in handoff.senders
    handoff.store.agents.add("wang", "wang-password", handoff.config.group_names)
    await app.asgi_client.post(signed(), content=text_xml("转人工", "5001"))
    conversation = f"wechat:{OPENID}"
    assert handoff.store.handoffs.latest(conversation).status == "waiting"
    _, login = await app.asgi_client.post(
        "/agent/login", json={"username": "wang", "password": "wang-password"}
    )
    headers = {"Authorization": f"Bearer {login.json['token']}"}
    _, accepted = await app.asgi_client.post(
        f"/agent/conversations/{conversation}/accept", headers=headers
    )
    assert accepted.status == 200
    _, sent = await app.asgi_client.post(
        f"/agent/conversations/{conversation}/messages",
        headers=headers,
        json={"text": "您好，我是客服小王"},
    )
    assert sent.status == 200
    await handoff.drain()
    texts = [body["text"]["content"] for _token, body in fake_wechat.sent]
    assert all(body["touser"] == OPENID for _token, body in fake_wechat.sent)
    assert "您好，我是客服小王" in texts


async def test_a_retry_on_another_worker_runs_no_second_turn(
    trained_bot: TrainedBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two workers (two apps over one tracker store) share MsgId claims through Redis."""
    import random

    problem = redis_problem()
    if problem:
        pytest.skip(problem)
    monkeypatch.setenv("BOT_REDIS_URL", REDIS_URL)
    agent = new_agent(trained_bot)
    first_worker = make_app(trained_bot, tmp_path, monkeypatch, agent)
    second_worker = make_app(trained_bot, tmp_path, monkeypatch, agent)
    msg_id = str(random.randrange(10**15, 10**16))  # Redis keeps claims for 5 minutes
    _, first = await first_worker.asgi_client.post(signed(), content=text_xml("你好", msg_id))
    _, retry = await second_worker.asgi_client.post(signed(), content=text_xml("你好", msg_id))
    assert first.status == retry.status == 200
    assert "Content" in reply_fields(first.text) and retry.text == "success"
    tracker = await agent.processor.get_tracker(f"wechat:{OPENID}")
    assert len([e for e in tracker.events if e["event"] == "user"]) == 1
    for app in (first_worker, second_worker):  # and share one access token through Redis
        api, claims = channel_of(app).api, channel_of(app).claims
        assert api is not None and api.shared is not None and claims is not None
        assert api.shared.key == f"bankbot:wechat:token:{APPID}"
        assert api.shared.redis is claims.redis  # one connection pool per worker
        await channel_of(app).close()


async def test_with_redis_a_retry_after_a_failed_turn_runs_it(
    trained_bot: TrainedBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first attempt that failed forgets its MsgId (WeChat's retry should try again): its
    Redis claim must go too, or the retry is answered "success" and the message is lost."""
    import random

    problem = redis_problem()
    if problem:
        pytest.skip(problem)
    monkeypatch.setenv("BOT_REDIS_URL", REDIS_URL)
    app = make_app(trained_bot, tmp_path, monkeypatch)
    channel = channel_of(app)
    calls: list[str] = []

    async def flaky(message: Any) -> list[dict[str, Any]]:
        calls.append(message.text)
        if len(calls) == 1:
            raise RuntimeError("the database went away for a moment")
        return [{"recipient_id": message.sender_id, "text": "您好"}]

    monkeypatch.setattr(channel, "on_new_message", flaky)
    msg_id = str(random.randrange(10**15, 10**16))
    _, first = await app.asgi_client.post(signed(), content=text_xml("你好", msg_id))
    assert first.status == 500
    _, retry = await app.asgi_client.post(signed(), content=text_xml("你好", msg_id))
    assert retry.status == 200 and reply_fields(retry.text)["Content"] == "您好"
    assert calls == ["你好", "你好"]
    await channel.close()


def assert_parts_of(fake: FakeWeChat, answer: str) -> None:
    parts = [body["text"]["content"] for _token, body in fake.sent]
    assert len(parts) >= 3 and "".join(parts) == answer
    assert all(len(part.encode()) <= 2048 for part in parts)
    assert all(body["touser"] == OPENID for _token, body in fake.sent)


async def test_a_reply_over_2048_bytes_is_success_then_parts_in_order(
    trained_bot: TrainedBot,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fake_wechat: FakeWeChat,
) -> None:
    assert len(LONG_ANSWER.encode()) > 5000
    app = make_app(trained_bot, tmp_path, monkeypatch, api_base=fake_wechat.base)
    channel = channel_of(app)
    turns: list[str] = []
    answer_with(monkeypatch, channel, LONG_ANSWER, turns)
    _, response = await app.asgi_client.post(signed(), content=text_xml("转账多久到账", "7001"))
    assert response.status == 200 and response.text == "success"
    _, retry = await app.asgi_client.post(signed(), content=text_xml("转账多久到账", "7001"))
    assert retry.text == "success"
    await channel.drain()
    assert turns == ["转账多久到账"]  # the retry ran no turn and sent nothing more
    assert_parts_of(fake_wechat, LONG_ANSWER)
    # a short reply is still passive
    answer_with(monkeypatch, channel, "好的")
    _, response = await app.asgi_client.post(signed(), content=text_xml("谢谢", "7002"))
    assert reply_fields(response.text)["Content"] == "好的"


async def test_a_long_reply_without_the_api_is_cut_to_its_first_part(
    trained_bot: TrainedBot,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = make_app(trained_bot, tmp_path, monkeypatch, secret=None)
    channel = channel_of(app)
    assert channel.api is None
    answer_with(monkeypatch, channel, LONG_ANSWER)
    _, response = await app.asgi_client.post(signed(), content=text_xml("转账多久到账", "7101"))
    content = reply_fields(response.text)["Content"]
    assert LONG_ANSWER.startswith(content) and content.endswith("！\n")
    assert 1000 < len(content.encode()) <= 2048
    assert "only its first part is sent" in caplog.text


async def test_redis_down_still_deduplicates_and_sends(
    trained_bot: TrainedBot,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    fake_wechat: FakeWeChat,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With BOT_REDIS_URL pointing at nothing, the claim and the shared token fall back to the
    worker's own: the reply still goes out, the retry still runs no turn."""
    monkeypatch.setenv("BOT_REDIS_URL", f"redis://127.0.0.1:{closed_port()}/0")
    app = make_app(trained_bot, tmp_path, monkeypatch, api_base=fake_wechat.base)
    channel = channel_of(app)
    assert channel.claims is not None and channel.api is not None
    assert channel.api.shared is not None  # the token is meant to come through Redis
    turns: list[str] = []
    answer_with(monkeypatch, channel, LONG_ANSWER, turns)
    _, response = await app.asgi_client.post(signed(), content=text_xml("转账多久到账", "7201"))
    _, retry = await app.asgi_client.post(signed(), content=text_xml("转账多久到账", "7201"))
    assert response.text == retry.text == "success"
    await channel.drain()
    assert turns == ["转账多久到账"]
    assert_parts_of(fake_wechat, LONG_ANSWER)
    assert fake_wechat.fetches == [False] and channel.api.token_fetches == 1
    assert "Redis unavailable for the shared WeChat access token" in caplog.text
    await channel.close()
