"""The socket.io channel with Rasa's protocol, driven by a real ``socketio.AsyncClient`` against
a running server (websocket and polling transports), and credentials.yml choosing channels."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import socketio
from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json

from bot.agent import Agent
from bot.channels.socketio import socket_messages
from bot.core.messages import UserMessage
from bot.core.processor import MessageProcessor
from bot.model.archive import LoadedModel, ModelMeta
from bot.server import ServerSettings, create_app
from bot.server.channels import Credentials, read_credentials

TOKEN = "rasa-auth-token-0123456789"
DOMAIN = """
version: "3.1"
intents: [greet, card, offer, query_balance]
entities: [card_last4]
slots:
  card_last4:
    type: text
    mappings: [{type: from_entity, entity: card_last4}]
responses:
  utter_greet:
    - text: "您好！\\n\\n请问有什么可以帮您？"
      buttons: [{title: 查余额, payload: /query_balance}, {title: 转人工, payload: /request_human}]
  utter_card: [{text: 这是您的卡面, image: "https://bank.example/card.png"}]
  utter_offer: [{custom: {type: offer_card, rate: 0.035}}]
  utter_balance: [{text: "尾号{card_last4}的余额请在App查看。"}]
"""
RULES = """
rules:
- rule: greet
  steps: [{intent: greet}, {action: utter_greet}]
- rule: card
  steps: [{intent: card}, {action: utter_card}]
- rule: offer
  steps: [{intent: offer}, {action: utter_offer}]
- rule: balance
  steps: [{intent: query_balance}, {action: utter_balance}]
"""


@pytest.fixture
def agent(dialogue, tmp_path: Path) -> Agent:  # type: ignore[no-untyped-def]
    processor = MessageProcessor(*dialogue(DOMAIN, RULES, [("RulePolicy", {})]), seed=1)
    meta = ModelMeta("m", "fp", "2026-12-03", "0.1.0", {}, {})
    return Agent(
        LoadedModel(meta=meta, nlu=None, path=tmp_path / "m.tar.gz"),  # type: ignore[arg-type]
        processor,
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def credentials(tmp_path: Path, text: str) -> Credentials:
    path = tmp_path / "credentials.yml"
    path.write_text(text, encoding="utf-8")
    found = read_credentials(path)
    assert found is not None
    return found


@contextlib.asynccontextmanager
async def serving(
    agent: Agent, creds: Credentials | None, settings: ServerSettings | None = None
) -> AsyncIterator[str]:
    app = create_app(
        agent, settings or ServerSettings(auth_token=TOKEN), close_stores=False, credentials=creds
    )
    app.config.TOUCHUP = False  # Sanic rewrites its own methods once per process otherwise
    port = free_port()
    server: Any = await app.create_server(host="127.0.0.1", port=port, return_asyncio_server=True)
    await server.startup()
    await server.before_start()
    await server.after_start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await server.before_stop()
        server.close()
        await server.wait_closed()
        await server.after_stop()


class Widget:
    """A rasa-webchat-like client: records every event it receives."""

    def __init__(self, bot_event: str = "bot_uttered") -> None:
        self.client = socketio.AsyncClient(reconnection=False)
        self.received: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        for name in ("session_confirm", bot_event, "error"):
            self.client.on(name, self._recorder(name))

    def _recorder(self, name: str) -> Any:
        async def record(data: Any = None) -> None:
            await self.received.put((name, data))

        return record

    async def connect(self, url: str, transport: str = "websocket") -> Widget:
        await self.client.connect(url, socketio_path="/socket.io", transports=[transport])
        return self

    async def next(self, timeout: float = 5.0) -> tuple[str, Any]:
        return await asyncio.wait_for(self.received.get(), timeout)

    async def take(self, n: int) -> list[tuple[str, Any]]:
        return [await self.next() for _ in range(n)]

    async def close(self) -> None:
        # A polling client's disconnect waits for its pending long poll (up to the 25 s ping
        # interval); the server has ended the session by then, so do not wait for it.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.client.disconnect(), 1.0)

    async def quiet(self, seconds: float = 0.3) -> bool:
        try:
            await asyncio.wait_for(self.received.get(), seconds)
        except TimeoutError:
            return True
        return False


SOCKET = "socketio:\n  session_persistence: false\n"
PERSISTENT = "rest:\nsocketio:\n  session_persistence: true\n"


def test_socket_payloads_are_rasas() -> None:
    assert socket_messages(
        {
            "recipient_id": "s",
            "text": "第一段\n\n第二段",
            "buttons": [{"title": "查余额", "payload": "/query_balance"}],
        }
    ) == [
        {"text": "第一段"},
        {
            "text": "第二段",
            "quick_replies": [
                {"content_type": "text", "title": "查余额", "payload": "/query_balance"}
            ],
        },
    ]
    assert socket_messages({"recipient_id": "s", "image": "https://x/y.png"}) == [
        {"attachment": {"type": "image", "payload": {"src": "https://x/y.png"}}}
    ]
    assert socket_messages({"recipient_id": "s", "custom": {"data": {"k": 1}}}) == [{"k": 1}]
    assert socket_messages({"recipient_id": "s", "custom": {"type": "card"}}) == [{"type": "card"}]
    assert socket_messages({"recipient_id": "s", "elements": [{"title": "a"}]}) == [
        {
            "attachment": {
                "type": "template",
                "payload": {"template_type": "generic", "elements": {"title": "a"}},
            }
        }
    ]


@pytest.mark.parametrize("transport", ["websocket", "polling"])
async def test_session_and_answers(agent: Agent, tmp_path: Path, transport: str) -> None:
    async with serving(agent, credentials(tmp_path, SOCKET)) as url:
        widget = await Widget().connect(url, transport)
        await widget.client.emit("session_request", {"session_id": "ignored-without-persist"})
        name, session = await widget.next()
        assert (name, session) == ("session_confirm", "ignored-without-persist")
        await widget.client.emit(
            "user_uttered",
            {"message": "/greet", "session_id": session, "metadata": {"page": "/cards"}},
        )
        assert await widget.take(2) == [
            ("bot_uttered", {"text": "您好！"}),
            (
                "bot_uttered",
                {
                    "text": "请问有什么可以帮您？",
                    "quick_replies": [
                        {"content_type": "text", "title": "查余额", "payload": "/query_balance"},
                        {"content_type": "text", "title": "转人工", "payload": "/request_human"},
                    ],
                },
            ),
        ]
        await widget.client.emit("user_uttered", {"message": "/card", "session_id": session})
        assert await widget.next() == ("bot_uttered", {"text": "这是您的卡面"})
        assert await widget.next() == (
            "bot_uttered",
            {"attachment": {"type": "image", "payload": {"src": "https://bank.example/card.png"}}},
        )
        await widget.client.emit("user_uttered", {"message": "/offer", "session_id": session})
        assert await widget.next() == ("bot_uttered", {"type": "offer_card", "rate": 0.035})
        # without persistence the conversation is the socket's id
        sid = widget.client.get_sid()
        await widget.close()
    tracker = await agent.processor.get_tracker(str(sid))
    users = [e for e in tracker.events if e["event"] == "user"]
    assert [u["text"] for u in users] == ["/greet", "/card", "/offer"]
    assert users[0]["input_channel"] == "socketio"
    assert users[0]["metadata"] == {"page": "/cards"}


async def test_session_persistence_keeps_the_conversation(agent: Agent, tmp_path: Path) -> None:
    async with serving(agent, credentials(tmp_path, PERSISTENT)) as url:
        first = await Widget().connect(url)
        await first.client.emit("session_request", {"session_id": "web-7f3a"})
        assert await first.next() == ("session_confirm", "web-7f3a")
        await first.client.emit(
            "user_uttered",
            {"message": '/query_balance{"card_last4": "1234"}', "session_id": "web-7f3a"},
        )
        assert await first.next() == ("bot_uttered", {"text": "尾号1234的余额请在App查看。"})
        await first.client.disconnect()
        # the widget reconnects (a new socket) with the session id it kept
        again = await Widget().connect(url)
        other_tab = await Widget().connect(url, "polling")
        for widget in (again, other_tab):
            await widget.client.emit("session_request", {"session_id": "web-7f3a"})
            assert await widget.next() == ("session_confirm", "web-7f3a")
        await again.client.emit(
            "user_uttered", {"message": "/query_balance", "session_id": "web-7f3a"}
        )
        expected = ("bot_uttered", {"text": "尾号1234的余额请在App查看。"})  # the slot was kept
        assert await again.next() == expected
        assert await other_tab.next() == expected  # every socket of the session hears it
        # a fresh session when the widget has none
        new = await Widget().connect(url)
        await new.client.emit("session_request", {})
        name, fresh = await new.next()
        assert name == "session_confirm" and isinstance(fresh, str) and len(fresh) == 32
        for widget in (again, other_tab, new):
            await widget.close()
    tracker = await agent.processor.get_tracker("web-7f3a")
    assert [e["input_channel"] for e in tracker.events if e["event"] == "user"] == [
        "socketio",
        "socketio",
    ]


async def test_custom_event_names(agent: Agent, tmp_path: Path) -> None:
    creds = credentials(tmp_path, "socketio:\n  user_message_evt: ask\n  bot_message_evt: answer\n")
    async with serving(agent, creds) as url:
        widget = await Widget("answer").connect(url)
        await widget.client.emit("ask", {"message": "/card"})
        assert (await widget.next())[0] == "answer"
        await widget.client.emit("user_uttered", {"message": "/card"})  # not the event now
        assert await widget.next() == (
            "answer",
            {"attachment": {"type": "image", "payload": {"src": "https://bank.example/card.png"}}},
        )
        assert await widget.quiet()
        await widget.client.disconnect()


async def test_bad_payloads_answer_an_error_and_break_nothing(agent: Agent, tmp_path: Path) -> None:
    async with serving(agent, credentials(tmp_path, PERSISTENT)) as url:
        widget = await Widget().connect(url)
        # a session id that poses as a verified customer: refused, a fresh session instead
        await widget.client.emit("session_request", {"session_id": "customer:C1001"})
        name, error = await widget.next()
        assert name == "error" and error["status"] == 400 and "reserved" in error["error"]
        name, session = await widget.next()
        assert name == "session_confirm" and session != "customer:C1001"
        for payload, problem in [
            ("just text", "needs an object"),
            ({"session_id": session}, "'message'"),
            ({"message": "", "session_id": session}, "'message'"),
            ({"message": 5, "session_id": session}, "'message'"),
            ({"message": "hi", "session_id": session, "metadata": [1]}, "'metadata'"),
            ({"message": "hi", "session_id": "someone-else"}, "another one"),
        ]:
            await widget.client.emit("user_uttered", payload)
            name, error = await widget.next()
            assert name == "error" and problem in error["error"], (payload, error)
        await widget.client.emit("session_request", "not an object")  # a fresh session
        name, session = await widget.next()
        assert name == "session_confirm"
        await widget.client.emit("user_uttered", {"message": "/greet", "session_id": session})
        assert (await widget.next())[0] == "bot_uttered"
        await widget.client.disconnect()
        nobody = await Widget().connect(url)
        await nobody.client.emit("user_uttered", {"message": "/greet"})
        name, error = await nobody.next()
        assert name == "error" and "session_request" in error["error"]
        await nobody.client.emit("user_uttered", {"message": "/greet", "session_id": "wechat:oABC"})
        name, error = await nobody.next()
        assert name == "error" and "reserved" in error["error"]
        await nobody.client.disconnect()
        async with httpx.AsyncClient() as http:  # the server is fine
            response = await http.get(f"{url}/health")
            assert response.status_code == 200
    assert not await agent.processor.tracker_store.exists("customer:C1001")
    assert not await agent.processor.tracker_store.exists("someone-else")


async def test_rate_limit_is_an_error_event(agent: Agent, tmp_path: Path) -> None:
    from bot.server.settings import RateLimit

    settings = ServerSettings(rate_limit=RateLimit(per_minute=1, burst=1))
    async with serving(agent, credentials(tmp_path, SOCKET), settings) as url:
        widget = await Widget().connect(url)
        await widget.client.emit("user_uttered", {"message": "/card"})
        await widget.take(2)
        await widget.client.emit("user_uttered", {"message": "/card"})
        name, error = await widget.next()
        assert name == "error" and error["status"] == 429
        await widget.client.disconnect()


async def test_the_http_api_can_push_to_a_socket(agent: Agent, tmp_path: Path) -> None:
    async with serving(agent, credentials(tmp_path, PERSISTENT)) as url:
        widget = await Widget().connect(url)
        await widget.client.emit("session_request", {"session_id": "push-1"})
        await widget.next()
        await widget.client.emit("user_uttered", {"message": "/card", "session_id": "push-1"})
        await widget.take(2)
        async with httpx.AsyncClient() as http:
            response = await http.post(
                f"{url}/conversations/push-1/trigger_intent?token={TOKEN}&output_channel=latest",
                json={"name": "offer"},
            )
            assert response.status_code == 200
            assert response.json()["messages"] == [
                {"recipient_id": "push-1", "custom": {"type": "offer_card", "rate": 0.035}}
            ]
            assert await widget.next() == ("bot_uttered", {"type": "offer_card", "rate": 0.035})
            response = await http.post(
                f"{url}/conversations/push-1/tracker/events?token={TOKEN}"
                "&output_channel=socketio&execute_side_effects=true",
                json={"event": "bot", "text": "人工客服：您好", "timestamp": time.time()},
            )
            assert response.status_code == 200
            assert await widget.next() == ("bot_uttered", {"text": "人工客服：您好"})
        await widget.client.disconnect()


async def test_without_credentials_todays_channels(agent: Agent) -> None:
    async with serving(agent, None) as url, httpx.AsyncClient() as http:
        response = await http.get(f"{url}/socket.io/?EIO=4&transport=polling")
        assert response.status_code == 404
        response = await http.post(
            f"{url}/webhooks/rest/webhook", json={"sender": "r", "message": "/greet"}
        )
        assert response.status_code == 200 and response.json()


async def test_credentials_choose_the_rasa_channels_not_ours(agent: Agent, tmp_path: Path) -> None:
    async with serving(agent, credentials(tmp_path, SOCKET)) as url, httpx.AsyncClient() as h:
        # no rest: in credentials.yml, so no REST channel (as in Rasa) ...
        response = await h.post(
            f"{url}/webhooks/rest/webhook", json={"sender": "r", "message": "/greet"}
        )
        assert response.status_code == 404
        # ... but our own app channel follows config.yml, whatever credentials.yml lists
        response = await h.post(
            f"{url}/webhooks/app/webhook", json={"sender": "a", "message": "/greet"}
        )
        assert response.status_code == 200 and response.json()
        assert (await h.get(f"{url}/webhooks/socketio/")).json() == {"status": "ok"}


class EchoChannel:
    """A custom channel as credentials.yml names it: ``test_channel_socketio.EchoChannel``."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    @classmethod
    def name(cls) -> str:
        return "echo"

    @classmethod
    def from_credentials(cls, credentials: dict[str, Any]) -> EchoChannel:
        return cls(str(credentials.get("prefix", "")))

    def blueprint(self, on_new_message: Any) -> Blueprint:
        bp = Blueprint("echo_channel")

        @bp.post("/webhook")
        async def webhook(request: Request) -> HTTPResponse:
            body = request.json
            replies = await on_new_message(
                UserMessage(body["text"], self.prefix + body["user"], "echo")
            )
            return json(replies, ensure_ascii=False)

        return bp


async def test_custom_channels_and_unknown_keys(
    agent: Agent, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    text = (
        "rest:\n"
        "rasa:\n  url: http://localhost:5002/api\n"
        "telegram:\n  access_token: x\n"
        "wechat:\n"
        "nowhere.Channel:\n"
        "test_channel_socketio.EchoChannel:\n  prefix: 'echo-'\n"
    )
    with caplog.at_level(logging.INFO, logger="bot.server.channels"):
        creds = credentials(tmp_path, text)
        async with serving(agent, creds) as url, httpx.AsyncClient() as http:
            response = await http.post(
                f"{url}/webhooks/echo/webhook", json={"text": "/card", "user": "u1"}
            )
            assert response.status_code == 200
            assert response.json()[0]["text"] == "这是您的卡面"
            response = await http.post(
                f"{url}/webhooks/echo/webhook", json={"text": "/card", "user": ":x"}
            )
    lines = [r.getMessage() for r in caplog.records]
    assert sum("Rasa X" in line for line in lines) == 1
    assert (
        sum("'telegram' is a Rasa channel bankbot does not provide" in line for line in lines) == 1
    )
    assert sum("'nowhere.Channel' cannot be loaded" in line for line in lines) == 1
    assert sum("channels.wechat in config.yml" in line for line in lines) == 1
    assert (await agent.processor.get_tracker("echo-u1")).latest_input_channel == "echo"


def test_broken_credentials_are_a_clear_error(tmp_path: Path) -> None:
    from bot.errors import ConfigError

    assert read_credentials(tmp_path / "missing.yml") is None
    for text, problem in [
        ("rest: [\n", "credentials.yml"),
        ("- rest\n", "mapping"),
        ("socketio: yes\n", "'socketio' must be a mapping"),
    ]:
        (tmp_path / "credentials.yml").write_text(text, encoding="utf-8")
        with pytest.raises(ConfigError, match=problem):
            read_credentials(tmp_path / "credentials.yml")


def test_bad_socketio_settings_refuse_to_start(agent: Agent, tmp_path: Path) -> None:
    from bot.errors import ConfigError

    creds = credentials(tmp_path, "socketio:\n  session_persistence: maybe\n")
    with pytest.raises(ConfigError, match="session_persistence"):
        create_app(agent, credentials=creds)


def test_bot_run_reads_the_projects_credentials(tiny_model: Any, tmp_path: Path) -> None:
    """``app_for_project`` takes the Project, so ``--credentials elsewhere.yml`` is honoured."""
    from bot.project import Project
    from bot.server.app import app_for_project

    assert app_for_project(Project(tiny_model.root), name="plain").ctx.socketio is None
    elsewhere = tmp_path / "elsewhere.yml"
    elsewhere.write_text("socketio:\n  session_persistence: true\n", encoding="utf-8")
    app = app_for_project(Project(tiny_model.root, credentials_path=elsewhere), name="creds")
    assert app.ctx.socketio is not None and app.ctx.socketio.settings.session_persistence
    paths = {route.path for route in app.router.routes}
    assert "webhooks/rest/webhook" not in paths and "webhooks/app/webhook" in paths


async def test_a_jwt_key_guards_the_connection(agent: Agent, tmp_path: Path) -> None:
    import jwt

    key = "socket-widget-key-0123456789abcdef0123"
    creds = credentials(tmp_path, f"socketio:\n  jwt_key: {key}\n")
    async with serving(agent, creds) as url:
        refused = Widget()
        with pytest.raises(socketio.exceptions.ConnectionError):
            await refused.connect(url)
        forged = socketio.AsyncClient(reconnection=False)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await forged.connect(
                url,
                transports=["websocket"],
                auth={"token": jwt.encode({"sub": "w"}, "another-key" * 4)},
            )
        widget = Widget()
        await widget.client.connect(
            url,
            transports=["websocket"],
            auth={"token": "Bearer " + jwt.encode({"sub": "widget"}, key)},
        )
        await widget.client.emit("user_uttered", {"message": "/card"})
        assert (await widget.next())[0] == "bot_uttered"
        await widget.close()


async def test_a_payload_over_the_body_cap_is_refused_by_the_transport(
    agent: Agent, tmp_path: Path
) -> None:
    settings = ServerSettings(max_body_bytes=4096)
    async with serving(agent, credentials(tmp_path, SOCKET), settings) as url:
        widget = await Widget().connect(url)
        await widget.client.emit("user_uttered", {"message": "查" * 10_000})
        assert await widget.quiet(1.0)  # nothing was processed
        await widget.close()
        again = await Widget().connect(url)  # the server carries on
        await again.client.emit("user_uttered", {"message": "/card"})
        assert (await again.next())[0] == "bot_uttered"
        await again.close()
    for sender in await agent.processor.tracker_store.senders():
        events = (await agent.processor.get_tracker(sender)).events
        assert all(len(e.get("text") or "") < 1000 for e in events)
