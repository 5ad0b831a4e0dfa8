"""The REST channel: Rasa's wire shape, streaming, limits and bad input (always a 4xx JSON
error, and the conversation intact afterwards)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from test_server_project import FAQ, TrainedBot, new_agent, trained_bot

from bot.server import ServerSettings, create_app
from bot.server.settings import RateLimit

__all__ = ["trained_bot"]
URL = "/webhooks/rest/webhook"


async def test_rest_answers_a_list_of_bot_messages(trained_bot: TrainedBot) -> None:
    app = create_app(new_agent(trained_bot))
    _, response = await app.asgi_client.post(URL, json={"sender": "r1", "message": "你好"})
    assert response.status == 200
    messages = response.json
    assert isinstance(messages, list) and messages
    assert all(m["recipient_id"] == "r1" for m in messages)
    assert messages[0]["text"]
    assert {"title": "转人工", "payload": "/request_human"} in messages[0]["buttons"]


async def test_rest_intent_payload_and_metadata(trained_bot: TrainedBot) -> None:
    agent = new_agent(trained_bot)
    app = create_app(agent)
    body = {"sender": "r2", "message": "/greet", "metadata": {"device": "h5"}}
    _, response = await app.asgi_client.post(URL, json=body)
    assert response.status == 200 and response.json
    tracker = await agent.processor.get_tracker("r2")
    assert tracker.latest_message["intent"]["name"] == "greet"
    user = [e for e in tracker.events if e["event"] == "user"][-1]
    assert user["metadata"] == {"device": "h5"} and user["input_channel"] == "rest"


async def test_rest_is_anonymous_and_cannot_pose_as_a_customer(trained_bot: TrainedBot) -> None:
    agent = new_agent(trained_bot)
    app = create_app(agent)
    body = {"sender": "r3", "message": "你好", "metadata": {"customer_id": "C1001"}}
    await app.asgi_client.post(URL, json=body)
    assert (await agent.processor.get_tracker("r3")).slots.get("customer_id") is None
    _, response = await app.asgi_client.post(
        URL, json={"sender": "customer:C1001", "message": "你好"}
    )
    assert response.status == 400 and "reserved" in response.json["error"]
    # nor by looking like one to a person reading the agent console
    for sender in (
        " customer:C1001",
        "Customer:C1001",
        "\u200bcustomer:C1001",
        "ｃｕｓｔｏｍｅｒ：C1001",
        "WeChat:oUSER",
        "\u202ewechat:oUSER",
    ):
        _, response = await app.asgi_client.post(URL, json={"sender": sender, "message": "你好"})
        assert response.status == 400 and "reserved" in response.json["error"], sender
    _, response = await app.asgi_client.post(
        URL, json={"sender": "customers-club-7", "message": "你好"}
    )
    assert response.status == 200


async def test_stream_writes_one_json_message_per_line(trained_bot: TrainedBot) -> None:
    app = create_app(new_agent(trained_bot))
    _, response = await app.asgi_client.post(
        f"{URL}?stream=true", json={"sender": "s1", "message": FAQ}
    )
    assert response.status == 200
    assert response.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in response.text.splitlines() if line]
    assert lines and all(m["recipient_id"] == "s1" for m in lines)
    assert "身份证" in lines[0]["text"]


BAD: list[tuple[Any, str]] = [
    (b"", "request body is empty"),
    (b"{not json", "not valid JSON"),
    (b"\xff\xfe\xfa", "not valid"),
    (b"[1, 2]", "must be a JSON object"),
    (b'"text"', "must be a JSON object"),
    ({"message": "你好"}, "missing field 'sender'"),
    ({"sender": "b1"}, "missing field 'message'"),
    ({"sender": "b1", "message": ""}, "field 'message' is empty"),
    ({"sender": "b1", "message": " \n\t"}, "field 'message' is empty"),
    ({"sender": "b1", "message": 12}, "field 'message' must be a string, got a number"),
    ({"sender": 7, "message": "你好"}, "field 'sender' must be a string"),
    ({"sender": ["b1"], "message": "你好"}, "field 'sender' must be a string, got a list"),
    ({"sender": "b1", "message": {"text": "x"}}, "got an object"),
    ({"sender": "b1", "message": "你好", "metadata": "x"}, "field 'metadata' must be an object"),
    ({"sender": "x" * 256, "message": "你好"}, "longer than 255"),
    (b"[" * 100_000 + b"]" * 100_000, "request body is larger"),
    # not JSON (RFC 8259), though Python's parser takes them: stored events must stay JSON
    (b'{"sender": "b1", "message": "hi", "metadata": {"x": NaN}}', "NaN"),
    (b'{"sender": "b1", "message": "hi", "metadata": {"x": -Infinity}}', "-Infinity"),
    (b'{"sender": "b1", "message": "hi", "metadata": {"x": 1e999}}', "1e999"),
    (b'{"sender": "b1", "message": "hi", "metadata": {"x": 1' + b"0" * 5000 + b"}}", "digits"),
]


@pytest.mark.parametrize(("body", "problem"), BAD)
def test_bad_requests_get_a_4xx_naming_the_problem(
    trained_bot: TrainedBot, body: Any, problem: str
) -> None:
    agent = new_agent(trained_bot)
    app = create_app(agent)
    kwargs = {"data": body} if isinstance(body, bytes) else {"json": body}
    _, response = app.test_client.post(URL, **kwargs)
    assert 400 <= response.status < 500
    assert problem in response.json["error"]
    assert response.json["status"] == response.status
    # the conversation still works afterwards
    _, response = app.test_client.post(URL, json={"sender": "b1", "message": "你好"})
    assert response.status == 200 and response.json


def test_deeply_nested_metadata_is_a_400_not_a_500(trained_bot: TrainedBot) -> None:
    app = create_app(new_agent(trained_bot), ServerSettings(max_body_bytes=1024 * 1024))
    body = b'{"sender": "n", "message": "hi", "metadata": ' + b"[" * 200_000 + b"]" * 200_000
    _, response = app.test_client.post(URL, data=body + b"}")
    assert response.status == 400


@pytest.mark.parametrize(
    "text",
    [
        "😀👍🏽 余额多少？",
        "\u200b\u200d零宽字符",
        "ｆｕｌｌ－ｗｉｄｔｈ　查余额",
        "𠀀𪚥 罕见字",
        "\ud800 lone surrogate",
        "NUL\x00in text",
        "RTL \u202e gnp.exe",
        "مرحبا",
        "\U0010ffff",
    ],
)
async def test_odd_unicode_works(trained_bot: TrainedBot, text: str) -> None:
    agent = new_agent(trained_bot)
    app = create_app(agent)
    raw = json.dumps({"sender": "u-😀", "message": text})  # \ud800 stays an escape
    _, response = await app.asgi_client.post(URL, content=raw.encode())
    assert response.status == 200, response.text
    assert isinstance(response.json, list)
    tracker = await agent.processor.get_tracker("u-😀")
    assert [e for e in tracker.events if e["event"] == "user"]


async def test_too_long_message_is_answered_and_kept_truncated(trained_bot: TrainedBot) -> None:
    agent = new_agent(trained_bot)
    app = create_app(agent)
    text = "查余额" * 700  # 2,100 characters
    _, response = await app.asgi_client.post(URL, json={"sender": "L1", "message": text})
    assert response.status == 200
    assert "2100字" in response.json[0]["text"] and "2000字" in response.json[0]["text"]
    tracker = await agent.processor.get_tracker("L1")
    user = [e for e in tracker.events if e["event"] == "user"][-1]
    assert user["text"] == text[:2000]
    assert user["metadata"] == {"truncated": True, "original_length": 2100}
    _, response = await app.asgi_client.post(URL, json={"sender": "L1", "message": "你好"})
    assert response.status == 200 and response.json  # the conversation goes on


async def test_rate_limit_per_sender_is_429(trained_bot: TrainedBot) -> None:
    settings = ServerSettings(rate_limit=RateLimit(per_minute=1, burst=2))
    app = create_app(new_agent(trained_bot), settings)
    client = app.asgi_client
    for _ in range(2):
        _, response = await client.post(URL, json={"sender": "q1", "message": "你好"})
        assert response.status == 200
    _, response = await client.post(URL, json={"sender": "q1", "message": "你好"})
    assert response.status == 429
    assert "too many messages" in response.json["error"]
    assert int(response.headers["retry-after"]) >= 1
    _, response = await client.post(URL, json={"sender": "q2", "message": "你好"})
    assert response.status == 200  # other conversations are not affected


def test_rate_limiter_refills() -> None:
    from bot.server.ratelimit import RateLimiter

    now = [0.0]
    limiter = RateLimiter(RateLimit(per_minute=60, burst=1), clock=lambda: now[0])
    assert limiter.acquire("a") == 0.0
    assert limiter.acquire("a") == pytest.approx(1.0)
    now[0] = 1.0
    assert limiter.acquire("a") == 0.0


async def test_retry_after_is_never_shorter_than_the_wait(trained_bot: TrainedBot) -> None:
    """24 a minute: the second message waits 2.5 s; Retry-After must not say 2 (a client
    honouring it would be refused again)."""
    settings = ServerSettings(rate_limit=RateLimit(per_minute=24, burst=1))
    app = create_app(new_agent(trained_bot), settings)
    _, response = await app.asgi_client.post(URL, json={"sender": "q3", "message": "你好"})
    assert response.status == 200
    _, response = await app.asgi_client.post(URL, json={"sender": "q3", "message": "你好"})
    assert response.status == 429
    # 2.5 s less the time between the two requests (a loaded machine needs some of it)
    wait = float(response.json["error"].rsplit("wait ", 1)[1].removesuffix(" s"))
    assert 2.0 < wait <= 2.5
    assert int(response.headers["retry-after"]) == 3
