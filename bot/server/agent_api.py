"""The agent API (``/agent/...``, JSON) and the console page (``GET /agent``): the transport
of :class:`~bot.handoff.service.HandoffService`. Handlers only read requests, check the agent's
token and map :class:`~bot.handoff.errors.HandoffError` to HTTP codes. Contract:
docs/handoff.md."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, file
from sanic.response import json as json_response

from bot.channels.inputs import clean, json_object, string_field
from bot.handoff.errors import HandoffError
from bot.handoff.records import AgentAccount
from bot.handoff.service import HandoffService
from bot.redis import redis_url
from bot.server.errors import ApiError
from bot.server.login_throttle import LoginThrottle
from bot.server.operator import conversation_id
from bot.server.webchat import STATIC

if TYPE_CHECKING:
    from bot.server.customer_events import Tickets

KEEPALIVE_SECONDS = 15.0
MAX_TEXT = 2000
T = Any


def _json(data: Any, status: int = 200) -> HTTPResponse:
    return json_response(data, status=status, ensure_ascii=False)


async def mapped(call: Awaitable[T]) -> T:
    try:
        return await call
    except HandoffError as exc:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        raise ApiError(exc.status, str(exc), headers) from None


TOKEN_IN_URL = (
    "the agent token is not accepted in the URL: get a one-time ticket from "
    "POST /agent/events/ticket (with 'Authorization: Bearer <token>') and open "
    "/agent/events?ticket=…"
)


def _token(request: Request) -> str:
    header = request.headers.get("authorization") or ""
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return _ascii_token(token.strip())
    raise ApiError(
        401,
        "agent endpoints need 'Authorization: Bearer <token>' from POST /agent/login",
        {"WWW-Authenticate": "Bearer"},
    )


def _ascii_token(token: str) -> str:
    """A JWT is base64url text: header bytes that are not UTF-8 (lone surrogates here) or
    Latin-1 letters cannot be one."""
    if not token.isascii() or not token.isprintable():
        raise ApiError(
            401,
            "agent token is malformed (not base64url text); log in again",
            {"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    return token


def _address(request: Request) -> str:
    """The client's address: the proxy's forwarded one when Sanic is configured to trust it
    (``PROXIES_COUNT``, ``REAL_IP_HEADER``, ``FORWARDED_SECRET``), else the peer's."""
    return str(request.remote_addr or request.ip or "?")


async def sse(
    request: Request,
    topics: list[str],
    stopping: asyncio.Event,
    first: Callable[[], Awaitable[list[tuple[str, dict[str, Any]]]]] | None,
    service: HandoffService,
) -> None:
    """Server-sent events of ``topics`` until the client leaves or the server stops."""
    response = await request.respond(
        content_type="text/event-stream; charset=utf-8",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
    async with service.bus.subscribe(topics) as queue:
        await response.send(": connected\n\n")
        for kind, data in await first() if first else []:
            await response.send(_event(kind, data))
        while not stopping.is_set():
            try:
                kind, data = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
            except TimeoutError:
                await response.send(": keep-alive\n\n")
                continue
            await response.send(_event(kind, data))
    await response.eof()


def _event(kind: str, data: dict[str, Any]) -> str:
    return f"event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def _op(
    summary: str,
    body: dict[str, Any] | None = None,
    *,
    secured: bool = True,
    query: Sequence[str] = (),
    path: bool = False,
    content: str = "application/json",
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "responses": {
            "200": {
                "description": "see docs/handoff.md",
                "content": {
                    content: {
                        "schema": {"type": "object"}
                        if content == "application/json"
                        else {"type": "string"}
                    }
                },
            },
            **{
                str(code): {
                    "description": text,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                    },
                }
                for code, text in (
                    (400, "bad request"),
                    (401, "no valid agent token"),
                    (403, "not your conversation or group"),
                    (404, "no such conversation"),
                    (409, "someone else changed it first"),
                    (429, "too many failed logins (Retry-After)"),
                    (503, "BOT_ENV=production without BOT_AGENT_SECRET"),
                )
            },
        },
    }
    if secured:
        op["security"] = [{"agentToken": []}]
    params = [
        {"name": q, "in": "query", "required": False, "schema": {"type": "string"}} for q in query
    ]
    if path:
        params.append(
            {
                "name": "conversation_id",
                "in": "path",
                "required": True,
                "schema": {"type": "string", "maxLength": 255},
            }
        )
    if params:
        op["parameters"] = params
    if body is not None:
        op["requestBody"] = {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"type": "object", "properties": body, "required": list(body)}
                }
            },
        }
    return op


def openapi_paths() -> dict[str, Any]:
    """The agent API's entries in the server's OpenAPI document."""
    s = {"type": "string"}
    conv = "/agent/conversations/{conversation_id}"
    return {
        "/agent": {
            "get": {
                "summary": "the agent console (HTML)",
                "responses": {
                    "200": {"description": "the page", "content": {"text/html": {"schema": s}}}
                },
            }
        },
        "/agent/login": {
            "post": _op(
                "log in: a bearer token for the other endpoints",
                {"username": s, "password": s},
                secured=False,
            )
        },
        "/agent/me": {"get": _op("the agent's account, load and status")},
        "/agent/status": {"post": _op("available or away", {"status": s})},
        "/agent/config": {"get": _op("groups, resolution codes, canned replies")},
        "/agent/queue": {"get": _op("waiting conversations of the agent's groups, and theirs")},
        "/agent/supervisor": {"get": _op("supervisors: every queue and agent")},
        "/agent/events/ticket": {
            "post": _op("a one-time ticket (30 s) that opens the event stream")
        },
        "/agent/events": {
            "get": _op(
                "live updates (server-sent events)", query=["ticket"], content="text/event-stream"
            )
        },
        f"{conv}/accept": {"post": _op("take the conversation", path=True)},
        f"{conv}/context": {"get": _op("the context packet", path=True)},
        f"{conv}/messages": {
            "get": _op("the transcript (masked)", path=True, query=["after"]),
            "post": _op("reply to the customer", {"text": s}, path=True),
        },
        f"{conv}/notes": {"post": _op("a private note", {"text": s}, path=True)},
        f"{conv}/suggestions": {"get": _op("knowledge suggestions", path=True, query=["q"])},
        f"{conv}/transfer": {
            "post": _op("back to the queue of another group", {"group": s}, path=True)
        },
        f"{conv}/close": {
            "post": _op("close with a resolution code", {"resolution": s}, path=True)
        },
        "/webhooks/app/events": {
            "get": _op(
                "the customer's live events (server-sent events)",
                secured=False,
                query=["token", "sender"],
                content="text/event-stream",
            )
        },
        "/webhooks/app/history": {
            "get": _op("the customer's conversation so far", secured=False, query=["sender"])
        },
    }


def cid(raw: str) -> str:
    """The conversation id of a path segment (``customer%3AC1001`` → ``customer:C1001``),
    percent-decoded exactly once (by :func:`~bot.server.operator.conversation_id`): a second
    decoding would turn ``customer%253AC1003`` into another customer's id."""
    return conversation_id(raw)


def agent_blueprint(
    service: HandoffService,
    stopping: asyncio.Event,
    throttle: LoginThrottle | None = None,
    tickets: Tickets | None = None,
) -> Blueprint:
    """The agent API; ``throttle``: failed logins per account and address (default
    :meth:`LoginThrottle.from_env`, in Redis with ``$BOT_REDIS_URL``); ``tickets``: the
    event stream's one-time tickets (default in Redis with ``$BOT_REDIS_URL``)."""
    from bot.server.customer_events import Tickets, redact_access_log

    bp = Blueprint("agent_api", url_prefix="/agent")
    limiter = throttle or LoginThrottle.from_env()
    store = tickets if tickets is not None else Tickets(redis_url(), kind="agent-sse")
    redact_access_log()

    async def agent(request: Request) -> AgentAccount:
        if "token" in request.args:  # URLs land in access logs: never a token in one
            raise ApiError(401, TOKEN_IN_URL, {"WWW-Authenticate": "Bearer"})
        account: AgentAccount = await mapped(service.verify(_token(request)))
        return account

    def text_field(request: Request, name: str = "text") -> str:
        value = string_field(json_object(request), name, max_chars=MAX_TEXT)
        assert value is not None
        return value

    @bp.get("")
    async def console(request: Request) -> HTTPResponse:
        return await file(STATIC / "agent.html", headers={"Cache-Control": "no-cache"})

    @bp.post("/login")
    async def login(request: Request) -> HTTPResponse:
        data = json_object(request)
        username = string_field(data, "username", max_chars=64)
        password = string_field(data, "password", max_chars=256)
        assert username is not None and password is not None
        address = _address(request)
        wait = await limiter.retry_after(username, address)
        if wait > 0:
            seconds = max(1, int(wait + 0.999))
            raise ApiError(
                429,
                f"too many failed logins for this account or address; try again in "
                f"{seconds} s (or ask a supervisor to reset the password)",
                {"Retry-After": str(seconds)},
            )
        try:
            token, account = await mapped(service.login(username, password))
        except ApiError as exc:
            if exc.status == 401:  # a wrong password, not a server refusing (503)
                await limiter.failed(username, address)
            raise
        await limiter.succeeded(username)
        return _json(
            {
                "token": token,
                "username": account.username,
                "role": account.role,
                "groups": account.groups,
                "expires_in": service.config.token_minutes * 60,
            }
        )

    @bp.get("/me")
    async def me(request: Request) -> HTTPResponse:
        return _json(await service.me(await agent(request)))

    @bp.post("/status")
    async def status(request: Request) -> HTTPResponse:
        account = await agent(request)
        value = string_field(json_object(request), "status", max_chars=16)
        assert value is not None
        return _json(await service.me(await mapped(service.set_status(account, value))))

    @bp.get("/config")
    async def config(request: Request) -> HTTPResponse:
        await agent(request)
        return _json(service.public_config())

    @bp.get("/queue")
    async def queue(request: Request) -> HTTPResponse:
        return _json(await service.queue(await agent(request)))

    @bp.get("/supervisor")
    async def supervisor(request: Request) -> HTTPResponse:
        return _json(await mapped(service.supervisor(await agent(request))))

    @bp.post("/conversations/<conversation:str>/accept")
    async def accept(request: Request, conversation: str) -> HTTPResponse:
        account = await agent(request)
        found = await mapped(service.accept(account, cid(conversation)))
        return _json({"handoff": found})

    @bp.get("/conversations/<conversation:str>/context")
    async def context(request: Request, conversation: str) -> HTTPResponse:
        account = await agent(request)
        return _json(await mapped(service.context(account, cid(conversation))))

    @bp.get("/conversations/<conversation:str>/messages")
    async def messages(request: Request, conversation: str) -> HTTPResponse:
        account = await agent(request)
        raw = str(request.args.get("after", "0"))
        # ASCII digits only ('²'.isdigit() is True but int() refuses it), and few of them
        # (int() refuses more than 4,300 digits; no transcript has a billion messages)
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 9):
            raise ApiError(400, "'after' must be a non-negative integer")
        found = await mapped(service.messages(account, cid(conversation), int(raw)))
        return _json({"messages": found})

    @bp.post("/conversations/<conversation:str>/messages")
    async def send(request: Request, conversation: str) -> HTTPResponse:
        account = await agent(request)
        text = text_field(request)
        found = await mapped(service.send(account, cid(conversation), text))
        return _json({"message": found})

    @bp.post("/conversations/<conversation:str>/notes")
    async def note(request: Request, conversation: str) -> HTTPResponse:
        account = await agent(request)
        text = text_field(request)
        found = await mapped(service.note(account, cid(conversation), text))
        return _json({"note": found})

    @bp.get("/conversations/<conversation:str>/suggestions")
    async def suggestions(request: Request, conversation: str) -> HTTPResponse:
        account = await agent(request)
        query = clean(str(request.args.get("q") or ""))[:MAX_TEXT].strip() or None
        found = await mapped(service.suggestions(account, cid(conversation), query))
        return _json({"suggestions": found})

    @bp.post("/conversations/<conversation:str>/transfer")
    async def transfer(request: Request, conversation: str) -> HTTPResponse:
        account = await agent(request)
        group = text_field(request, "group")
        found = await mapped(service.transfer(account, cid(conversation), group))
        return _json({"handoff": found})

    @bp.post("/conversations/<conversation:str>/close")
    async def close(request: Request, conversation: str) -> HTTPResponse:
        account = await agent(request)
        resolution = text_field(request, "resolution")
        found = await mapped(service.close(account, cid(conversation), resolution))
        return _json({"handoff": found})

    @bp.post("/events/ticket")
    async def events_ticket(request: Request) -> HTTPResponse:
        """An ``EventSource`` cannot send the header: a ticket, single use, valid
        ``store.ttl`` seconds, bound to this agent, opens ``/agent/events?ticket=…``."""
        account = await agent(request)
        issued = await store.issue(account.username)
        return json_response(
            {"ticket": issued, "expires_in": store.ttl}, headers={"Cache-Control": "no-store"}
        )

    @bp.get("/events")
    async def events(request: Request) -> None:
        given = request.args.get("ticket")
        if given is not None and "token" not in request.args:
            username = await store.redeem(str(given))
            found = await service.ctx.run(service.store.agents.get, username) if username else None
            if found is None:
                raise ApiError(401, "the ticket is unknown, used or expired: get a new one")
            account: AgentAccount = found
        else:
            account = await agent(request)
        groups = service.config.group_names if account.supervisor else account.groups
        topics = ["queue", f"agent:{account.username}", *(f"group:{g}" for g in groups)]
        await sse(request, topics, stopping, None, service)

    return bp
