"""The server's service endpoints (health, metrics, parse, OpenAPI) on the shipped project
trained in a temporary folder. The other server and channel test modules import
``trained_bot`` and ``new_agent`` from here, so the project is trained once per session."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.agent import Agent, create_executor
from bot.core.lock_store import InMemoryLockStore
from bot.core.processor import MessageProcessor
from bot.core.tracker_store import InMemoryTrackerStore, TrackerStore
from bot.endpoints import read_endpoints
from bot.model import LoadedModel, load_model
from bot.project import Project
from bot.server import ServerSettings, create_app
from bot.train import train

REPO = Path(__file__).resolve().parents[1]
FAQ = "开户要带什么材料"


@dataclass(frozen=True)
class TrainedBot:
    root: Path
    model: LoadedModel
    executor: Any


_trained: dict[str, TrainedBot] = {}


@pytest.fixture(scope="session")
def trained_bot(tmp_path_factory: pytest.TempPathFactory) -> TrainedBot:
    if "bot" not in _trained:
        root = tmp_path_factory.mktemp("server") / "bot"
        root.mkdir()
        for name in ("config.yml", "domain.yml"):
            shutil.copy(REPO / name, root / name)
        for folder in ("nlu_data", "sentiment", "stories", "actions", "kb_index/sources"):
            shutil.copytree(REPO / folder, root / folder)
        result = train(Project(root))
        model = load_model(result.archive)
        assert model.domain is not None
        executor = create_executor(
            Project(root), read_endpoints(Project(root)), set(model.domain.actions)
        )
        _trained["bot"] = TrainedBot(root, model, executor)
    return _trained["bot"]


def new_agent(bot: TrainedBot, tracker_store: TrackerStore | None = None) -> Agent:
    """A fresh assistant (its own stores) around the trained model."""
    assert bot.model.core is not None and bot.model.domain is not None
    processor = MessageProcessor(
        bot.model.domain,
        bot.model.core,
        bot.model.nlu,
        tracker_store or InMemoryTrackerStore(),
        InMemoryLockStore(),
        bot.executor,
        seed=1,
    )
    return Agent(bot.model, processor)


def test_health_names_the_model(trained_bot: TrainedBot) -> None:
    app = create_app(new_agent(trained_bot))
    _, response = app.test_client.get("/health")
    assert response.status == 200
    assert response.json == {
        "status": "ok",
        "model": trained_bot.model.path.name.removesuffix(".tar.gz"),
    }


async def test_parse_has_rasa_shape(trained_bot: TrainedBot) -> None:
    app = create_app(new_agent(trained_bot))
    _, response = await app.asgi_client.post("/model/parse", json={"text": "查下尾号1234的余额"})
    assert response.status == 200
    body = response.json
    assert body["text"] == "查下尾号1234的余额"
    assert body["intent"]["name"] == "query_balance"
    assert body["intent_ranking"][0]["name"] == "query_balance"
    entity = body["entities"][0]
    assert entity["entity"] == "card_last4" and entity["value"] == "1234"
    assert body["text"][entity["start"] : entity["end"]] == "1234"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({}, "missing field 'text'"),
        ({"text": 5}, "field 'text' must be a string"),
        ({"text": "   "}, "field 'text' is empty"),
    ],
)
async def test_parse_bad_input_is_400(
    trained_bot: TrainedBot, body: dict[str, Any], problem: str
) -> None:
    app = create_app(new_agent(trained_bot))
    _, response = await app.asgi_client.post("/model/parse", json=body)
    assert response.status == 400
    assert problem in response.json["error"]


async def test_parse_too_long_is_413(trained_bot: TrainedBot) -> None:
    app = create_app(new_agent(trained_bot))
    _, response = await app.asgi_client.post("/model/parse", json={"text": "余" * 2001})
    assert response.status == 413
    assert "2,001 characters" in response.json["error"]


async def test_metrics_count_turns_intents_fallbacks_handoffs(trained_bot: TrainedBot) -> None:
    app = create_app(new_agent(trained_bot))
    client = app.asgi_client
    for text in (FAQ, "你好", "转人工"):
        _, response = await client.post(
            "/webhooks/rest/webhook", json={"sender": "m1", "message": text}
        )
        assert response.status == 200
    await client.post("/webhooks/rest/webhook", json={"sender": "m2"})  # a 400
    _, response = await client.get("/metrics")
    assert response.status == 200
    text = response.text
    assert 'bot_turns_total{channel="rest"} 3.0' in text
    assert 'bot_turn_latency_seconds_count{channel="rest"} 3.0' in text
    assert 'bot_intents_total{intent="faq"} 1.0' in text
    assert 'bot_intents_total{intent="greet"} 1.0' in text
    assert 'bot_handoffs_total{reason="customer_request"} 1.0' in text
    assert "bot_fallbacks_total" in text
    assert 'bot_errors_total{kind="bad_request"} 1.0' in text


async def test_metrics_are_per_app(trained_bot: TrainedBot) -> None:
    first = create_app(new_agent(trained_bot))
    await first.asgi_client.post("/webhooks/rest/webhook", json={"sender": "x", "message": "你好"})
    second = create_app(new_agent(trained_bot))
    _, response = await second.asgi_client.get("/metrics")
    assert "bot_turns_total" not in response.text.replace("# HELP bot_turns_total", "").replace(
        "# TYPE bot_turns_total", ""
    )


async def test_openapi_lists_every_endpoint(trained_bot: TrainedBot) -> None:
    app = create_app(new_agent(trained_bot))
    _, response = await app.asgi_client.get("/openapi.json")
    assert response.status == 200
    doc = response.json
    assert doc["openapi"].startswith("3.")
    routes = {
        (
            f"/{route.path}".replace("<conversation:str>", "{conversation_id}")
            .replace("<__file_uri__:path>", "{path}")
            .rstrip("/")
            or "/"
        )
        for route in app.router.routes
        if route.path not in ("webhooks/rest",)
    }
    assert routes <= set(doc["paths"]), routes - set(doc["paths"])
    assert set(doc["paths"]["/webhooks/app/webhook"]["post"]["responses"]) >= {"200", "401"}


def test_unknown_route_and_method_are_json(trained_bot: TrainedBot) -> None:
    app = create_app(new_agent(trained_bot))
    _, response = app.test_client.get("/nope")
    assert response.status == 404 and "no such endpoint" in response.json["error"]
    _, response = app.test_client.get("/model/parse")
    assert response.status == 405 and response.json["status"] == 405


def test_production_refuses_the_development_secret(trained_bot: TrainedBot) -> None:
    from bot.errors import ConfigError

    with pytest.raises(ConfigError, match="development JWT secret"):
        create_app(new_agent(trained_bot), ServerSettings(production=True))
