"""The agent workspace's extra routes beside the agent API (``/agent/...``, the same agent
token): what the console shows in Chinese, suggestions from the conversation's topic, and
presence by heartbeat.

- ``GET /agent/labels``: ``{"intents", "slots", "reasons"}`` (code → label), from the domain's
  ``intent_labels`` and ``slot_labels`` (trainers edit them) and the handoff's reason labels;
- ``GET /agent/conversations/<id>/topic-suggestions``: knowledge entries for the topic of the
  conversation (its latest customer messages with one, not button payloads), scores below
  :data:`bot.handoff.packet.MIN_SUGGESTION` hidden;
- ``POST /agent/heartbeat``: the open console says it is there every
  :data:`HEARTBEAT_SECONDS`; an agent whose console stopped (closed tab, crashed browser, lost
  network) for :data:`AWAY_AFTER_SECONDS` while 在线 is set away by :class:`Presence` (swept
  every :data:`SWEEP_SECONDS`, so within 30 s), which releases their reservations to the
  queue. Agents that never sent a heartbeat (API clients) are left alone. Beats are kept in
  Redis with ``$BOT_REDIS_URL`` (any worker may receive them), else in the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from sanic import Blueprint, Request
from sanic.response import HTTPResponse
from sanic.response import json as json_response

from bot.handoff.packet import labels, topic_suggestions
from bot.handoff.service import HandoffService
from bot.redis import REDIS_PREFIX, RedisOutage, is_outage, redis_url, shared_client
from bot.server.agent_api import _op, _token, cid, mapped

logger = logging.getLogger(__name__)
HEARTBEAT_SECONDS = 10  # the console's beat
AWAY_AFTER_SECONDS = 25  # no beat for this long: away (with the sweep: within 30 s)
SWEEP_SECONDS = 5


class Presence:
    """Which consoles still beat: ``beat(username)``; ``sweep()`` sets away the available
    agents whose beats stopped."""

    def __init__(
        self,
        service: HandoffService,
        url: str | None = None,
        clock: Callable[[], float] = time.time,
        away_after: float = AWAY_AFTER_SECONDS,
    ) -> None:
        self.service, self.url, self.clock, self.away_after = service, url, clock, away_after
        self._beats: dict[str, float] = {}
        self._members = f"{REDIS_PREFIX}agent-beats"
        # Redis down: beats are kept in this process (one log line per outage, no tracebacks)
        self.outage = RedisOutage("agent presence is per process", log=logger)

    async def beat(self, username: str) -> None:
        if self.url and self.outage.usable:
            client = shared_client(self.url)
            ttl = max(1, int(self.away_after))
            try:
                await client.set(f"{self._members}:{username}", "1", ex=ttl)
                await client.sadd(self._members, username)
            except Exception as exc:
                if not is_outage(exc):
                    raise
                self.outage.failed(exc)
            else:
                self.outage.answered()
                self._beats.pop(username, None)  # a beat kept here during an outage is stale now
                return
        self._beats[username] = self.clock()

    async def stopped(self) -> list[str]:
        """Agents whose console stopped beating (each reported once)."""
        gone: list[str] = []
        if self.url and self.outage.usable:
            client = shared_client(self.url)
            try:
                members: set[Any] = await client.smembers(self._members)
                for raw in sorted(members):
                    name = raw.decode() if isinstance(raw, bytes) else str(raw)
                    if not await client.exists(f"{self._members}:{name}"):
                        await client.srem(self._members, name)
                        gone.append(name)
            except Exception as exc:
                if not is_outage(exc):
                    raise
                self.outage.failed(exc)
            else:
                self.outage.answered()
        cutoff = self.clock() - self.away_after
        local = sorted(n for n, at in self._beats.items() if at < cutoff)
        for name in local:
            del self._beats[name]
        return [*gone, *(n for n in local if n not in gone)]

    async def sweep(self) -> list[str]:
        """Set away every available agent whose console stopped; their names."""
        away = []
        for name in await self.stopped():
            account = await self.service.ctx.run(self.service.store.agents.get, name)
            if account is not None and account.status == "available":
                await self.service.set_status(account, "away")
                logger.info("agent %s set away: the console stopped its heartbeat", name)
                away.append(name)
        return away


def workspace_blueprint(service: HandoffService, presence: Presence | None = None) -> Blueprint:
    bp = Blueprint("agent_workspace", url_prefix="/agent")
    beats = presence if presence is not None else Presence(service, redis_url())

    @bp.post("/heartbeat")
    async def heartbeat(request: Request) -> HTTPResponse:
        account = await agent(request)
        await beats.beat(account.username)
        return json_response(
            {"status": account.status, "every": HEARTBEAT_SECONDS, "away_after": AWAY_AFTER_SECONDS}
        )

    @bp.before_server_start
    async def start_sweeping(app: Any) -> None:
        async def sweep() -> None:
            while True:
                await asyncio.sleep(SWEEP_SECONDS)
                try:
                    await beats.sweep()
                except Exception:
                    logger.exception("presence sweep failed")

        app.ctx.presence_sweep = asyncio.get_running_loop().create_task(sweep())

    @bp.before_server_stop
    async def stop_sweeping(app: Any) -> None:
        task = getattr(app.ctx, "presence_sweep", None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def agent(request: Request) -> Any:
        return await mapped(service.verify(_token(request)))

    @bp.get("/labels")
    async def labels_route(request: Request) -> HTTPResponse:
        await agent(request)
        domain = service.ctx.domain
        return json_response(labels(domain.raw if domain else {}), ensure_ascii=False)

    @bp.get("/conversations/<conversation:str>/topic-suggestions")
    async def topic(request: Request, conversation: str) -> HTTPResponse:
        account = await agent(request)
        messages = await mapped(service.messages(account, cid(conversation)))  # visibility
        found = topic_suggestions(messages, service.ctx.search)
        return json_response({"suggestions": found}, ensure_ascii=False)

    return bp


def openapi_paths() -> dict[str, Any]:
    """This module's routes and the customer's ticketed event stream, for /openapi.json."""
    conv = "/agent/conversations/{conversation_id}"
    return {
        "/agent/labels": {"get": _op("Chinese labels of intents, slots and reasons")},
        "/agent/heartbeat": {"post": _op("the open console is there (every 10 s)")},
        f"{conv}/topic-suggestions": {
            "get": _op("knowledge suggestions for the conversation's topic", path=True)
        },
        "/webhooks/app/preferences": {
            "get": _op("what the page offers the customer (large text)", secured=False)
        },
        "/webhooks/app/welcome": {
            "get": _op("the page's welcome with 猜你想问 (most asked topics)", secured=False)
        },
        "/webhooks/app/events/ticket": {
            "post": _op(
                "a one-time ticket (30 s) for the customer's event stream; customer JWT in "
                "Authorization",
                secured=False,
            )
        },
        "/webhooks/app/events": {
            "get": _op(
                "the customer's live events (server-sent events); ?token= is refused",
                secured=False,
                query=["ticket", "sender"],
                content="text/event-stream",
            )
        },
    }
