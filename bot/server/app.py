"""The Sanic application: the service API, the customer channels, Rasa's HTTP API and the
operator API around one :class:`~bot.agent.Agent`.

``create_app(agent, settings)`` builds it (tests pass an agent with in-memory stores);
``app_for_project(path)`` loads the project's latest model with the stores of ``endpoints.yml``
and the channels of ``credentials.yml`` (what ``bot run`` serves, in every worker).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import sys
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

from sanic import Request, Sanic
from sanic.exceptions import RequestTimeout
from sanic.response import BaseHTTPResponse, HTTPResponse, json

from bot.agent import Agent
from bot.channels.app import app_blueprint
from bot.channels.rest import rest_blueprint
from bot.channels.socketio import SocketIOChannel, SocketIOSettings
from bot.channels.wechat.channel import WeChatSettings, wechat_blueprint
from bot.channels.wecom_kf.channel import wecom_kf_blueprint
from bot.errors import ConfigError
from bot.handoff.config import parse as default_handoff_config
from bot.handoff.factory import create_handoff_service
from bot.handoff.service import HandoffService
from bot.handoff.store import HandoffStore
from bot.privacy import install_masking
from bot.project import Project
from bot.server.agent_api import agent_blueprint
from bot.server.agent_api import openapi_paths as agent_openapi_paths
from bot.server.agent_workspace import openapi_paths as workspace_openapi_paths
from bot.server.agent_workspace import workspace_blueprint
from bot.server.api import api_blueprint
from bot.server.channels import (
    Credentials,
    anonymous_handler,
    load_custom_channel,
    read_credentials,
    refuse_session,
    turn_handler,
    wecom_kf_hooks,
)
from bot.server.customer_events import customer_blueprint
from bot.server.errors import install_error_handlers
from bot.server.metrics import BotMetrics
from bot.server.openapi import openapi_document
from bot.server.operator import operator_blueprint
from bot.server.project_settings import Settings
from bot.server.rasa_api import Pusher, rasa_api_blueprint
from bot.server.settings import ServerSettings
from bot.server.turns import TurnRunner
from bot.server.webchat import webchat_blueprint

logger = logging.getLogger(__name__)
_names = itertools.count()


QUEUE_TICK_SECONDS = 30.0  # waiting customers hear their place (and may leave a message)
# A request's head and body must arrive within this (Sanic's default is 60 s): a client that
# stalls or sends bytes that never end a request head (slowloris, garbage, bare LF) gets a
# 408 and the connection is closed instead of being held for a minute.


def create_app(
    agent: Agent,
    settings: ServerSettings | None = None,
    *,
    handoff: HandoffService | None = None,
    close_stores: bool = True,
    name: str | None = None,
    credentials: Credentials | None = None,
    wechat: WeChatSettings | None = None,
) -> Sanic[Any, Any]:
    """The app around ``agent``; with ``close_stores`` the agent's tracker and lock stores are
    closed when the server stops (pass False to keep using them, as tests do). Without
    ``handoff`` a default one (one group, the tracker store's database) is used.
    ``credentials`` (credentials.yml, :mod:`bot.server.channels`) chooses the Rasa-style
    channels; None keeps the default ones (REST, no socket.io). ``wechat``: the channel's
    settings (default read from the project of ``$BOT_PROJECT``)."""
    settings = settings or ServerSettings()
    settings.check()
    if handoff is None:
        tracker_store = agent.processor.tracker_store
        engine = getattr(tracker_store, "engine", None)
        privacy = tracker_store.privacy
        store = (
            HandoffStore(engine, privacy)
            if engine is not None
            else HandoffStore.from_url("sqlite://", privacy)
        )
        handoff = HandoffService(
            default_handoff_config({}), store, agent.processor, production=settings.production
        )
    stopping = asyncio.Event()
    app: Sanic[Any, Any] = Sanic(name or f"bankbot_{next(_names)}")
    app.config.REQUEST_MAX_SIZE = settings.max_body_bytes
    app.config.GRACEFUL_SHUTDOWN_TIMEOUT = settings.shutdown_timeout
    # a client that never completes a request head or body (garbage, a bare-LF request line,
    # slowloris) gets a 408 and is closed; an idle keep-alive connection is closed too
    app.config.REQUEST_TIMEOUT = settings.request_timeout
    app.config.KEEP_ALIVE_TIMEOUT = settings.keep_alive_timeout
    app.config.FALLBACK_ERROR_FORMAT = "json"
    app.config.ACCESS_LOG = False
    app.config.MOTD = False
    metrics = BotMetrics()
    runner = TurnRunner(agent, settings, metrics, handoff)
    handoff.on_queued = lambda queued: metrics.handoffs.labels(queued.reason).inc()
    app.ctx.agent = agent
    app.ctx.handoff = handoff
    app.ctx.settings = settings
    app.ctx.metrics = metrics
    app.ctx.runner = runner
    document = openapi_document(settings.max_message_chars)
    document["paths"].update(agent_openapi_paths())
    document["paths"].update(workspace_openapi_paths())
    document["components"]["securitySchemes"]["agentToken"] = {
        "type": "http",
        "scheme": "bearer",
        "description": "from POST /agent/login",
    }

    pushers: dict[str, Pusher] = {}  # channels the HTTP API can send through
    app.blueprint(api_blueprint(agent, metrics, settings))
    on_new_message = turn_handler(runner)
    if credentials is None or credentials.rest:
        app.blueprint(rest_blueprint(on_new_message))
    app.blueprint(app_blueprint(on_new_message, settings.jwt))
    wechat_bp = wechat_blueprint(
        on_new_message,
        wechat,
        tracker_store=agent.processor.tracker_store,
        domain=agent.processor.domain,
    )
    app.blueprint(wechat_bp)
    if wechat_bp.ctx.channel is not None and wechat_bp.ctx.channel.api is not None:
        push_text = wechat_bp.ctx.channel.push
        handoff.senders["wechat"] = push_text  # agents' replies to WeChat

        async def push_wechat(conversation: str, messages: list[dict[str, Any]]) -> None:
            for message in messages:
                if message.get("text"):
                    await push_text(conversation, str(message["text"]))

        pushers["wechat"] = push_wechat
    if credentials is not None and credentials.wecom_kf is not None:
        kf_bp = wecom_kf_blueprint(
            on_new_message,
            credentials.wecom_kf,
            tracker_store=agent.processor.tracker_store,
            domain=agent.processor.domain,
        )
        app.blueprint(kf_bp)
        wecom_kf_hooks(kf_bp.ctx.channel, handoff)
        pushers["wecom_kf"] = kf_bp.ctx.channel.push_messages
    app.ctx.socketio = None
    if credentials is not None:
        _mount_credential_channels(app, credentials, runner, settings, pushers)
    app.blueprint(rasa_api_blueprint(agent, settings, runner, pushers))
    app.blueprint(operator_blueprint(agent, settings))
    app.blueprint(webchat_blueprint(settings, document))
    app.blueprint(agent_blueprint(handoff, stopping))
    app.blueprint(workspace_blueprint(handoff))
    app.blueprint(customer_blueprint(handoff, settings.jwt, stopping))

    @app.get("/openapi.json")
    async def openapi(request: Request) -> HTTPResponse:
        return json(document)

    @app.signal("http.routing.after")
    async def read_body_in_time(request: Request, route: Any, kwargs: Any, handler: Any) -> None:
        """Sanic reads a body after the head, under the 60 s response timeout; a client that
        stalls half-way through its body gets the request timeout (408) instead."""
        stream = request.stream
        if stream is None or not getattr(stream, "request_body", False):
            return
        if route.extra.ignore_body or hasattr(handler, "is_stream"):
            return
        try:
            receiving: Awaitable[None] = request.receive_body()  # type: ignore[no-untyped-call]
            await asyncio.wait_for(receiving, settings.request_timeout)
        except TimeoutError:
            if hasattr(stream, "keep_alive"):
                stream.keep_alive = False  # the rest of the body is not waited for: closed
            raise RequestTimeout(
                f"the request body did not arrive within {settings.request_timeout:g} s"
            ) from None

    @app.before_server_start
    async def start_handoff(app: Sanic[Any, Any]) -> None:
        install_masking()  # in every worker: its log handlers mask personal numbers
        start = getattr(handoff.bus, "start", None)
        if start is not None:
            await start()

        async def tick() -> None:
            while not stopping.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), QUEUE_TICK_SECONDS)
                if stopping.is_set():
                    break
                try:
                    await handoff.expire_reservations()
                    await handoff.dispatch()
                    await handoff.notify_positions()
                except Exception:
                    logger.exception("queue update failed")

        # a plain task (Sanic's add_task needs the app's own runner; tests use create_server)
        app.ctx.handoff_tick = asyncio.get_running_loop().create_task(tick())

    @app.before_server_stop
    async def finish_turns(app: Sanic[Any, Any]) -> None:
        stopping.set()  # live event streams end
        if runner.in_flight:
            logger.info("stopping: waiting for %d turn(s) in flight", runner.in_flight)
        if not await runner.drain(settings.shutdown_timeout):
            logger.warning("stopping with %d turn(s) still in flight", runner.in_flight)
        tick_task = getattr(app.ctx, "handoff_tick", None)
        if tick_task is not None:
            tick_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await tick_task
        await handoff.drain()
        await handoff.bus.close()

    @app.after_server_stop
    async def close_runner(app: Sanic[Any, Any]) -> None:
        await runner.close()  # its Redis client, with BOT_REDIS_URL

    if close_stores:

        @app.after_server_stop
        async def close(app: Sanic[Any, Any]) -> None:
            await agent.processor.tracker_store.close()
            await agent.processor.lock_store.close()

    if settings.cors_origins:
        _install_cors(app, settings.cors_origins)
    install_error_handlers(app, metrics)
    return app


def _install_cors(app: Sanic[Any, Any], origins: tuple[str, ...]) -> None:
    """Rasa's ``--cors``: pages of ``origins`` ("*": any) may call the server from a
    browser; preflight ``OPTIONS`` requests are answered here."""

    def allowed(request: Request) -> str | None:
        origin = request.headers.get("origin")
        if not origin:
            return None
        return origin if "*" in origins or origin in origins else None

    def add_headers(response: BaseHTTPResponse, origin: str) -> None:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Credentials"] = "true"
        response.headers["Vary"] = "Origin"

    async def preflight(request: Request) -> HTTPResponse | None:
        origin = allowed(request)
        if (
            origin is None
            or request.method != "OPTIONS"
            or "access-control-request-method" not in request.headers
        ):
            return None
        response = HTTPResponse(status=204)
        add_headers(response, origin)
        response.headers["Access-Control-Allow-Methods"] = "GET, POST, PUT, DELETE, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = request.headers.get(
            "access-control-request-headers", "Content-Type, Authorization"
        )
        response.headers["Access-Control-Max-Age"] = "600"
        return response

    async def cors_headers(request: Request, response: BaseHTTPResponse) -> None:
        origin = allowed(request)
        if origin is not None and "Access-Control-Allow-Origin" not in response.headers:
            add_headers(response, origin)

    app.register_middleware(preflight, "request", priority=100)
    app.register_middleware(cors_headers, "response")


def _mount_credential_channels(
    app: Sanic[Any, Any],
    credentials: Credentials,
    runner: TurnRunner,
    settings: ServerSettings,
    pushers: dict[str, Pusher],
) -> None:
    """socket.io and custom channels of credentials.yml."""
    on_new_message = anonymous_handler(runner)
    if credentials.socketio is not None:
        try:
            sio_settings = SocketIOSettings.from_credentials(credentials.socketio)
        except ValueError as exc:
            raise ConfigError(f"{credentials.path}: {exc}") from exc
        channel = SocketIOChannel(
            sio_settings, on_new_message, refuse_session, max_payload_bytes=settings.max_body_bytes
        )
        channel.attach(app)
        pushers["socketio"] = channel.push
        app.ctx.socketio = channel

        @app.get("/webhooks/socketio/")
        async def socketio_health(request: Request) -> HTTPResponse:
            return json({"status": "ok"})

    for dotted, options in credentials.custom.items():
        instance = load_custom_channel(dotted, options)
        if instance is None:
            continue
        channel_name = str(instance.name())
        app.blueprint(instance.blueprint(on_new_message), url_prefix=f"/webhooks/{channel_name}")
        logger.info("custom channel %s mounted at /webhooks/%s/", dotted, channel_name)


def app_for_project(
    project_dir: str | Path | Project,
    model: str | Path | None = None,
    settings: Settings | None = None,
    name: str | None = None,
) -> Sanic[Any, Any]:
    """The app ``bot run`` serves. ``project_dir`` may be a :class:`Project` with overridden
    paths (``--credentials`` among them); ``settings`` default to
    :meth:`Settings.load` of it (each file read once, the parts passed down)."""
    project = project_dir if isinstance(project_dir, Project) else Project.find(project_dir)
    settings = settings or Settings.load(project)
    settings.server.check()  # before loading a model for nothing
    credentials = read_credentials(project.credentials_file)
    if credentials is not None and credentials.custom and str(project.root) not in sys.path:
        sys.path.insert(0, str(project.root))  # custom channels live in the project, as actions
    agent = Agent.load(project, Path(model) if model else None, endpoints=settings.endpoints)
    handoff = create_handoff_service(
        project.root,
        agent.processor,
        settings.handoff,
        endpoints=settings.endpoints,
        kb_settings=settings.knowledge_base,
        production=settings.production,
    )
    return create_app(
        agent,
        settings.server,
        handoff=handoff,
        name=name,
        credentials=credentials,
        wechat=settings.wechat,
    )
