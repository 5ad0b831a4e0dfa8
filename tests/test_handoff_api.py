"""The handoff through the public HTTP surface: a customer asks for a person on the REST
channel, an agent logs in, accepts, reads the context packet, replies, transfers, closes; the
customer rates and the bot answers again. Also the agent API's refusals (401/403/409/400)."""

from __future__ import annotations

from typing import Any

import pytest
from test_server_project import FAQ, TrainedBot, new_agent, trained_bot

from bot.agent import Agent
from bot.handoff.config import parse
from bot.handoff.factory import knowledge_search
from bot.handoff.service import HandoffService
from bot.handoff.store import HandoffStore
from bot.server import create_app

__all__ = ["trained_bot"]
REST = "/webhooks/rest/webhook"
CONFIG = {
    "groups": [
        {"name": "账户"},
        {"name": "信用卡"},
        {"name": "投诉"},
        {"name": "贷款", "hours": {"time": "09:00-10:00", "days": [7]}},
    ],
    "routing": {
        "default_group": "账户",
        "intents": {"complain": "投诉"},
        "entities": {"account_type": {"credit_card": "信用卡"}},
    },
    "queue": {"auto_assign": False},
    "triggers": {"rules": [{"name": "loan_advice", "keywords": ["贷款方案"], "group": "贷款"}]},
}


def make(
    bot: TrainedBot, config: dict[str, Any] | None = None
) -> tuple[Any, Agent, HandoffService]:
    agent = new_agent(bot)
    search, category = knowledge_search(bot.root)
    service = HandoffService(
        parse(config or CONFIG, {}),
        HandoffStore.from_url("sqlite://"),
        agent.processor,
        search=search,
        categories=category,
    )
    service.store.agents.add("alice", "alice-password", ["账户", "投诉"])
    service.store.agents.add("bob", "bob-password", ["信用卡"])
    service.store.agents.add("sue", "sue-password", ["账户"], role="supervisor")
    return create_app(agent, handoff=service), agent, service


async def login(app: Any, username: str) -> dict[str, str]:
    _, response = await app.asgi_client.post(
        "/agent/login", json={"username": username, "password": f"{username}-password"}
    )
    assert response.status == 200, response.json
    return {"Authorization": f"Bearer {response.json['token']}"}


async def say(app: Any, sender: str, text: str) -> list[dict[str, Any]]:
    _, response = await app.asgi_client.post(REST, json={"sender": sender, "message": text})
    assert response.status == 200, response.json
    messages: list[dict[str, Any]] = response.json
    return messages


async def test_full_handoff_from_request_to_rating(trained_bot: TrainedBot) -> None:
    app, agent, service = make(trained_bot)
    await say(app, "h1", FAQ)
    replies = await say(app, "h1", "转人工")
    texts = " ".join(m.get("text", "") for m in replies)
    assert "转接人工" in texts and "队列" in texts and "您是下一位" in texts
    assert (await agent.processor.get_tracker("h1")).paused

    alice = await login(app, "alice")
    _, queue = await app.asgi_client.get("/agent/queue", headers=alice)
    waiting = queue.json["waiting"]
    assert [w["conversation_id"] for w in waiting] == ["h1"]
    assert waiting[0]["reason"] == "customer_request" and waiting[0]["group"] == "账户"
    assert waiting[0]["position"] == 1

    # the bot predicts nothing while a human has the conversation
    assert await say(app, "h1", "你好，还在吗") != []  # waiting: told the place in the queue

    _, accepted = await app.asgi_client.post("/agent/conversations/h1/accept", headers=alice)
    assert accepted.status == 200 and accepted.json["handoff"]["status"] == "active"
    _, context = await app.asgi_client.get("/agent/conversations/h1/context", headers=alice)
    packet = context.json
    assert packet["reason"]["code"] == "customer_request"
    transcript = [m["text"] for m in packet["transcript"] if m["from"] == "customer"]
    assert transcript[:2] == [FAQ, "转人工"]
    assert packet["intents"][0]["intent"] == "faq"
    assert any(k["id"] == "open_account_documents" for k in packet["knowledge_tried"])
    assert packet["suggestions"]

    assert await say(app, "h1", "我的卡号是6222021234567890123") == []  # to the agent only
    _, sent = await app.asgi_client.post(
        "/agent/conversations/h1/messages", headers=alice, json={"text": "您好，我是客服小王"}
    )
    assert sent.status == 200
    tracker = await agent.processor.get_tracker("h1")
    agent_messages = [
        e
        for e in tracker.events
        if e["event"] == "bot" and (e.get("metadata") or {}).get("agent") == "alice"
    ]
    assert [e["text"] for e in agent_messages][-1] == "您好，我是客服小王"
    _, msgs = await app.asgi_client.get("/agent/conversations/h1/messages", headers=alice)
    masked = [m["text"] for m in msgs.json["messages"] if m["from"] == "customer"]
    assert "我的卡号是***************0123" in masked  # card numbers masked for agents

    _, closed = await app.asgi_client.post(
        "/agent/conversations/h1/close", headers=alice, json={"resolution": "resolved"}
    )
    assert closed.status == 200 and closed.json["handoff"]["status"] == "closed"
    tracker = await agent.processor.get_tracker("h1")
    assert not tracker.paused
    rating_request = [e for e in tracker.events if e["event"] == "bot"][-1]
    assert "打分" in rating_request["text"] and len(rating_request["data"]["buttons"]) == 5

    thanks = await say(app, "h1", '/rate_service{"rating": "4"}')
    assert "感谢您的评价" in thanks[0]["text"]
    assert service.store.handoffs.latest("h1").rating == 4  # type: ignore[union-attr]
    answer = await say(app, "h1", FAQ)
    assert "身份证" in " ".join(m.get("text", "") for m in answer)  # the bot is back
    actions = [e["action"] for e in service.store.audit.log("h1")]
    assert actions == ["enqueue", "accept", "view_context", "message", "close", "rate"]


async def test_agents_see_only_their_groups_and_conflicts_are_409(trained_bot: TrainedBot) -> None:
    app, _agent, _service = make(trained_bot)
    await say(app, "h2", "转人工")
    bob = await login(app, "bob")  # 信用卡 only
    _, queue = await app.asgi_client.get("/agent/queue", headers=bob)
    assert queue.json["waiting"] == []
    _, refused = await app.asgi_client.post("/agent/conversations/h2/accept", headers=bob)
    assert refused.status == 403
    alice, sue = await login(app, "alice"), await login(app, "sue")
    _, ok = await app.asgi_client.post("/agent/conversations/h2/accept", headers=alice)
    assert ok.status == 200
    _, taken = await app.asgi_client.post(
        "/agent/conversations/h2/messages", headers=sue, json={"text": "我来"}
    )
    assert taken.status == 409  # a supervisor sees it but does not chat in alice's place
    _, transfer = await app.asgi_client.post(
        "/agent/conversations/h2/transfer", headers=alice, json={"group": "信用卡"}
    )
    assert transfer.status == 200 and transfer.json["handoff"]["status"] == "waiting"
    _, queue = await app.asgi_client.get("/agent/queue", headers=bob)
    assert [w["conversation_id"] for w in queue.json["waiting"]] == ["h2"]
    _, unknown = await app.asgi_client.post(
        "/agent/conversations/h2/transfer", headers=bob, json={"group": "外星人"}
    )
    assert unknown.status == 400 and "unknown group" in unknown.json["error"]
    _, overview = await app.asgi_client.get("/agent/supervisor", headers=sue)
    groups = {g["name"]: g for g in overview.json["groups"]}
    assert groups["信用卡"]["waiting"] == 1
    _, forbidden = await app.asgi_client.get("/agent/supervisor", headers=bob)
    assert forbidden.status == 403


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer nonsense"}, {"Authorization": "Basic abc"}]
)
async def test_agent_endpoints_need_a_valid_token(
    trained_bot: TrainedBot, headers: dict[str, str]
) -> None:
    app, _agent, _service = make(trained_bot)
    _, response = await app.asgi_client.get("/agent/queue", headers=headers)
    assert response.status == 401 and response.json["error"]


async def test_wrong_password_and_bad_bodies_are_4xx(trained_bot: TrainedBot) -> None:
    app, _agent, service = make(trained_bot)
    _, response = await app.asgi_client.post(
        "/agent/login", json={"username": "alice", "password": "nope"}
    )
    assert response.status == 401 and "wrong username or password" in response.json["error"]
    _, response = await app.asgi_client.post("/agent/login", content=b"{not json")
    assert response.status == 400
    alice = await login(app, "alice")
    await say(app, "h3", "转人工")
    await app.asgi_client.post("/agent/conversations/h3/accept", headers=alice)
    _, response = await app.asgi_client.post(
        "/agent/conversations/h3/messages", headers=alice, json={"text": ""}
    )
    assert response.status == 400
    _, response = await app.asgi_client.post(
        "/agent/conversations/h3/close", headers=alice, json={"resolution": "whatever"}
    )
    assert response.status == 400 and "resolution must be one of" in response.json["error"]
    _, response = await app.asgi_client.get("/agent/conversations/nobody/context", headers=alice)
    assert response.status == 404
    assert [e["action"] for e in service.store.audit.log()][:1] == ["login_failed"]


async def test_complaint_goes_to_the_complaint_group_with_priority(trained_bot: TrainedBot) -> None:
    app, _agent, service = make(trained_bot)
    await say(app, "calm", "转人工")
    await say(app, "angry", "我要投诉你们")
    waiting = service.store.handoffs.waiting()
    by_id = {h.conversation_id: h for h in waiting}
    assert by_id["angry"].group == "投诉" and by_id["angry"].reason == "complaint"
    assert by_id["angry"].priority > by_id["calm"].priority


async def test_business_rule_outside_hours_becomes_a_ticket(trained_bot: TrainedBot) -> None:
    app, agent, service = make(
        trained_bot,
        {
            **CONFIG,
            "groups": [
                {"name": "账户"},
                {"name": "信用卡"},
                {"name": "投诉"},
                {"name": "贷款", "hours": {"time": "00:00-00:01", "days": [1]}},
            ],
        },
    )
    replies = await say(app, "t1", "能给我一个贷款方案吗")
    text = " ".join(m.get("text", "") for m in replies)
    assert "不是「贷款」人工服务时间" in text and "留言" in text
    assert (await agent.processor.get_tracker("t1")).paused
    replies = await say(app, "t1", "请明天给我回电话，手机13812345678")
    assert "工单#" in replies[0]["text"]
    ticket = service.store.tickets.all()[0]
    assert ticket.text == "请明天给我回电话，手机138****5678"  # masked
    assert not (await agent.processor.get_tracker("t1")).paused


async def test_repeated_fallback_hands_off(trained_bot: TrainedBot) -> None:
    app, agent, service = make(trained_bot)
    for text in ("asdkjh qwe zxcm", "qpwoeiruty lkjh", "mnbvcx poiuy"):
        replies = await say(app, "f1", text)
        if service.store.handoffs.latest("f1") is not None:
            break
    handoff = service.store.handoffs.latest("f1")
    assert handoff is not None and handoff.reason == "repeated_fallback"
    assert any("转接人工" in (m.get("text") or "") for m in replies)
    assert (await agent.processor.get_tracker("f1")).paused


async def test_a_retried_message_id_is_processed_once(trained_bot: TrainedBot) -> None:
    app, agent, _service = make(trained_bot)
    body = {"sender": "idem", "message": FAQ, "metadata": {"message_id": "m-1"}}
    _, first = await app.asgi_client.post(REST, json=body)
    _, again = await app.asgi_client.post(REST, json=body)
    assert first.json == again.json
    tracker = await agent.processor.get_tracker("idem")
    assert sum(e["event"] == "user" for e in tracker.events) == 1


async def test_customer_history_restores_the_page(trained_bot: TrainedBot) -> None:
    app, _agent, _service = make(trained_bot)
    await say(app, "page-1", FAQ)
    _, response = await app.asgi_client.get("/webhooks/app/history?sender=page-1")
    assert response.status == 200
    messages = response.json["messages"]
    assert messages[0] == {"from": "customer", "text": FAQ, "at": messages[0]["at"]}
    assert messages[1]["from"] == "bot" and "身份证" in messages[1]["text"]
    _, response = await app.asgi_client.get("/webhooks/app/history?sender=customer:C1001")
    assert response.status == 400  # a verified customer's history needs their token
    _, response = await app.asgi_client.get("/webhooks/app/history")
    assert response.status == 400


async def test_negative_sentiment_across_recent_turns_hands_off(trained_bot: TrainedBot) -> None:
    app, agent, service = make(trained_bot)
    await say(app, "s1", FAQ)  # calm: P(negative) small
    angry = "信用卡账单怎么又多扣钱了？？真是坑"  # an FAQ question, said angrily
    await say(app, "s1", angry)
    # one angry message after a calm one: not yet
    assert service.store.handoffs.latest("s1") is None
    await say(app, "s1", angry)
    replies = await say(app, "s1", angry)  # the last three are negative on average
    handoff = service.store.handoffs.latest("s1")
    assert handoff is not None and handoff.reason == "negative_sentiment"
    assert handoff.group == "信用卡"  # from the account_type entity
    assert any("转接人工" in (m.get("text") or "") for m in replies)
    tracker = await agent.processor.get_tracker("s1")
    user = [e for e in tracker.events if e["event"] == "user"][-1]
    assert user["parse_data"]["sentiment"]["label"] == "negative"
    _, context = await app.asgi_client.get(
        "/agent/conversations/s1/context", headers=await login(app, "bob")
    )
    assert context.status == 200  # bob's group: 信用卡
    trend = context.json["sentiment"]["trend"]
    assert len(trend) == 4 and trend[0] < 0.5 < min(trend[1:])


async def test_the_packet_is_posted_to_the_webhook_signed(trained_bot: TrainedBot) -> None:
    """An external desk receives the context packet, with an HMAC signature of the body."""
    import hashlib
    import hmac
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    received: list[tuple[bytes, str]] = []

    class Desk(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((body, self.headers.get("X-Bankbot-Signature", "")))
            self.send_response(204)
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Desk)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        app, _agent, service = make(
            trained_bot, {**CONFIG, "webhook": {"url": url, "secret": "desk-secret"}}
        )
        await say(app, "w1", "我的手机号是13812345678")
        await say(app, "w1", "转人工")
        await service.drain()
    finally:
        server.shutdown()
        server.server_close()
    assert len(received) == 1
    body, signature = received[0]
    expected = hmac.new(b"desk-secret", body, hashlib.sha256).hexdigest()
    assert signature == f"sha256={expected}"
    packet = json.loads(body)
    assert packet["conversation_id"] == "w1" and packet["version"] == 1
    assert packet["transcript"][0]["text"] == "我的手机号是138****5678"


async def test_a_waiting_customer_types_liu_yan_and_leaves_a_ticket(
    trained_bot: TrainedBot,
) -> None:
    """WeChat shows no buttons: the word 留言 does what the page's 留言 button does."""
    app, agent, service = make(trained_bot)
    await say(app, "w1", "转人工")
    replies = await say(app, "w1", "留言")
    assert "请直接输入您的留言" in replies[0]["text"]
    assert service.store.handoffs.latest("w1").status == "leaving"  # type: ignore[union-attr]
    replies = await say(app, "w1", "卡被锁了，下午三点后联系我")
    assert "工单#" in replies[0]["text"]
    assert service.store.tickets.all()[0].text == "卡被锁了，下午三点后联系我"
    assert not (await agent.processor.get_tracker("w1")).paused


async def test_asking_for_a_person_while_giving_a_phone_number_hands_off_masked(
    trained_bot: TrainedBot,
) -> None:
    """Details and the request in one message: the request wins, the number is masked."""
    app, agent, service = make(trained_bot)
    replies = await say(app, "p1", "我的手机号13812345678，帮我转人工")
    assert any("转接人工" in (m.get("text") or "") for m in replies)
    handoff = service.store.handoffs.latest("p1")
    assert handoff is not None and handoff.reason == "customer_request"
    assert handoff.preview is not None and "13812345678" not in handoff.preview
    assert "138****5678" in handoff.preview
    assert (await agent.processor.get_tracker("p1")).paused


@pytest.mark.parametrize("after", ["²", "9" * 5000, "-1", "1.5"])
async def test_an_after_that_is_not_a_plain_number_is_400(
    trained_bot: TrainedBot, after: str
) -> None:
    """'²' passes str.isdigit() but not int(); 5,000 digits exceed int()'s limit: both were
    500s."""
    app, _agent, _service = make(trained_bot)
    await say(app, "n1", "转人工")
    alice = await login(app, "alice")
    _, response = await app.asgi_client.get(
        "/agent/conversations/n1/messages", params={"after": after}, headers=alice
    )
    assert response.status == 400 and "'after'" in response.json["error"]


async def test_going_away_returns_reserved_conversations_to_the_queue(
    trained_bot: TrainedBot,
) -> None:
    """A reservation (assigned, not accepted) of an agent who goes away or logs out must not
    keep the customer waiting for nobody: it goes back to the queue for someone else."""
    app, _agent, service = make(trained_bot, {**CONFIG, "queue": {"auto_assign": True}})
    alice = await login(app, "alice")
    await say(app, "r1", "转人工")
    await service.drain()
    assert service.store.handoffs.latest("r1").status == "assigned"  # type: ignore[union-attr]
    _, me = await app.asgi_client.post("/agent/status", headers=alice, json={"status": "away"})
    assert me.status == 200 and me.json["load"] == 0
    await service.drain()
    handoff = service.store.handoffs.latest("r1")
    assert handoff is not None and handoff.status == "waiting" and handoff.agent is None
    await login(app, "sue")  # available: the router gives it to her
    await service.drain()
    assert service.store.handoffs.latest("r1").agent == "sue"  # type: ignore[union-attr]
    assert "release" in [e["action"] for e in service.store.audit.log("r1")]


async def test_a_supervisor_closing_tells_the_agent_who_handled_it(trained_bot: TrainedBot) -> None:
    app, _agent, service = make(trained_bot)
    await say(app, "sc1", "转人工")
    alice, sue = await login(app, "alice"), await login(app, "sue")
    await app.asgi_client.post("/agent/conversations/sc1/accept", headers=alice)
    async with service.bus.subscribe(["agent:alice"]) as events:
        _, closed = await app.asgi_client.post(
            "/agent/conversations/sc1/close", headers=sue, json={"resolution": "resolved"}
        )
        assert closed.status == 200
        seen = [events.get_nowait() for _ in range(events.qsize())]
    assert ("closed", {"conversation_id": "sc1"}) in seen


async def test_the_customer_page_hears_about_reservations_and_transfers(
    trained_bot: TrainedBot,
) -> None:
    """The page knows only waiting/active/closed: a reserved conversation is still waiting
    (it was 'assigned', which hid the status line), and a transfer puts it back in line."""
    app, _agent, service = make(trained_bot, {**CONFIG, "queue": {"auto_assign": True}})
    alice = await login(app, "alice")
    await say(app, "cp1", "转人工")
    await service.drain()
    assert service.store.handoffs.latest("cp1").status == "assigned"  # type: ignore[union-attr]
    status = await service.customer_status("cp1")
    assert status is not None and status["status"] == "waiting"
    await app.asgi_client.post("/agent/conversations/cp1/accept", headers=alice)
    assert (await service.customer_status("cp1") or {})["status"] == "active"
    async with service.bus.subscribe(["conversation:cp1"]) as events:
        _, moved = await app.asgi_client.post(
            "/agent/conversations/cp1/transfer", headers=alice, json={"group": "信用卡"}
        )
        assert moved.status == 200
        seen = [events.get_nowait() for _ in range(events.qsize())]
    queue_updates = [data for kind, data in seen if kind == "queue"]
    assert queue_updates and queue_updates[-1]["status"] == "waiting"


async def test_an_agent_cannot_transfer_a_conversation_someone_took_meanwhile(
    trained_bot: TrainedBot,
) -> None:
    """alice saw it waiting in her group; bob's colleague accepted it before her transfer
    arrived: the transfer must not pull it out of the other agent's hands."""
    app, _agent, service = make(trained_bot)
    service.store.agents.add("carol", "carol-password", ["账户"])
    await say(app, "tr1", "转人工")
    alice, carol = await login(app, "alice"), await login(app, "carol")
    stale = service.store.handoffs.latest("tr1")
    _, accepted = await app.asgi_client.post("/agent/conversations/tr1/accept", headers=carol)
    assert accepted.status == 200

    async def as_seen_before(conversation_id: str) -> Any:
        return stale

    service.ctx.store_latest = as_seen_before  # type: ignore[method-assign]
    _, moved = await app.asgi_client.post(
        "/agent/conversations/tr1/transfer", headers=alice, json={"group": "信用卡"}
    )
    assert moved.status == 409
    handoff = service.store.handoffs.latest("tr1")
    assert handoff is not None and handoff.status == "active" and handoff.agent == "carol"


async def test_pressing_liu_yan_again_is_not_the_message(trained_bot: TrainedBot) -> None:
    """The page's 留言 chip stays on screen after the first press: a second press (or an old
    button) must not become a ticket reading '/leave_message' and end the handoff."""
    app, _agent, service = make(trained_bot)
    await say(app, "lm1", "转人工")
    await say(app, "lm1", "/leave_message")
    for press in ("/leave_message", "留言", "/request_human"):
        replies = await say(app, "lm1", press)
        assert "请直接输入您的留言" in replies[0]["text"]
    assert service.store.tickets.all() == []
    assert service.store.handoffs.latest("lm1").status == "leaving"  # type: ignore[union-attr]
    replies = await say(app, "lm1", "请下午联系我")
    assert "工单#" in replies[0]["text"]
    assert [t.text for t in service.store.tickets.all()] == ["请下午联系我"]
