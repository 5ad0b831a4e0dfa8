"""The app channel: identity only from a verified JWT, one history per customer, and clear
401s for forged, expired and wrongly signed tokens."""

from __future__ import annotations

import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from test_server_project import TrainedBot, new_agent, trained_bot

from bot.channels.identity import issue_token
from bot.errors import BotError
from bot.server import ServerSettings, create_app
from bot.server.settings import DEV_JWT_SECRET, JwtSettings

__all__ = ["trained_bot"]
URL = "/webhooks/app/webhook"
SECRET = "test-secret-0123456789abcdef-0123456789abcdef"


def token(sub: str = "C1001", secret: str = SECRET, minutes: float = 10, **extra: object) -> str:
    claims = {"sub": sub, "exp": int(time.time() + minutes * 60), **extra}
    return jwt.encode(claims, secret, algorithm="HS256")


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


@pytest.fixture
def settings() -> ServerSettings:
    return ServerSettings(jwt=JwtSettings(secret=SECRET))


async def test_verified_customer_is_set_and_sender_ignored(
    trained_bot: TrainedBot, settings: ServerSettings
) -> None:
    agent = new_agent(trained_bot)
    app = create_app(agent, settings)
    _, response = await app.asgi_client.post(
        URL, json={"sender": "someone-else", "message": "你好"}, headers=bearer(token())
    )
    assert response.status == 200
    assert response.json[0]["recipient_id"] == "customer:C1001"
    tracker = await agent.processor.get_tracker("customer:C1001")
    assert tracker.slots["customer_id"] == "C1001"
    assert not await agent.processor.tracker_store.exists("someone-else")


async def test_without_token_the_conversation_is_anonymous(
    trained_bot: TrainedBot, settings: ServerSettings
) -> None:
    agent = new_agent(trained_bot)
    app = create_app(agent, settings)
    _, response = await app.asgi_client.post(URL, json={"sender": "anon1", "message": "你好"})
    assert response.status == 200
    assert (await agent.processor.get_tracker("anon1")).slots["customer_id"] is None
    _, response = await app.asgi_client.post(URL, json={"message": "你好"})
    assert response.status == 400 and "sender" in response.json["error"]


def _hs256_by_hand(claims: dict[str, object], key: bytes) -> str:
    import base64
    import hashlib
    import hmac
    import json

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    signing = b64(b'{"alg":"HS256","typ":"JWT"}') + "." + b64(json.dumps(claims).encode())
    return signing + "." + b64(hmac.new(key, signing.encode(), hashlib.sha256).digest())


def _rsa_pair() -> tuple[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (
            lambda: token(secret="another-secret-0123456789abcdef-0123456789"),
            "signature is invalid",
        ),
        (lambda: token()[:-4] + "AAAA", "signature is invalid"),
        (lambda: token(minutes=-10), "expired"),
        (lambda: jwt.encode({"sub": "C1001"}, SECRET, algorithm="HS256"), "no 'exp' claim"),
        (
            lambda: jwt.encode({"exp": int(time.time()) + 60}, SECRET, algorithm="HS256"),
            "no 'sub' claim",
        ),
        (lambda: token(sub=""), "customer id"),
        (
            lambda: jwt.encode(
                {"sub": "C1001", "exp": int(time.time()) + 60}, "", algorithm="none"
            ),
            "algorithm 'none' is not accepted",
        ),
        (
            lambda: jwt.encode(
                {"sub": "C1001", "exp": int(time.time()) + 60}, _rsa_pair()[0], algorithm="RS256"
            ),
            "algorithm 'RS256' is not accepted",
        ),
        (lambda: "not.a.token", "malformed token"),
        # an agent console token signed with the same secret (if someone set both alike)
        (
            lambda: jwt.encode(
                {"sub": "alice", "typ": "agent", "role": "agent", "exp": int(time.time()) + 60},
                SECRET,
                algorithm="HS256",
            ),
            "agent console token",
        ),
    ],
)
async def test_bad_tokens_are_401_with_a_clear_message(
    trained_bot: TrainedBot, settings: ServerSettings, make: object, problem: str
) -> None:
    agent = new_agent(trained_bot)
    app = create_app(agent, settings)
    value = make()  # type: ignore[operator]
    _, response = await app.asgi_client.post(
        URL, json={"sender": "x", "message": "你好"}, headers=bearer(value)
    )
    assert response.status == 401
    assert problem in response.json["error"]
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert await agent.processor.tracker_store.senders() == []


async def test_not_bearer_scheme_is_401(trained_bot: TrainedBot, settings: ServerSettings) -> None:
    app = create_app(new_agent(trained_bot), settings)
    _, response = await app.asgi_client.post(
        URL, json={"sender": "x", "message": "你好"}, headers={"Authorization": "Basic abc"}
    )
    assert response.status == 401 and "Bearer" in response.json["error"]


async def test_rs256_public_key(trained_bot: TrainedBot) -> None:
    private, public = _rsa_pair()
    app = create_app(new_agent(trained_bot), ServerSettings(jwt=JwtSettings(public_key=public)))
    good = jwt.encode({"sub": "C1002", "exp": int(time.time()) + 60}, private, algorithm="RS256")
    _, response = await app.asgi_client.post(URL, json={"message": "你好"}, headers=bearer(good))
    assert response.status == 200
    assert response.json[0]["recipient_id"] == "customer:C1002"
    # the classic confusion attack: HS256 signed with the public key as the secret
    forged = _hs256_by_hand({"sub": "C1002", "exp": 9999999999}, public.encode())
    _, response = await app.asgi_client.post(URL, json={"message": "你好"}, headers=bearer(forged))
    assert response.status == 401 and "HS256" in response.json["error"]


async def test_same_customer_continues_across_requests_and_channels(
    trained_bot: TrainedBot, settings: ServerSettings
) -> None:
    agent = new_agent(trained_bot)
    app = create_app(agent, settings)
    client = app.asgi_client
    await client.post(
        URL, json={"message": "查下尾号1234的余额"}, headers=bearer(token(sub="C1001"))
    )
    # a second request (another device, new token) continues the same conversation
    await client.post(
        URL,
        json={"sender": "phone-2", "message": "你好"},
        headers=bearer(token(sub="C1001", minutes=5)),
    )
    tracker = await agent.processor.get_tracker("customer:C1001")
    texts = [e["text"] for e in tracker.events if e["event"] == "user"]
    assert texts == ["查下尾号1234的余额", "你好"]
    assert tracker.slots["customer_id"] == "C1001"
    assert sum(e["event"] == "session_started" for e in tracker.events) == 1  # one session
    channels = {e["input_channel"] for e in tracker.events if e["event"] == "user"}
    assert channels == {"app"}


async def test_dev_token_is_accepted_without_configured_secret(trained_bot: TrainedBot) -> None:
    app = create_app(new_agent(trained_bot))
    value = issue_token("C1003", JwtSettings())
    _, response = await app.asgi_client.post(URL, json={"message": "你好"}, headers=bearer(value))
    assert response.status == 200 and response.json[0]["recipient_id"] == "customer:C1003"


def test_issue_token_refuses_dev_secret_in_production() -> None:
    with pytest.raises(BotError, match="production"):
        issue_token("C1001", JwtSettings(), production=True)
    with pytest.raises(BotError, match="production"):
        issue_token("C1001", JwtSettings(secret=DEV_JWT_SECRET), production=True)
    assert issue_token("C1001", JwtSettings(secret=SECRET), production=True)
    with pytest.raises(BotError, match="RS256"):
        issue_token("C1001", JwtSettings(public_key=_rsa_pair()[1]))


def test_token_command(
    trained_bot: TrainedBot, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import argparse

    from bot.cli import server_cmd

    parser = argparse.ArgumentParser()
    server_cmd.register(parser.add_subparsers())
    monkeypatch.delenv("BOT_JWT_SECRET", raising=False)
    monkeypatch.delenv("BOT_ENV", raising=False)
    args = parser.parse_args(
        ["token", "C1001", "--minutes", "5", "--project", str(trained_bot.root)]
    )
    assert args.handler(args) == 0
    claims = jwt.decode(capsys.readouterr().out.strip(), DEV_JWT_SECRET, algorithms=["HS256"])
    assert claims["sub"] == "C1001" and claims["exp"] - claims["iat"] == 300
    monkeypatch.setenv("BOT_ENV", "production")
    with pytest.raises(BotError, match="development secret"):
        args.handler(args)


@pytest.mark.parametrize(
    "raw", [b"Bearer \xff\xfe", b"Bearer \xe4\xb8\xad\xe6\x96\x87", b"Bearer eyJ\xff.eyJ.sig"]
)
def test_a_token_of_non_ascii_bytes_is_401_not_500(
    trained_bot: TrainedBot, settings: ServerSettings, raw: bytes
) -> None:
    """Header bytes that are not UTF-8 reach the handler as lone surrogates (real HTTP, not
    ASGI): still a 401 naming the problem."""
    app = create_app(new_agent(trained_bot), settings)
    _, response = app.test_client.post(
        URL, json={"sender": "x", "message": "你好"}, headers={"Authorization": raw}
    )
    assert response.status == 401, response.text
    assert "malformed token" in response.json["error"]
    _, response = app.test_client.post(URL, json={"message": "你好"}, headers=bearer(token()))
    assert response.status == 200
