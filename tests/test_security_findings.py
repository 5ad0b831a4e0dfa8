"""The security findings and hostile-input 500s of issue 19, each through the public surface
(HTTP against the app, a raw socket against ``bot run``): production refuses the development
secrets, a failed login changes no state, an agent's access ends with the assignment, ids are
percent-decoded once, logins are throttled per account and address (shared through Redis),
WeChat timestamps outside the window and replayed nonces are refused, and deep JSON, ``crit``
JWTs, unknown XML encodings, non-UTF-8 headers, mistyped parse data, NUL bytes in static paths
and garbage on the socket are 4xx (or a prompt close), never a 500 or a hang."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import yaml
from backends import REDIS_URL, redis_problem
from test_channel_wechat import OPENID, TOKEN, make_app, sha1, text_xml
from test_handoff_api import CONFIG, REST, login, say
from test_server_project import TrainedBot, new_agent, trained_bot
from test_server_run import free_port

from bot.channels.identity import issue_token
from bot.channels.wechat.channel import WeChatChannel
from bot.errors import ConfigError
from bot.handoff.config import DEV_AGENT_SECRET, parse
from bot.handoff.factory import knowledge_search
from bot.handoff.service import HandoffService
from bot.handoff.store import HandoffStore
from bot.server import ServerSettings, create_app
from bot.server.login_throttle import LoginThrottle
from bot.server.settings import DEV_JWT_SECRET, ApiJwtSettings, JwtSettings

__all__ = ["trained_bot"]
APP = "/webhooks/app/webhook"
WECHAT = "/webhooks/wechat/webhook"
OPERATOR_TOKEN = "operator-token-0123456789"


def service_app(
    bot: TrainedBot,
    config: dict[str, Any] | None = None,
    *,
    production: bool = False,
    settings: ServerSettings | None = None,
) -> tuple[Any, Any, HandoffService]:
    agent = new_agent(bot)
    search, category = knowledge_search(bot.root)
    service = HandoffService(
        parse(config or CONFIG, {}),
        HandoffStore.from_url("sqlite://"),
        agent.processor,
        search=search,
        categories=category,
        production=production,
    )
    service.store.agents.add("alice", "alice-password", ["账户", "投诉"])
    service.store.agents.add("bob", "bob-password", ["信用卡"])
    service.store.agents.add("sue", "sue-password", ["账户"], role="supervisor")
    app = create_app(agent, settings, handoff=service, name=f"sec{id(service)}")
    return app, agent, service


def dev_agent_token(username: str = "alice") -> dict[str, str]:
    now = int(time.time())
    claims = {"sub": username, "role": "agent", "typ": "agent", "iat": now, "exp": now + 600}
    return {"Authorization": f"Bearer {jwt.encode(claims, DEV_AGENT_SECRET, algorithm='HS256')}"}


# -- 1. production refuses every development secret -------------------------------------------


async def test_production_refuses_a_token_signed_with_the_dev_agent_secret(
    trained_bot: TrainedBot, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        app, _agent, service = service_app(trained_bot, production=True)
    assert any("BOT_AGENT_SECRET" in r.getMessage() for r in caplog.records)  # said at start
    await say(app, "p1", "转人工")
    forged = dev_agent_token()
    base = "/agent/conversations/p1"
    for method, path, body in (
        ("get", "/agent/me", None),
        ("get", "/agent/queue", None),
        ("post", f"{base}/accept", None),
        ("get", f"{base}/context", None),
        ("get", f"{base}/messages", None),
        ("post", f"{base}/messages", {"text": "您好"}),
        ("get", "/agent/events", None),
    ):
        call = getattr(app.asgi_client, method)
        kwargs: dict[str, Any] = {"headers": forged}
        if body is not None:
            kwargs["json"] = body
        _, response = await call(path, **kwargs)
        assert response.status == 503, (path, response.status, response.text)
        assert "BOT_AGENT_SECRET" in response.json["error"]
    assert service.store.handoffs.latest("p1").status == "waiting"  # type: ignore[union-attr]


def test_production_refuses_the_other_development_secrets() -> None:
    with pytest.raises(ConfigError, match="development JWT secret"):
        ServerSettings(production=True).check()  # the app channel's customer tokens
    with pytest.raises(ConfigError, match="development JWT secret"):
        ServerSettings(production=True, jwt=JwtSettings(secret=DEV_JWT_SECRET)).check()
    with pytest.raises(ConfigError, match="public development secret"):
        ServerSettings(api_jwt=ApiJwtSettings(secret=DEV_JWT_SECRET)).check()
    with pytest.raises(ConfigError, match="at least 16"):
        ServerSettings(
            production=True, jwt=JwtSettings(secret="s" * 40), operator_token="short"
        ).check()


# -- 2. a failed login changes no state --------------------------------------------------------


async def test_a_failed_login_neither_sets_available_nor_reserves(trained_bot: TrainedBot) -> None:
    config = {**CONFIG, "queue": {"auto_assign": True}}
    for production, password, status in (
        (True, "alice-password", 503),  # no BOT_AGENT_SECRET in production
        (False, "not-her-password", 401),
    ):
        app, _agent, service = service_app(trained_bot, config, production=production)
        await say(app, "f1", "转人工")
        before = service.store.agents.get("alice")
        assert before is not None and before.status == "away"
        _, refused = await app.asgi_client.post(
            "/agent/login", json={"username": "alice", "password": password}
        )
        assert refused.status == status
        await service.drain()
        after = service.store.agents.get("alice")
        assert after is not None and after.status == "away"
        handoff = service.store.handoffs.latest("f1")
        assert handoff is not None and handoff.status == "waiting" and handoff.agent is None
        actions = [e["action"] for e in service.store.audit.log("f1")]
        assert "assign" not in actions, actions


# -- 3. access ends with the assignment --------------------------------------------------------


async def test_after_closing_the_agent_can_no_longer_read_or_write(trained_bot: TrainedBot) -> None:
    app, _agent, service = service_app(trained_bot)
    await say(app, "a1", "转人工")
    alice = await login(app, "alice")
    base = "/agent/conversations/a1"
    _, accepted = await app.asgi_client.post(f"{base}/accept", headers=alice)
    assert accepted.status == 200
    _, closed = await app.asgi_client.post(
        f"{base}/close", headers=alice, json={"resolution": "resolved"}
    )
    assert closed.status == 200
    topics = ["queue", "agent:alice", "group:账户", "group:投诉"]  # what her console hears
    async with service.bus.subscribe(topics) as heard:
        await say(app, "a1", "我的手机号是13812345678，还有一个问题")  # after the close
        await service.drain()
        kinds = [heard.get_nowait()[0] for _ in range(heard.qsize())]
    assert "message" not in kinds, kinds
    for method, path, body in (
        ("get", f"{base}/context", None),
        ("get", f"{base}/messages", None),
        ("post", f"{base}/messages", {"text": "还在吗"}),
        ("post", f"{base}/notes", {"text": "备注"}),
        ("get", f"{base}/suggestions", None),
    ):
        call = getattr(app.asgi_client, method)
        kwargs: dict[str, Any] = {"headers": alice}
        if body is not None:
            kwargs["json"] = body
        _, response = await call(path, **kwargs)
        assert response.status == 403, (path, response.status, response.text)
    sue = await login(app, "sue")  # a supervisor still may
    _, packet = await app.asgi_client.get(f"{base}/context", headers=sue)
    assert packet.status == 200


async def test_after_a_transfer_the_agent_can_no_longer_read(trained_bot: TrainedBot) -> None:
    app, _agent, _service = service_app(trained_bot)
    await say(app, "a2", "转人工")
    alice = await login(app, "alice")
    base = "/agent/conversations/a2"
    _, accepted = await app.asgi_client.post(f"{base}/accept", headers=alice)
    assert accepted.status == 200
    _, moved = await app.asgi_client.post(
        f"{base}/transfer", headers=alice, json={"group": "信用卡"}
    )
    assert moved.status == 200
    for path in (f"{base}/context", f"{base}/messages"):
        _, response = await app.asgi_client.get(path, headers=alice)
        assert response.status == 403, (path, response.status)
    bob = await login(app, "bob")  # waiting in his group now
    _, packet = await app.asgi_client.get(f"{base}/context", headers=bob)
    assert packet.status == 200


# -- 4. ids are percent-decoded once -----------------------------------------------------------


async def test_agent_paths_are_decoded_exactly_once(trained_bot: TrainedBot) -> None:
    app, _agent, _service = service_app(trained_bot)
    token = issue_token("C1003", JwtSettings())
    _, asked = await app.asgi_client.post(
        APP, json={"message": "转人工"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert asked.status == 200
    bob = await login(app, "bob")  # not his group: he must not reach it by double encoding
    _, twice = await app.asgi_client.get(
        "/agent/conversations/customer%253AC1003/context", headers=bob
    )
    assert twice.status == 404 and "customer%3AC1003" in twice.json["error"]
    alice = await login(app, "alice")
    _, once = await app.asgi_client.get(
        "/agent/conversations/customer%3AC1003/context", headers=alice
    )
    assert once.status == 200


# -- 5. login throttling -----------------------------------------------------------------------


async def wrong(app: Any, username: str) -> Any:
    _, response = await app.asgi_client.post(
        "/agent/login", json={"username": username, "password": "guessed-wrong"}
    )
    return response


async def test_five_wrong_passwords_lock_the_account_with_retry_after(
    trained_bot: TrainedBot,
) -> None:
    app, _agent, service = service_app(trained_bot)
    for _ in range(5):
        assert (await wrong(app, "alice")).status == 401
    locked = await wrong(app, "alice")
    assert locked.status == 429
    assert int(locked.headers["retry-after"]) >= 1
    assert "too many failed logins" in locked.json["error"]
    _, right = await app.asgi_client.post(
        "/agent/login", json={"username": "alice", "password": "alice-password"}
    )
    assert right.status == 429  # even the right password waits
    assert service.store.agents.get("alice").status == "away"  # type: ignore[union-attr]
    _, other = await app.asgi_client.post(
        "/agent/login", json={"username": "bob", "password": "bob-password"}
    )
    assert other.status == 200  # another account from the same address is not locked yet


def test_lockouts_grow_exponentially_and_a_success_resets_the_account() -> None:
    now = [1000.0]
    throttle = LoginThrottle(max_failures=3, lockout_seconds=10, clock=lambda: now[0])
    for _ in range(3):
        assert throttle.retry_after_local("alice", "1.2.3.4") == 0
        throttle.failed_local("alice", "1.2.3.4")
    assert throttle.retry_after_local("alice", "1.2.3.4") == pytest.approx(10)
    now[0] += 11
    assert throttle.retry_after_local("alice", "1.2.3.4") == 0
    throttle.failed_local("alice", "1.2.3.4")
    assert throttle.retry_after_local("alice", "1.2.3.4") == pytest.approx(20)
    now[0] += 21
    throttle.succeeded_local("alice")
    assert throttle.retry_after_local("alice", "5.6.7.8") == 0


async def test_many_accounts_from_one_address_are_throttled(trained_bot: TrainedBot) -> None:
    app, _agent, _service = service_app(trained_bot)
    statuses = [(await wrong(app, f"nobody{i}")).status for i in range(25)]
    assert statuses[0] == 401 and statuses[-1] == 429, statuses


async def test_with_redis_the_lockout_is_shared_by_every_process(
    trained_bot: TrainedBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    problem = redis_problem()
    if problem:
        pytest.skip(problem)
    monkeypatch.setenv("BOT_REDIS_URL", REDIS_URL)
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter("bankbot:login:address:*"):  # earlier runs, same address
        client.delete(key)
    client.close()
    name = f"shared{time.time_ns()}"
    one, _a, _s = service_app(trained_bot)
    two, _b, service_two = service_app(trained_bot)
    service_two.store.agents.add(name, "shared-password", ["账户"])
    for _ in range(5):
        assert (await wrong(one, name)).status == 401
    locked = await wrong(two, name)  # the other process knows
    assert locked.status == 429 and int(locked.headers["retry-after"]) >= 1


async def test_redis_unreachable_falls_back_to_in_process_with_one_log_line(
    trained_bot: TrainedBot, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("BOT_REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    app, _agent, _service = service_app(trained_bot)
    with caplog.at_level(logging.WARNING, logger="bot.server.login_throttle"):
        statuses = [(await wrong(app, "alice")).status for _ in range(6)]
    assert statuses == [401] * 5 + [429]
    lines = [r for r in caplog.records if r.name == "bot.server.login_throttle"]
    assert len(lines) == 1 and "in-process" in lines[0].getMessage()


# -- 6. WeChat timestamps and nonces -----------------------------------------------------------


def wechat_app(bot: TrainedBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The WeChat channel's app, its clock the real one."""
    app = make_app(bot, tmp_path, monkeypatch)
    app.blueprints["channel_wechat"].ctx.channel.wall_clock = time.time
    return app


def wechat_query(timestamp: str, nonce: str, **extra: str) -> str:
    query = {"timestamp": timestamp, "nonce": nonce, "signature": sha1(TOKEN, timestamp, nonce)}
    return WECHAT + "?" + "&".join(f"{k}={v}" for k, v in {**query, **extra}.items())


async def test_wechat_refuses_timestamps_outside_the_window(
    trained_bot: TrainedBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = wechat_app(trained_bot, tmp_path, monkeypatch)
    second = int(time.time())
    # the channel's clock held at one second, so 301 s either side is outside the 300 s window
    # however long the requests take (a loaded machine once took a second between the two)
    app.blueprints["channel_wechat"].ctx.channel.wall_clock = lambda: float(second)
    now = str(second)
    for stale in ("1", str(second - 301), str(second + 301), "soon"):
        _, response = await app.asgi_client.get(wechat_query(stale, "77", echostr="e"))
        assert response.status == 403, (stale, response.status)
        assert "timestamp" in response.json["error"]
    _, fresh = await app.asgi_client.get(wechat_query(now, "78", echostr="e"))
    assert fresh.status == 200 and fresh.text == "e"


async def test_wechat_remembers_nonces_so_a_signed_query_cannot_be_replayed(
    trained_bot: TrainedBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = wechat_app(trained_bot, tmp_path, monkeypatch)
    channel = app.blueprints["channel_wechat"].ctx.channel
    assert isinstance(channel, WeChatChannel)
    turns: list[str] = []

    async def run(message: Any) -> list[dict[str, Any]]:
        turns.append(message.text)
        return [{"recipient_id": message.sender_id, "text": "好的"}]

    monkeypatch.setattr(channel, "on_new_message", run)
    query = wechat_query(str(int(time.time())), "4242")
    _, first = await app.asgi_client.post(query, content=text_xml("你好", "5001"))
    assert first.status == 200
    _, retry = await app.asgi_client.post(query, content=text_xml("你好", "5001"))
    assert retry.status == 200  # WeChat's own retry of the same message: no second turn
    _, replay = await app.asgi_client.post(query, content=text_xml("转账给张三", "5002"))
    assert replay.status == 403 and "replayed" in replay.json["error"]
    assert turns == ["你好"]


async def test_with_redis_a_nonce_replayed_to_another_worker_is_refused(
    trained_bot: TrainedBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    problem = redis_problem()
    if problem:
        pytest.skip(problem)
    monkeypatch.setenv("BOT_REDIS_URL", REDIS_URL)
    one = wechat_app(trained_bot, tmp_path, monkeypatch)
    two = wechat_app(trained_bot, tmp_path, monkeypatch)
    for app in (one, two):

        async def run(message: Any) -> list[dict[str, Any]]:
            return [{"recipient_id": message.sender_id, "text": "好的"}]

        monkeypatch.setattr(app.blueprints["channel_wechat"].ctx.channel, "on_new_message", run)
    query = wechat_query(str(int(time.time())), str(time.time_ns()))
    msg_id = str(time.time_ns())
    _, first = await one.asgi_client.post(query, content=text_xml("你好", msg_id))
    _, replay = await two.asgi_client.post(query, content=text_xml("转账", msg_id + "1"))
    assert first.status == 200 and replay.status == 403, (first.status, replay.status)
    for app in (one, two):
        await app.blueprints["channel_wechat"].ctx.channel.close()


async def test_the_documented_vectors_pass_with_the_clock_at_their_time(
    trained_bot: TrainedBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = wechat_app(trained_bot, tmp_path, monkeypatch)
    channel = app.blueprints["channel_wechat"].ctx.channel
    monkeypatch.setattr(channel, "wall_clock", lambda: 1714036600.0)
    _, response = await app.asgi_client.get(
        WECHAT + "?signature=f464b24fc39322e44b38aa78f5edd27bd1441696"
        "&timestamp=1714036504&nonce=1514711492&echostr=ok"
    )
    assert response.status == 200 and response.text == "ok"


# -- 7. deep JSON ------------------------------------------------------------------------------


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize("depth", [33, 500, 970])
async def test_deeply_nested_metadata_is_400(trained_bot: TrainedBot, depth: int) -> None:
    app = create_app(new_agent(trained_bot), ServerSettings(max_body_bytes=1 << 20))
    for url, body in (
        (REST, f'{{"sender": "d1", "message": "你好", "metadata": {{"x": {nested(depth)}}}}}'),
        (APP, f'{{"sender": "d2", "message": "你好", "metadata": {{"x": {nested(depth)}}}}}'),
    ):
        _, response = await app.asgi_client.post(
            url, content=body.encode(), headers={"Content-Type": "application/json"}
        )
        assert response.status == 400, (url, depth, response.status)
        assert "nested" in response.json["error"]
    _, fine = await app.asgi_client.post(
        REST, json={"sender": "d3", "message": "你好", "metadata": {"a": [[[[{"b": 1}]]]]}}
    )
    assert fine.status == 200


# -- 8. crit JWT header ------------------------------------------------------------------------


async def test_a_jwt_with_a_crit_header_is_401(trained_bot: TrainedBot) -> None:
    secret = "crit-secret-0123456789abcdef-0123456789"
    app, _agent, _service = service_app(
        trained_bot, settings=ServerSettings(jwt=JwtSettings(secret=secret))
    )
    claims = {"sub": "C1001", "exp": int(time.time()) + 600}
    for headers in ({"crit": ["x-bank"], "x-bank": 1}, {"crit": "x"}, {"crit": []}):
        token = jwt.encode(claims, secret, algorithm="HS256", headers=headers)
        bearer = {"Authorization": f"Bearer {token}"}
        _, webhook = await app.asgi_client.post(APP, json={"message": "你好"}, headers=bearer)
        _, history = await app.asgi_client.get("/webhooks/app/history", headers=bearer)
        _, events = await app.asgi_client.get(f"/webhooks/app/events?token={token}")
        _, agent = await app.asgi_client.get("/agent/me", headers=bearer)
        statuses = [r.status for r in (webhook, history, events, agent)]
        assert statuses == [401] * 4, (headers, statuses)


# -- 9. WeChat XML with an unknown encoding ----------------------------------------------------


async def test_wechat_xml_declaring_an_unknown_encoding_is_400(
    trained_bot: TrainedBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = wechat_app(trained_bot, tmp_path, monkeypatch)
    for i, encoding in enumerate(("x-foo", "utf-7-nope", "")):
        body = f'<?xml version="1.0" encoding="{encoding}"?>'.encode() + text_xml("你好")
        query = wechat_query(str(int(time.time())), f"9{i}")
        _, response = await app.asgi_client.post(query, content=body)
        assert response.status == 400, (encoding, response.status)
    assert OPENID


# -- 10. non-UTF-8 Authorization header on the agent API ---------------------------------------


@pytest.mark.parametrize(
    "raw", [b"Bearer \xff\xfe\xfd", b"Bearer caf\xe9.t\xe9.x", b"Bearer \xe4\xbd\xa0\xff"]
)
async def test_agent_api_non_utf8_authorization_is_401(trained_bot: TrainedBot, raw: bytes) -> None:
    app, _agent, _service = service_app(trained_bot)
    for path in ("/agent/me", "/agent/queue", "/agent/conversations/x/context"):
        _, response = await app.asgi_client.get(path, headers={"Authorization": raw})
        assert response.status == 401, (path, response.status)


# -- 11. operator parse_data with wrong types --------------------------------------------------


@pytest.mark.parametrize(
    "parse_data",
    [
        {"intent": {"name": 5}},
        {"intent": {"name": ["greet"]}},
        {"intent": {"name": {"x": 1}}},
        {"intent": {"name": "greet", "confidence": "high"}},
        {"intent": {"name": "greet"}, "entities": [{"entity": 3}]},
        {"intent": {"name": "greet"}, "entities": [{"entity": "amount", "value": {"a": 1}}]},
        {"intent": {"name": "greet"}, "entities": [{"entity": "amount", "start": "x"}]},
        {"intent": {"name": "greet"}, "intent_ranking": "nope"},
        {"intent": {"name": "greet"}, "intent_ranking": [{"name": 1}]},
        {"intent": "greet"},
    ],
)
async def test_operator_parse_data_of_wrong_types_is_400(
    trained_bot: TrainedBot, parse_data: dict[str, Any]
) -> None:
    app = create_app(
        new_agent(trained_bot), ServerSettings(operator_token=OPERATOR_TOKEN), name=None
    )
    _, response = await app.asgi_client.post(
        "/conversations/o1/messages",
        headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"},
        json={"text": "你好", "sender": "user", "parse_data": parse_data},
    )
    assert response.status == 400, (parse_data, response.status, response.text)
    _, tracker = await app.asgi_client.get(
        "/conversations/o1/tracker", headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    )
    assert tracker.status == 200  # the conversation survives


# -- 12. NUL byte in a static path -------------------------------------------------------------


@pytest.mark.parametrize("path", ["/static/%00x", "/static/a%00.js", "/static/%00"])
async def test_a_nul_byte_in_a_static_path_is_4xx(trained_bot: TrainedBot, path: str) -> None:
    app = create_app(new_agent(trained_bot))
    _, response = await app.asgi_client.get(path)
    assert response.status in (400, 404), (path, response.status)


# -- 13. garbage on the socket against a real `bot run` ----------------------------------------


def read_until_closed(sock: socket.socket, limit: float) -> bytes:
    """What the server answers before it closes; the client gives up after ``limit`` s."""
    sock.settimeout(limit)
    chunks = []
    try:
        while chunk := sock.recv(4096):
            chunks.append(chunk)
    except TimeoutError:
        raise AssertionError(f"the server held the connection: {b''.join(chunks)!r}") from None
    return b"".join(chunks)


def test_bare_lf_and_garbage_are_answered_or_closed(
    trained_bot: TrainedBot, tmp_path: Path
) -> None:
    root = tmp_path / "bot"
    shutil.copytree(trained_bot.root, root)
    config = yaml.safe_load((root / "config.yml").read_text(encoding="utf-8"))
    config.setdefault("server", {}).update({"request_timeout": 2, "keep_alive_timeout": 2})
    (root / "config.yml").write_text(yaml.safe_dump(config, allow_unicode=True), "utf-8")
    port = free_port()
    env = {**os.environ, "BOT_DB_URL": f"sqlite:///{tmp_path}/t.db"}
    for name in ("BOT_REDIS_URL", "SANIC_REQUEST_TIMEOUT", "SANIC_KEEP_ALIVE_TIMEOUT"):
        env.pop(name, None)
    log = (tmp_path / "server.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "bot", "run", "--port", str(port), "--project", str(root)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=root,
        start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                assert httpx.get(f"{base}/health", timeout=5).status_code == 200
                break
            except httpx.HTTPError:
                assert server.poll() is None, (tmp_path / "server.log").read_text()
                assert time.monotonic() < deadline, "bot run did not start"
                time.sleep(0.3)
        for garbage in (
            b"GET / HTTP/1.1\nHost: x\n\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(64),
            b"hello there, this is not HTTP at all",
            b"",  # connect and say nothing
        ):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                if garbage:
                    sock.sendall(garbage)
                answer = read_until_closed(sock, 30)
            assert answer == b"" or answer.split(b" ")[1][:1] == b"4", (garbage, answer[:80])
        with httpx.Client(timeout=30) as client:  # and the server still serves
            reply = client.post(
                f"{base}/webhooks/rest/webhook", json={"sender": "g1", "message": "你好"}
            )
        assert reply.status_code == 200
    finally:
        server.terminate()
        server.wait(30)
        log.close()


# -- 14. every writer locks the conversation under the key the store keeps it by ---------------


async def test_operator_api_and_replay_lock_under_the_stored_key(
    trained_bot: TrainedBot, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from contextlib import AbstractAsyncContextManager

    from bot.core.tracker_store import SQLTrackerStore
    from bot.privacy import PrivacyPolicy
    from bot.server.metrics import BotMetrics
    from bot.server.turns import TurnRunner

    monkeypatch.delenv("BOT_DATA_KEY", raising=False)
    store = SQLTrackerStore(
        f"sqlite:///{tmp_path / 'bot.db'}",
        privacy=PrivacyPolicy.from_section({"stored_text": "mask"}, {}),
    )
    agent = new_agent(trained_bot, store)
    phone = "13812345678"
    key = store.privacy.sender_key(phone)
    assert key != phone  # a phone number as the sender id is stored under its pseudonym
    locked: list[str] = []
    lock = agent.processor.lock_store.lock

    def recording(name: str) -> AbstractAsyncContextManager[None]:
        locked.append(name)
        return lock(name)

    monkeypatch.setattr(agent.processor.lock_store, "lock", recording)
    app = create_app(agent, ServerSettings(operator_token=OPERATOR_TOKEN), name=None)
    operator = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    try:
        _, added = await app.asgi_client.post(
            f"/conversations/{phone}/messages",
            headers=operator,
            json={"text": "hello", "sender": "bot"},
        )
        assert added.status == 200, added.text
        bot_event = {"event": "bot", "text": "hi", "timestamp": time.time()}
        for method in (app.asgi_client.post, app.asgi_client.put):
            _, response = await method(
                f"/conversations/{phone}/tracker/events", headers=operator, json=[bot_event]
            )
            assert response.status == 200, response.text
        runner = TurnRunner(agent, ServerSettings(), BotMetrics(), redis_url="")
        assert await runner._replay(phone, "m1") is None
    finally:
        await store.close()
    assert len(locked) >= 4
    assert set(locked) == {key}, locked


# -- 15. behind the shipped nginx the throttle counts per client address ------------------------


def deploy_environment() -> list[dict[str, str]]:
    """The environment of each shipped bankbot: the compose services' and the systemd unit's."""
    deploy = Path(__file__).resolve().parents[1] / "deploy"
    compose = yaml.safe_load((deploy / "compose.yml").read_text(encoding="utf-8"))
    found = [
        {k: str(v) for k, v in compose["services"][name]["environment"].items()}
        for name in ("bankbot1", "bankbot2")
    ]
    unit = (deploy / "bankbot@.service").read_text(encoding="utf-8")
    lines = [
        line.partition("=")[2] for line in unit.splitlines() if line.startswith("Environment=")
    ]
    found.append(dict(line.split("=", 1) for line in lines))
    return found


async def test_behind_the_shipped_nginx_the_throttle_counts_per_client_address(
    trained_bot: TrainedBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    nginx = (Path(__file__).resolve().parents[1] / "deploy" / "nginx.conf").read_text("utf-8")
    assert "proxy_set_header X-Real-IP $remote_addr;" in nginx
    upstream = nginx[nginx.index("upstream bankbot {") :].split("}", 1)[0]
    [idle] = [line.split()[1] for line in upstream.splitlines() if "keepalive_timeout" in line]
    assert float(idle.rstrip("s;")) < 15  # below the instance's keep_alive_timeout (15 s)
    environments = deploy_environment()
    for env in environments:
        assert env.get("SANIC_PROXIES_COUNT") == "1", env
        assert env.get("SANIC_REAL_IP_HEADER") == "x-real-ip", env
    for name in ("SANIC_PROXIES_COUNT", "SANIC_REAL_IP_HEADER"):
        monkeypatch.setenv(name, environments[-1][name])  # Sanic reads SANIC_* for a new app
    app, _agent, _service = service_app(trained_bot)

    async def wrong_from(address: str, username: str) -> int:
        _, response = await app.asgi_client.post(
            "/agent/login",
            json={"username": username, "password": "guessed-wrong"},
            headers={"X-Real-IP": address, "X-Forwarded-For": address},
        )
        return int(response.status)

    statuses = [await wrong_from("203.0.113.1", f"nobody{i}") for i in range(25)]
    assert statuses[0] == 401 and statuses[-1] == 429, statuses  # that address is locked...
    assert await wrong_from("203.0.113.2", "someone") == 401  # ...not every agent behind nginx
