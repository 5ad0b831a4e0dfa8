"""Public service endpoints: ``GET /health``, ``GET /metrics``, ``POST /model/parse``."""

from __future__ import annotations

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json, raw

from bot.agent import Agent
from bot.channels.inputs import json_object, string_field
from bot.server.errors import ApiError
from bot.server.metrics import CONTENT_TYPE, BotMetrics
from bot.server.settings import ServerSettings


def model_id(agent: Agent) -> str:
    name = agent.model.path.name
    return name.removesuffix(".tar.gz")


def api_blueprint(agent: Agent, metrics: BotMetrics, settings: ServerSettings) -> Blueprint:
    bp = Blueprint("api")

    @bp.get("/health")
    async def health(request: Request) -> HTTPResponse:
        return json({"status": "ok", "model": model_id(agent)})

    @bp.get("/metrics")
    async def metrics_text(request: Request) -> HTTPResponse:
        return raw(metrics.render(), content_type=CONTENT_TYPE)

    @bp.post("/model/parse")
    async def parse(request: Request) -> HTTPResponse:
        text = string_field(json_object(request), "text")
        assert text is not None
        limit = settings.max_message_chars
        if len(text) > limit:
            raise ApiError(413, f"field 'text' has {len(text):,} characters; at most {limit:,}")
        result = agent.processor.parse(text)
        return json(
            {"text": text, **{k: v for k, v in result.items() if k != "text"}}, ensure_ascii=False
        )

    return bp
