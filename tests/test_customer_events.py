"""The customer's event stream without the token in the URL: the page trades its token
(``Authorization: Bearer``) for a one-time ticket (``POST /webhooks/app/events/ticket``: 30 s,
single use, bound to the customer) and opens ``/webhooks/app/events?ticket=…``; ``?token=`` is
refused (401) on the stream and the history, and the token lands in no log line. The stream's
first event tells the ticket's customer their own queue place. A small Sanic app around the
real blueprint; ``stopping`` is set, so each stream sends what it has and ends."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from pathlib import Path
from typing import Any

import pytest
from sanic import Sanic

from bot.channels.identity import issue_token, verify_token
from bot.core.tracker import DialogueStateTracker
from bot.domain import parse_domain
from bot.handoff.config import parse
from bot.handoff.records import Handoff, new_id
from bot.handoff.service import HandoffService
from bot.handoff.store import HandoffStore
from bot.server.customer_events import (
    TICKET_SECONDS,
    RedactTokens,
    Tickets,
    customer_blueprint,
)
from bot.server.errors import install_error_handlers
from bot.server.metrics import BotMetrics
from bot.server.settings import JwtSettings

JWT = JwtSettings()
TICKET = "/webhooks/app/events/ticket"
EVENTS = "/webhooks/app/events"


class Conversations:
    """The processor's one call the customer's history makes: every conversation empty."""

    domain = parse_domain({"intents": ["greet"]}, Path("domain.yml"))

    async def get_tracker(self, sender_id: str) -> DialogueStateTracker:
        return DialogueStateTracker.from_events(sender_id, [], self.domain)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def app_with(tickets: Tickets) -> tuple[Any, HandoffService]:
    service: Any = HandoffService(
        parse({"groups": ["账户"], "routing": {"default_group": "账户"}}),
        HandoffStore.from_url("sqlite://"),
        Conversations(),
    )
    stopping = asyncio.Event()
    stopping.set()
    app = Sanic(f"events_{new_id()}")
    app.blueprint(customer_blueprint(service, JWT, stopping, tickets))

    install_error_handlers(app, BotMetrics())
    return app, service


def events_of(body: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for block in body.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in lines:
            out.append((lines["event"], json.loads(lines["data"])))
    return out


async def test_a_ticket_opens_the_stream_once(caplog: pytest.LogCaptureFixture) -> None:
    app, service = app_with(Tickets())
    token = issue_token("C1001", JWT)
    conversation = verify_token(token, JWT).conversation_id
    service.store.handoffs.enqueue(
        Handoff(
            new_id(),
            conversation,
            "app",
            "C1001",
            None,
            "账户",
            0,
            "customer_request",
            None,
            "waiting",
            1.0,
        ),
        {},
    )
    _, refused = await app.asgi_client.post(TICKET)
    assert refused.status == 401
    _, issued = await app.asgi_client.post(TICKET, headers={"Authorization": f"Bearer {token}"})
    assert issued.status == 200 and issued.json["expires_in"] == TICKET_SECONDS
    assert issued.headers.get("cache-control") == "no-store"
    ticket = issued.json["ticket"]
    assert token not in ticket and len(ticket) >= 30
    _, stream = await app.asgi_client.get(f"{EVENTS}?ticket={ticket}")
    assert stream.status == 200 and stream.content_type.startswith("text/event-stream")
    assert events_of(stream.text) == [
        ("queue", {"status": "waiting", "position": 1, "eta_seconds": 240})
    ]
    _, again = await app.asgi_client.get(f"{EVENTS}?ticket={ticket}")
    assert again.status == 401 and "ticket" in again.json["error"]  # single use
    _, forged = await app.asgi_client.get(f"{EVENTS}?ticket=made-up")
    assert forged.status == 401


async def test_a_ticket_expires() -> None:
    clock = Clock()
    tickets = Tickets(clock=clock)
    ticket = await tickets.issue("app:C1001")
    clock.now += TICKET_SECONDS + 1
    assert await tickets.redeem(ticket) is None
    fresh = await tickets.issue("app:C1001")
    clock.now += TICKET_SECONDS - 1
    assert await tickets.redeem(fresh) == "app:C1001"


async def test_the_token_in_the_url_is_refused_and_not_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app, _service = app_with(Tickets())
    token = issue_token("C1001", JWT)
    caplog.set_level(logging.DEBUG)
    for path in (EVENTS, "/webhooks/app/history", TICKET):
        method = app.asgi_client.post if path == TICKET else app.asgi_client.get
        _, response = await method(f"{path}?token={token}")
        assert response.status == 401, path
        assert "Authorization" in response.json["error"]
    server_lines = [r.getMessage() for r in caplog.records if not r.name.startswith("httpx")]
    assert server_lines and not any(token in line for line in server_lines)  # httpx: the client
    _, history = await app.asgi_client.get(
        "/webhooks/app/history", headers={"Authorization": f"Bearer {token}"}
    )
    assert history.status == 200 and history.json == {"messages": []}


async def test_with_redis_down_tickets_work_in_process_with_one_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tickets = Tickets("redis://127.0.0.1:9/0")  # nothing listens there
    caplog.set_level(logging.INFO)
    issued = [await tickets.issue(f"app:C100{n}") for n in range(3)]
    assert [await tickets.redeem(t) for t in issued] == [f"app:C100{n}" for n in range(3)]
    assert await tickets.redeem(issued[0]) is None  # still single use
    assert await tickets.redeem("made-up") is None
    lines = [r for r in caplog.records if "Redis" in r.getMessage()]
    assert len(lines) == 1 and lines[0].levelno == logging.ERROR, [r.getMessage() for r in lines]


async def test_the_agent_stream_opens_with_a_one_time_ticket_never_the_token(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from bot.server.agent_api import agent_blueprint

    service: Any = HandoffService(
        parse({"groups": ["账户"], "routing": {"default_group": "账户"}}),
        HandoffStore.from_url("sqlite://"),
        Conversations(),
    )
    service.store.agents.add("alice", "alice-password", ["账户"])
    stopping = asyncio.Event()
    stopping.set()
    app = Sanic(f"agent_events_{new_id()}")
    app.blueprint(agent_blueprint(service, stopping, tickets=Tickets(kind="agent-sse")))
    install_error_handlers(app, BotMetrics())
    _, login = await app.asgi_client.post(
        "/agent/login", json={"username": "alice", "password": "alice-password"}
    )
    token = login.json["token"]
    caplog.set_level(logging.DEBUG)
    _, in_url = await app.asgi_client.get(f"/agent/events?token={token}")
    assert in_url.status == 401 and "ticket" in in_url.json["error"]
    _, refused = await app.asgi_client.post(f"/agent/events/ticket?token={token}")
    assert refused.status == 401
    _, issued = await app.asgi_client.post(
        "/agent/events/ticket", headers={"Authorization": f"Bearer {token}"}
    )
    assert issued.status == 200 and issued.json["expires_in"] == TICKET_SECONDS
    assert issued.headers.get("cache-control") == "no-store"
    ticket = issued.json["ticket"]
    assert token not in ticket
    _, stream = await app.asgi_client.get(f"/agent/events?ticket={ticket}")
    assert stream.status == 200 and stream.content_type.startswith("text/event-stream")
    _, again = await app.asgi_client.get(f"/agent/events?ticket={ticket}")
    assert again.status == 401  # single use
    customers = Tickets()  # a customer's ticket opens no agent stream
    _, forged = await app.asgi_client.get(f"/agent/events?ticket={await customers.issue('alice')}")
    assert forged.status == 401
    server_lines = [r.getMessage() for r in caplog.records if not r.name.startswith("httpx")]
    assert not any(token in line for line in server_lines)


def redis_up() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=0.5).close()
    except OSError:
        return False
    return True


@pytest.mark.skipif(not redis_up(), reason="no Redis on 127.0.0.1:6379")
async def test_tickets_in_redis_are_shared_by_workers_and_used_once() -> None:
    url = "redis://127.0.0.1:6379/0"
    one, other = Tickets(url), Tickets(url)
    ticket = await one.issue("app:C1002")
    assert await other.redeem(ticket) == "app:C1002"  # redeemed by another worker
    assert await one.redeem(ticket) is None


def test_an_access_log_line_never_shows_a_token() -> None:
    token = issue_token("C1001", JWT)
    record = logging.LogRecord("sanic.access", logging.INFO, __file__, 1, "", None, None)
    record.request = f"GET http://bank/webhooks/app/events?sender=x&token={token}"
    assert RedactTokens().filter(record)
    assert token not in record.request and "token=[redacted]" in record.request
    app_with(Tickets())  # mounting the blueprint installs the filter
    assert any(isinstance(f, RedactTokens) for f in logging.getLogger("sanic.access").filters)


async def test_the_welcome_offers_the_most_asked_topics() -> None:
    app, service = app_with(Tickets())
    _, first = await app.asgi_client.get("/webhooks/app/welcome")
    assert first.status == 200
    [message] = first.json["messages"]
    assert "猜你想问" in message["text"]
    assert [b["payload"] for b in message["buttons"]] == [
        "/query_balance",
        "/query_progress",
        "/report_loss",
    ]  # nothing asked yet: the response's own buttons
    service.ctx.asked.update({"faq:transfer_fee": 5, "intent:query_progress": 3, "faq:x": 1})
    service.ctx.titles["faq:transfer_fee"] = "跨行转账手续费"
    _, later = await app.asgi_client.get("/webhooks/app/welcome")
    buttons = later.json["messages"][0]["buttons"]
    assert buttons == [
        {"title": "跨行转账手续费", "payload": '/faq{"topic": "transfer_fee"}'},
        {"title": "查询办理进度", "payload": "/query_progress"},
    ]  # an entry without a known title is left out


async def test_older_customers_are_offered_large_text() -> None:
    from bot.handoff.routing import Profile

    app, service = app_with(Tickets())
    ages = {"C1001": 35, "C1002": 72}
    service.ctx.profiles = lambda cid: Profile(cid, "x", ages[cid], False)
    for customer, offered in (("C1001", False), ("C1002", True)):
        token = issue_token(customer, JWT)
        _, response = await app.asgi_client.get(
            "/webhooks/app/preferences", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status == 200 and response.json == {"large_text": offered}, customer
    _, anonymous = await app.asgi_client.get("/webhooks/app/preferences")
    assert anonymous.json == {"large_text": False}
