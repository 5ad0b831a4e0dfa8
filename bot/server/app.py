"""The Sanic application: the service API, the customer channels and the operator API around
one :class:`~bot.core.agent.Agent`.

``create_app(agent, settings)`` builds it (tests pass an agent with in-memory stores);
``app_for_project(path)`` loads the project's latest model with the stores of ``endpoints.yml``
(what ``bot run`` serves, in every worker).
"""

from __future__ import annotations

import itertools
import logging
from pathlib import Path
from typing import Any

from sanic import Request, Sanic
from sanic.response import HTTPResponse, json

from bot.channels.app import app_blueprint
from bot.channels.rest import rest_blueprint
from bot.channels.wechat import wechat_blueprint
from bot.core.agent import Agent
from bot.project import Project
from bot.server.api import api_blueprint
from bot.server.errors import install_error_handlers
from bot.server.metrics import BotMetrics
from bot.server.openapi import openapi_document
from bot.server.operator import operator_blueprint
from bot.server.settings import ServerSettings, load_settings
from bot.server.turns import TurnRunner
from bot.server.webchat import webchat_blueprint

logger = logging.getLogger(__name__)
_names = itertools.count()


def create_app(agent: Agent, settings: ServerSettings | None = None, *,
               close_stores: bool = True) -> Sanic[Any, Any]:
    """The app around ``agent``; with ``close_stores`` the agent's tracker and lock stores are
    closed when the server stops (pass False to keep using them, as tests do)."""
    settings = settings or ServerSettings()
    settings.check()
    app: Sanic[Any, Any] = Sanic(f"bankbot_{next(_names)}")
    app.config.REQUEST_MAX_SIZE = settings.max_body_bytes
    app.config.GRACEFUL_SHUTDOWN_TIMEOUT = settings.shutdown_timeout
    app.config.FALLBACK_ERROR_FORMAT = "json"
    app.config.ACCESS_LOG = False
    app.config.MOTD = False
    metrics = BotMetrics()
    runner = TurnRunner(agent, settings, metrics)
    app.ctx.agent = agent
    app.ctx.settings = settings
    app.ctx.metrics = metrics
    app.ctx.runner = runner
    document = openapi_document(settings.max_message_chars)

    app.blueprint(api_blueprint(agent, metrics, settings))
    app.blueprint(rest_blueprint(runner))
    app.blueprint(app_blueprint(runner, settings.jwt))
    app.blueprint(wechat_blueprint(runner))
    app.blueprint(operator_blueprint(agent, settings))
    app.blueprint(webchat_blueprint(settings, document))

    @app.get("/openapi.json")
    async def openapi(request: Request) -> HTTPResponse:
        return json(document)

    @app.before_server_stop
    async def finish_turns(app: Sanic[Any, Any]) -> None:
        if runner.in_flight:
            logger.info("stopping: waiting for %d turn(s) in flight", runner.in_flight)
        if not await runner.drain(settings.shutdown_timeout):
            logger.warning("stopping with %d turn(s) still in flight", runner.in_flight)

    if close_stores:
        @app.after_server_stop
        async def close(app: Sanic[Any, Any]) -> None:
            await agent.processor.tracker_store.close()
            await agent.processor.lock_store.close()

    install_error_handlers(app, metrics)
    return app


def app_for_project(project_dir: str | Path, model: str | Path | None = None,
                    settings: ServerSettings | None = None) -> Sanic[Any, Any]:
    project = Project.find(project_dir)
    settings = settings or load_settings(project)
    settings.check()  # before loading a model for nothing
    agent = Agent.load(project, Path(model) if model else None)
    return create_app(agent, settings)
