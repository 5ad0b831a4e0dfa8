"""Operator endpoints (bearer operator token) and a restart on the same SQLite file."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

import pytest
from test_server_project import TrainedBot, new_agent, trained_bot

from bot.core.tracker_store import SQLTrackerStore
from bot.server import ServerSettings, create_app

__all__ = ["trained_bot"]
TOKEN = "operator-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def settings() -> ServerSettings:
    return ServerSettings(operator_token=TOKEN)


async def test_tracker_needs_the_operator_token(
    trained_bot: TrainedBot, settings: ServerSettings
) -> None:
    app = create_app(new_agent(trained_bot), settings)
    client = app.asgi_client
    await client.post("/webhooks/rest/webhook", json={"sender": "o1", "message": "你好"})
    _, response = await client.get("/conversations/o1/tracker")
    assert response.status == 401 and "Bearer" in response.json["error"]
    _, response = await client.get(
        "/conversations/o1/tracker", headers={"Authorization": "Bearer wrong"}
    )
    assert response.status == 401 and "wrong operator token" in response.json["error"]
    _, response = await client.get("/conversations/o1/tracker", headers=AUTH)
    assert response.status == 200
    body = response.json
    assert body["sender_id"] == "o1"
    assert body["latest_message"]["intent"]["name"] == "greet"
    assert any(e["event"] == "bot" for e in body["events"])


async def test_operator_api_is_disabled_without_a_token(trained_bot: TrainedBot) -> None:
    app = create_app(new_agent(trained_bot))
    _, response = await app.asgi_client.get("/conversations/o1/tracker", headers=AUTH)
    assert response.status == 401 and "BOT_OPERATOR_TOKEN" in response.json["error"]


async def test_operator_adds_messages(trained_bot: TrainedBot, settings: ServerSettings) -> None:
    agent = new_agent(trained_bot)
    app = create_app(agent, settings)
    client = app.asgi_client
    url = "/conversations/o2/messages"
    _, response = await client.post(url, json={"text": "查下尾号1234的余额"}, headers=AUTH)
    assert response.status == 200
    assert response.json["latest_message"]["intent"]["name"] == "query_balance"
    _, response = await client.post(
        url, json={"text": "您好，我是人工客服小王", "sender": "bot"}, headers=AUTH
    )
    assert response.status == 200
    assert response.json["events"][-1]["metadata"] == {"operator": True}
    for body, problem in [
        ({"text": "x", "sender": "agent"}, "must be one of"),
        ({"sender": "bot"}, "missing field 'text'"),
        ({"text": "x", "parse_data": {"intent": "greet"}}, "parse_data.intent"),
        ({"text": "x", "parse_data": []}, "must be an object"),
    ]:
        _, response = await client.post(url, json=body, headers=AUTH)
        assert response.status == 400 and problem in response.json["error"]
    # the bot carries on in that conversation
    _, response = await client.post(
        "/webhooks/rest/webhook", json={"sender": "o2", "message": "你好"}
    )
    assert response.status == 200 and response.json
    _, response = await client.post(url, json={"text": "x"})
    assert response.status == 401


async def test_restart_on_the_same_sqlite_file_keeps_the_conversation(
    trained_bot: TrainedBot, settings: ServerSettings, tmp_path: Path
) -> None:
    db = f"sqlite:///{tmp_path / 'bot.db'}"
    first = new_agent(trained_bot, SQLTrackerStore(db))
    app = create_app(first, settings, close_stores=False)
    await app.asgi_client.post(
        "/webhooks/rest/webhook", json={"sender": "p1", "message": "查下尾号1234的余额"}
    )
    await first.processor.tracker_store.close()

    second = new_agent(trained_bot, SQLTrackerStore(db))
    app = create_app(second, settings, close_stores=False)
    await app.asgi_client.post("/webhooks/rest/webhook", json={"sender": "p1", "message": "你好"})
    _, response = await app.asgi_client.get("/conversations/p1/tracker", headers=AUTH)
    texts = [e["text"] for e in response.json["events"] if e["event"] == "user"]
    assert texts == ["查下尾号1234的余额", "你好"]
    assert sum(e["event"] == "session_started" for e in response.json["events"]) == 1
    await second.processor.tracker_store.close()


async def test_percent_encoded_conversation_ids_reach_the_conversation(
    trained_bot: TrainedBot, settings: ServerSettings
) -> None:
    """Clients percent-encode the id in the path (encodeURIComponent turns ':' into %3A, and
    non-ASCII must be encoded): the operator still reads and writes that conversation."""
    app = create_app(new_agent(trained_bot), settings)
    client = app.asgi_client
    for sender in ("wx:user 1", "访客-😀"):
        await client.post("/webhooks/rest/webhook", json={"sender": sender, "message": "你好"})
        encoded = quote(sender, safe="")
        _, response = await client.get(f"/conversations/{encoded}/tracker", headers=AUTH)
        assert response.status == 200
        assert response.json["sender_id"] == sender
        assert any(e["event"] == "user" for e in response.json["events"])
        _, response = await client.post(
            f"/conversations/{encoded}/messages",
            headers=AUTH,
            json={"text": "人工客服已接入", "sender": "bot"},
        )
        assert response.status == 200 and response.json["sender_id"] == sender


def test_an_operator_token_of_non_utf8_bytes_is_401_not_500(
    trained_bot: TrainedBot, settings: ServerSettings
) -> None:
    app = create_app(new_agent(trained_bot), settings)
    _, response = app.test_client.get(
        "/conversations/o1/tracker", headers={"Authorization": b"Bearer \xff"}
    )
    assert response.status == 401 and "wrong operator token" in response.json["error"]
    _, response = app.test_client.get("/conversations/o1/tracker", headers=AUTH)
    assert response.status == 200
