"""Rasa's HTTP API through HTTP: every route, the auth token, JWTs of admins and users, and bad
input (always a 4xx JSON error, the conversation intact afterwards)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jwt
import pytest
import yaml

from bot.agent import Agent
from bot.core.processor import MessageProcessor
from bot.model.archive import LoadedModel, ModelMeta
from bot.server import ServerSettings, create_app
from bot.server.settings import ApiJwtSettings, settings_from_mapping, with_overrides

TOKEN = "rasa-auth-token-0123456789"
OPERATOR = "operator-token-0123456789"
SECRET = "api-jwt-secret-for-tests-0123456789abcdef"
DOMAIN = """
version: "3.1"
intents: [greet, query_balance, inform, chitchat]
entities: [card_last4, customer_id]
slots:
  customer_id:
    type: any
    influence_conversation: false
    mappings: [{type: custom}]
  card_last4:
    type: text
    mappings: [{type: from_entity, entity: card_last4}]
responses:
  utter_greet:
    - text: 您好，请问有什么可以帮您？
      buttons: [{title: 查余额, payload: /query_balance}]
  utter_balance: [{text: "尾号{card_last4}的卡余额请在App查看。"}]
  utter_bye: [{text: 再见}]
  utter_chitchat/whoyouare: [{text: 我是智能客服。}]
actions: [utter_chitchat]
"""
RULES = """
rules:
- rule: greet
  steps:
  - intent: greet
  - action: utter_greet
- rule: balance
  steps:
  - intent: query_balance
  - action: utter_balance
- rule: chitchat
  steps:
  - intent: chitchat
  - action: utter_chitchat
"""


def model(path: Path) -> LoadedModel:
    meta = ModelMeta("20261203-fp", "fp0123", "2026-12-03T00:00:00", "0.1.0", {}, {})
    return LoadedModel(meta=meta, nlu=None, path=path / "20261203-fp.tar.gz")  # type: ignore[arg-type]


@pytest.fixture
def agent(dialogue, tmp_path: Path) -> Agent:  # type: ignore[no-untyped-def]
    processor = MessageProcessor(*dialogue(DOMAIN, RULES, [("RulePolicy", {})]), seed=1)
    return Agent(model(tmp_path), processor)


def settings(**kwargs: Any) -> ServerSettings:
    return ServerSettings(
        auth_token=TOKEN, operator_token=OPERATOR, api_jwt=ApiJwtSettings(SECRET), **kwargs
    )


def signed(
    user: dict[str, Any] | None,
    *,
    key: str = SECRET,
    alg: str = "HS256",
    minutes: float = 5,
    **claims: Any,
) -> dict[str, str]:
    body: dict[str, Any] = {"exp": int(time.time() + minutes * 60), **claims}
    if user is not None:
        body["user"] = user
    return {"Authorization": f"Bearer {jwt.encode(body, key, algorithm=alg)}"}


ADMIN = {"username": "ops", "role": "admin"}
Q = f"?token={TOKEN}"


async def say(client: Any, sender: str, text: str) -> list[dict[str, Any]]:
    _, response = await client.post(
        "/webhooks/rest/webhook", json={"sender": sender, "message": text}
    )
    assert response.status == 200, response.json
    result: list[dict[str, Any]] = response.json
    return result


async def test_version_is_public_and_status_needs_auth(agent: Agent) -> None:
    client = create_app(agent, settings()).asgi_client
    _, response = await client.get("/version")
    assert response.status == 200
    assert set(response.json) == {"version", "minimum_compatible_version"}
    _, response = await client.get("/status")
    assert response.status == 401 and "token" in response.json["error"]
    _, response = await client.get("/status" + Q)
    assert response.status == 200
    assert response.json == {
        "model_file": "20261203-fp.tar.gz",
        "model_id": "20261203-fp",
        "fingerprint": "fp0123",
        "num_active_training_jobs": 0,
    }
    _, response = await client.get("/status", headers=signed({"username": "u1", "role": "user"}))
    assert response.status == 403 and "admin" in response.json["error"]
    _, response = await client.get("/status", headers=signed(ADMIN))
    assert response.status == 200
    _, response = await client.get("/status", headers={"Authorization": f"Bearer {OPERATOR}"})
    assert response.status == 200


async def test_nothing_configured_means_closed(agent: Agent) -> None:
    client = create_app(agent, ServerSettings()).asgi_client
    for method, url in [
        ("get", "/status"),
        ("get", "/domain"),
        ("get", "/conversations/a/tracker"),
        ("post", "/conversations/a/tracker/events"),
        ("post", "/conversations/a/trigger_intent"),
        ("post", "/conversations/a/execute"),
        ("post", "/conversations/a/predict"),
    ]:
        kwargs = {"json": {"name": "greet"}} if method == "post" else {}
        _, response = await getattr(client, method)(url, **kwargs)
        assert response.status == 401, url
        assert "BOT_AUTH_TOKEN" in response.json["error"]
    _, response = await client.get("/conversations/a/tracker?token=guess")
    assert response.status == 401 and "no auth token is configured" in response.json["error"]


async def test_wrong_credentials(agent: Agent) -> None:
    client = create_app(agent, settings()).asgi_client
    for headers, url, problem in [
        ({}, "/status?token=wrong", "wrong auth token"),
        ({"Authorization": "Bearer wrong"}, "/status", "wrong operator token, and not a JWT"),
        ({"Authorization": "Basic abc"}, "/status", "Authorization: Bearer"),
        (
            signed(ADMIN, key="another-secret-0123456789abcdef0123"),
            "/status",
            "signature is invalid",
        ),
        (signed(ADMIN, minutes=-5), "/status", "expired"),
        (signed(ADMIN, alg="HS512"), "/status", "HS512"),
        ({"Authorization": "Bearer a.b.c"}, "/status", "malformed"),
    ]:
        _, response = await client.get(url, headers=headers)
        assert response.status == 401, (url, headers)
        assert problem in response.json["error"], response.json
    # a customer token of the app channel carries no API user
    _, response = await client.get("/status", headers=signed(None, sub="C1001"))
    assert response.status == 403 and "'user' claim" in response.json["error"]


async def test_exp_is_checked_when_present_and_required_on_request(agent: Agent) -> None:
    """Like Rasa's sanic-jwt, a token without ``exp`` is accepted (an expired one is not);
    ``server.jwt_require_exp: true`` refuses it."""
    no_exp = {"Authorization": "Bearer " + jwt.encode({"user": ADMIN}, SECRET)}
    _, response = await create_app(agent, settings()).asgi_client.get("/status", headers=no_exp)
    assert response.status == 200, response.json
    strict = ServerSettings(api_jwt=ApiJwtSettings(SECRET, require_exp=True))
    _, response = await create_app(agent, strict).asgi_client.get("/status", headers=no_exp)
    assert response.status == 401 and "'exp'" in response.json["error"]
    parsed = settings_from_mapping(
        {"server": {"jwt_secret": SECRET, "jwt_require_exp": True}}, Path("."), env={}
    )
    assert parsed.api_jwt.require_exp


async def test_jwt_users_reach_only_their_own_conversation(agent: Agent) -> None:
    client = create_app(agent, settings()).asgi_client
    await say(client, "alice", "/greet")
    await say(client, "bob", "/greet")
    alice = signed({"username": "alice", "role": "user"})
    _, response = await client.get("/conversations/alice/tracker", headers=alice)
    assert response.status == 200 and response.json["sender_id"] == "alice"
    _, response = await client.get("/conversations/bob/tracker", headers=alice)
    assert response.status == 403 and "'bob'" in response.json["error"]
    _, response = await client.post(
        "/conversations/bob/trigger_intent", headers=alice, json={"name": "greet"}
    )
    assert response.status == 403
    _, response = await client.get("/conversations/bob/tracker", headers=signed(ADMIN))
    assert response.status == 200
    # no role: like Rasa, only the own conversation
    _, response = await client.get(
        "/conversations/alice/tracker", headers=signed({"username": "alice"})
    )
    assert response.status == 200


async def test_tracker_include_events_and_until(agent: Agent) -> None:
    client = create_app(agent, settings()).asgi_client
    await say(client, "t1", "/greet")
    middle = time.time()
    await say(client, "t1", '/query_balance{"card_last4": "1234"}')
    _, full = await client.get("/conversations/t1/tracker" + Q + "&include_events=ALL")
    assert full.status == 200
    kinds = [e["event"] for e in full.json["events"]]
    assert kinds.count("user") == 2 and "bot" in kinds
    assert full.json["slots"]["card_last4"] == "1234"
    _, none = await client.get("/conversations/t1/tracker" + Q + "&include_events=none")
    assert none.json["events"] is None and none.json["slots"]["card_last4"] == "1234"
    _, applied = await client.get("/conversations/t1/tracker" + Q + "&include_events=APPLIED")
    assert applied.json["events"][0]["event"] == "session_started"
    _, early = await client.get(f"/conversations/t1/tracker{Q}&until={middle}")
    assert early.json["slots"]["card_last4"] is None
    assert [e["event"] for e in early.json["events"]].count("user") == 1
    for query, problem in [
        ("&include_events=SOME", "include_events"),
        ("&until=yesterday", "until"),
        ("&until=nan", "finite"),
    ]:
        _, response = await client.get("/conversations/t1/tracker" + Q + query)
        assert response.status == 400 and problem in response.json["error"]
    # percent-encoded ids
    _, response = await client.get("/conversations/customer%3AC9/tracker" + Q)
    assert response.status == 200 and response.json["sender_id"] == "customer:C9"


async def test_append_events(agent: Agent) -> None:
    client = create_app(agent, settings()).asgi_client
    url = "/conversations/e1/tracker/events" + Q
    _, response = await client.post(
        url, json={"event": "slot", "name": "card_last4", "value": "9876"}
    )
    assert response.status == 200
    body = response.json
    assert body["slots"]["card_last4"] == "9876"
    # a new conversation gets its session start first, as in Rasa
    assert [e["event"] for e in body["events"]][:3] == ["action", "session_started", "action"]
    _, response = await client.post(
        url,
        json=[
            {
                "event": "user",
                "text": "你好",
                "parse_data": {"intent": {"name": "greet"}, "entities": []},
            },
            {"event": "bot", "text": "您好", "timestamp": 1700000000.5},
        ],
    )
    assert response.status == 200
    events = response.json["events"]
    assert events[-1]["event"] == "bot" and events[-1]["timestamp"] == 1700000000.5
    assert response.json["latest_message"]["intent"]["name"] == "greet"
    # the bot carries on from there
    assert await say(client, "e1", "/query_balance") == [
        {"recipient_id": "e1", "text": "尾号9876的卡余额请在App查看。"}
    ]


async def test_bad_events_are_400_and_change_nothing(agent: Agent) -> None:
    client = create_app(agent, settings()).asgi_client
    await say(client, "e2", "/greet")
    _, before = await client.get("/conversations/e2/tracker" + Q + "&include_events=ALL")
    url = "/conversations/e2/tracker/events" + Q
    for body, problem in [
        ([], "no events"),
        ({"event": "teleport"}, "unknown or unsupported event type 'teleport'"),
        ([{"event": "slot", "name": "card_last4", "value": "1"}, 5], "event 1"),
        ({"event": "slot"}, "needs 'name'"),
        ({"event": "action", "name": 7}, "wrong type"),
        ({"event": "user", "text": "x", "parse_data": {"intent": "greet"}}, "parse_data.intent"),
        ({"event": "bot", "text": "x", "timestamp": "now"}, "timestamp"),
        ({"event": "bot", "text": "x", "metadata": []}, "metadata"),
        ({"event": "slot", "name": "customer_id", "value": "C1001"}, "verified customer"),
        ({"event": "reminder", "intent": "greet"}, "unsupported"),
        ("just text", "must be an object"),
    ]:
        _, response = await client.post(url, json=body)
        assert response.status == 400, body
        assert problem in response.json["error"], (body, response.json)
    for raw in (b"", b"{", b'{"event": "bot", "text": NaN}', b"\xff\xfe"):
        _, response = await client.post(url, content=raw)
        assert response.status == 400, raw
    _, after = await client.get("/conversations/e2/tracker" + Q + "&include_events=ALL")
    assert after.json["events"] == before.json["events"]
    assert await say(client, "e2", "/greet")


async def test_replace_events(agent: Agent) -> None:
    client = create_app(agent, settings()).asgi_client
    await say(client, "r1", '/query_balance{"card_last4": "1111"}')
    replacement = [
        {"event": "action", "name": "action_session_start"},
        {"event": "session_started"},
        {"event": "action", "name": "action_listen"},
        {"event": "slot", "name": "card_last4", "value": "2222"},
    ]
    _, response = await client.put("/conversations/r1/tracker/events" + Q, json=replacement)
    assert response.status == 200
    assert [e["event"] for e in response.json["events"]] == [
        "action",
        "session_started",
        "action",
        "slot",
    ]
    assert response.json["slots"]["card_last4"] == "2222"
    assert response.json["latest_message"]["text"] is None
    # the store keeps what was replaced (an audit trail), behind a restart marker
    _, full = await client.get("/conversations/r1/tracker" + Q + "&include_events=ALL")
    marker = [e for e in full.json["events"] if e["event"] == "restart"]
    assert marker and marker[0]["metadata"] == {"replaced_by_api": True}
    assert await say(client, "r1", "/query_balance") == [
        {"recipient_id": "r1", "text": "尾号2222的卡余额请在App查看。"}
    ]
    _, response = await client.put("/conversations/r1/tracker/events" + Q, json=[{"event": "nope"}])
    assert response.status == 400


async def test_trigger_intent_runs_the_actions(agent: Agent) -> None:
    client = create_app(agent, settings()).asgi_client
    url = "/conversations/g1/trigger_intent" + Q
    _, response = await client.post(
        url, json={"name": "query_balance", "entities": {"card_last4": "4321"}}
    )
    assert response.status == 200, response.json
    assert response.json["messages"] == [
        {"recipient_id": "g1", "text": "尾号4321的卡余额请在App查看。"}
    ]
    tracker = response.json["tracker"]
    assert tracker["latest_message"]["intent"] == {"name": "query_balance", "confidence": 1.0}
    assert tracker["latest_message"]["text"] == "EXTERNAL: query_balance"
    assert tracker["slots"]["card_last4"] == "4321"
    _, response = await client.post(
        url,
        json={
            "name": "greet",
            "entities": [
                {"entity": "card_last4", "value": "5555"},
                {"entity": "customer_id", "value": "C1"},
            ],
        },
    )
    assert response.status == 200
    assert response.json["messages"][0]["buttons"] == [
        {"title": "查余额", "payload": "/query_balance"}
    ]
    assert response.json["tracker"]["slots"]["customer_id"] is None  # never from a payload
    for body, status, problem in [
        ({}, 400, "'name'"),
        ({"name": 3}, 400, "'name'"),
        ({"name": "fly"}, 404, "does not exist"),
        ({"name": "greet", "entities": "x"}, 400, "entities"),
        ({"name": "greet", "entities": [{"value": 1}]}, 400, "entities"),
    ]:
        _, response = await client.post(url, json=body)
        assert response.status == status and problem in response.json["error"], body


async def test_trigger_intent_keeps_the_verified_customer(agent: Agent) -> None:
    app = create_app(agent, settings())
    await agent.processor.handle_message(
        __import__("bot.core.processor", fromlist=["UserMessage"]).UserMessage(
            "/greet", "customer:C1001", "app", customer_id="C1001"
        )
    )
    _, response = await app.asgi_client.post(
        "/conversations/customer%3AC1001/trigger_intent" + Q, json={"name": "greet"}
    )
    assert response.status == 200
    assert response.json["tracker"]["slots"]["customer_id"] == "C1001"


async def test_predict_scores_the_actions(agent: Agent) -> None:
    client = create_app(agent, settings()).asgi_client
    _, response = await client.post("/conversations/p1/predict" + Q)
    assert response.status == 404 and "not found" in response.json["error"]
    await say(client, "p1", "/greet")
    # after the bot answered and listened, the rules say: listen
    _, response = await client.post(
        "/conversations/p1/tracker/events" + Q,
        json={
            "event": "user",
            "text": "查余额",
            "parse_data": {"intent": {"name": "query_balance", "confidence": 1.0}, "entities": []},
        },
    )
    _, response = await client.post("/conversations/p1/predict" + Q)
    assert response.status == 200
    body = response.json
    assert body["scores"][0] == {"action": "utter_balance", "score": 1.0}
    assert body["policy"] == "RulePolicy" and body["confidence"] == 1.0
    assert {s["action"] for s in body["scores"]} >= {"action_listen", "utter_greet"}
    assert body["tracker"]["sender_id"] == "p1"


async def test_execute_runs_one_action(agent: Agent) -> None:
    client = create_app(agent, settings()).asgi_client
    url = "/conversations/x1/execute" + Q
    _, response = await client.post(url, json={"name": "utter_bye"})
    assert response.status == 404 and "not found" in response.json["error"]
    await say(client, "x1", "/greet")
    _, response = await client.post(
        url, json={"name": "utter_bye", "policy": "manual", "confidence": 0.5}
    )
    assert response.status == 200
    assert response.json["messages"] == [{"recipient_id": "x1", "text": "再见"}]
    last = [e for e in response.json["tracker"]["events"] if e["event"] == "action"][-1]
    assert (last["name"], last["policy"], last["confidence"]) == ("utter_bye", "manual", 0.5)
    for body, status, problem in [
        ({"name": "utter_nothing"}, 404, "unknown action"),
        ({}, 400, "'name'"),
        ({"name": "utter_bye", "confidence": "high"}, 400, "confidence"),
        ({"name": "utter_bye", "policy": 1}, 400, "policy"),
    ]:
        _, response = await client.post(url, json=body)
        assert response.status == status and problem in response.json["error"], body
    assert await say(client, "x1", "/greet")


async def test_domain_as_json_or_yaml(agent: Agent) -> None:
    client = create_app(agent, settings()).asgi_client
    _, response = await client.get("/domain" + Q)
    assert response.status == 200 and "utter_greet" in response.json["responses"]
    _, response = await client.get("/domain" + Q, headers={"Accept": "application/x-yaml"})
    assert response.status == 200
    assert response.headers["content-type"].startswith("application/x-yaml")
    assert "utter_chitchat/whoyouare" in yaml.safe_load(response.text)["responses"]
    _, response = await client.get("/domain" + Q, headers={"Accept": "text/html"})
    assert response.status == 406
    _, response = await client.get("/domain")
    assert response.status == 401


async def test_everything_is_in_the_openapi_document(agent: Agent) -> None:
    client = create_app(agent, settings()).asgi_client
    _, response = await client.get("/openapi.json")
    paths = response.json["paths"]
    for path, methods in {
        "/version": {"get"},
        "/status": {"get"},
        "/domain": {"get"},
        "/conversations/{conversation_id}/tracker": {"get"},
        "/conversations/{conversation_id}/tracker/events": {"post", "put"},
        "/conversations/{conversation_id}/trigger_intent": {"post"},
        "/conversations/{conversation_id}/predict": {"post"},
        "/conversations/{conversation_id}/execute": {"post"},
    }.items():
        assert methods <= set(paths[path]), path
    schemes = response.json["components"]["securitySchemes"]
    assert {"authToken", "apiJwt", "operatorToken"} <= set(schemes)


def test_settings_from_config_env_and_the_command_line(tmp_path: Path) -> None:
    raw = {"server": {"auth_token": "from-config", "jwt_secret": "s" * 32}}
    s = settings_from_mapping(raw, tmp_path, env={})
    assert s.auth_token == "from-config" and s.api_jwt.secret == "s" * 32
    assert s.api_jwt.method == "HS256"
    env = {"BOT_AUTH_TOKEN": "from-env", "BOT_API_JWT_SECRET": "e" * 32}
    s = settings_from_mapping(raw, tmp_path, env=env)
    assert (s.auth_token, s.api_jwt.secret) == ("from-env", "e" * 32)
    # the app channel's customer secret is another one
    assert (
        settings_from_mapping({}, tmp_path, env={"BOT_JWT_SECRET": "x" * 32}).api_jwt.enabled
        is False
    )
    s = with_overrides(s, auth_token="cli", jwt_secret="c" * 32, jwt_method="hs512")
    assert (s.auth_token, s.api_jwt.secret, s.api_jwt.method) == ("cli", "c" * 32, "HS512")
    with pytest.raises(Exception, match="not supported"):
        ServerSettings(api_jwt=ApiJwtSettings("k", "none")).check()
    with pytest.raises(Exception, match="public key"):
        ServerSettings(api_jwt=ApiJwtSettings("k", "RS256")).check()
    with pytest.raises(Exception, match="at least 16"):
        ServerSettings(
            auth_token="short",
            production=True,
            jwt=settings_from_mapping({}, tmp_path, env={"BOT_JWT_SECRET": "y" * 32}).jwt,
        ).check()


async def test_rs256_jwts(agent: Agent, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    (tmp_path / "api.pub").write_text(public, encoding="utf-8")
    conf = settings_from_mapping(
        {"server": {"jwt_secret": "api.pub", "jwt_method": "RS256"}}, tmp_path, env={}
    )
    client = create_app(agent, conf).asgi_client
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    _, response = await client.get("/status", headers=signed(ADMIN, key=pem, alg="RS256"))
    assert response.status == 200
    _, response = await client.get("/status", headers=signed(ADMIN))  # HS256: refused
    assert response.status == 401 and "RS256" in response.json["error"]


async def test_messages_route_accepts_the_api_credentials(agent: Agent) -> None:
    client = create_app(agent, settings()).asgi_client
    url = "/conversations/m1/messages"
    _, response = await client.post(url + Q, json={"text": "/greet"})
    assert response.status == 200
    assert response.json["latest_message"]["intent"]["name"] == "greet"
    # as Rasa, a logged user message fills slots by their mappings (never customer_id)
    _, response = await client.post(
        url + Q,
        json={
            "text": "尾号",
            "parse_data": {
                "intent": {"name": "inform"},
                "entities": [
                    {"entity": "card_last4", "value": "6789"},
                    {"entity": "customer_id", "value": "C1002"},
                ],
            },
        },
    )
    assert response.status == 200 and response.json["slots"]["card_last4"] == "6789"
    assert response.json["slots"]["customer_id"] is None
    assert [e["entity"] for e in response.json["latest_message"]["entities"]] == ["card_last4"]
    user = signed({"username": "m1", "role": "user"})
    _, response = await client.post(url, json={"text": "/greet"}, headers=user)
    assert response.status == 200
    _, response = await client.post(
        url, json={"text": "我是人工客服", "sender": "bot"}, headers=user
    )
    assert response.status == 403 and "operators" in response.json["error"]
    _, response = await client.post(
        url, json={"text": "我是人工客服", "sender": "bot"}, headers=signed(ADMIN)
    )
    assert response.status == 200


async def test_parse_passes_the_response_selector_through(dialogue, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    selected = {
        "all_retrieval_intents": ["chitchat"],
        "chitchat": {
            "response": {
                "responses": [],
                "confidence": 0.93,
                "intent_response_key": "chitchat/whoyouare",
                "utter_action": "utter_chitchat/whoyouare",
            },
            "ranking": [],
        },
    }

    class NLU:
        def parse(self, text: str) -> dict[str, Any]:
            return {
                "text": text,
                "intent": {"name": "chitchat", "confidence": 0.9},
                "intent_ranking": [],
                "entities": [],
                "response_selector": selected,
            }

    domain, policies = dialogue(DOMAIN, RULES, [("RulePolicy", {})])
    agent = Agent(model(tmp_path), MessageProcessor(domain, policies, nlu=NLU()))  # type: ignore[arg-type]
    client = create_app(agent, settings()).asgi_client
    _, response = await client.post("/model/parse", json={"text": "你是谁"})
    assert response.status == 200 and response.json["response_selector"] == selected
    assert await say(client, "rs", "你是谁") == [{"recipient_id": "rs", "text": "我是智能客服。"}]


async def test_cors_origins_preflight_and_headers(agent: Agent) -> None:
    """Rasa's ``--cors``: allowed origins get the CORS headers and their preflight; others and
    a server without ``--cors`` get none."""
    client = create_app(agent, settings(cors_origins=("https://shop.example",))).asgi_client
    preflight = {
        "Origin": "https://shop.example",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type",
    }
    _, response = await client.options("/model/parse", headers=preflight)
    assert response.status == 204
    assert response.headers["access-control-allow-origin"] == "https://shop.example"
    assert "POST" in response.headers["access-control-allow-methods"]
    _, response = await client.get("/version", headers={"Origin": "https://shop.example"})
    assert response.headers["access-control-allow-origin"] == "https://shop.example"
    _, response = await client.get("/version", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in response.headers
    plain = create_app(agent, settings()).asgi_client
    _, response = await plain.get("/version", headers={"Origin": "https://shop.example"})
    assert "access-control-allow-origin" not in response.headers
