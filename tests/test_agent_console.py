"""The agent workspace in Chinese, with suggestions from the conversation's topic: labels for
intents, slots and reasons from the domain (``GET /agent/labels``); suggestions from the
latest customer messages with a topic, not the 转人工 button payload, weak matches hidden; no
0.00 entries in the knowledge the bot tried; the reason's detail is the customer's words, not
the label again. Through the HTTP surface on the shipped project (``trained_bot``)."""

from __future__ import annotations

from typing import Any

from test_handoff_api import login, make, say
from test_server_project import TrainedBot, trained_bot

from bot.handoff import packet

__all__ = ["trained_bot"]
CONFIG = {
    "groups": [{"name": "账户"}, {"name": "投诉"}],
    "routing": {"default_group": "账户", "intents": {"complain": "投诉"}},
    "queue": {"auto_assign": False},
}


async def accepted(app: Any, conversation: str) -> dict[str, str]:
    alice = await login(app, "alice")
    _, response = await app.asgi_client.post(
        f"/agent/conversations/{conversation}/accept", headers=alice
    )
    assert response.status == 200
    return alice


async def test_labels_come_from_the_domain_and_need_an_agent(trained_bot: TrainedBot) -> None:
    app, _agent, _service = make(trained_bot, CONFIG)
    _, refused = await app.asgi_client.get("/agent/labels")
    assert refused.status == 401
    alice = await login(app, "alice")
    _, labels = await app.asgi_client.get("/agent/labels", headers=alice)
    assert labels.status == 200
    assert labels.json["intents"]["query_balance"] == "查询余额"
    assert labels.json["intents"]["request_human"] == "转人工客服"
    assert labels.json["slots"]["customer_id"] == "客户号"
    assert labels.json["slots"]["card_last4"] == "卡号后四位"
    assert labels.json["reasons"]["customer_request"] == "客户要求转人工"


async def test_suggestions_follow_the_topic_not_the_button(trained_bot: TrainedBot) -> None:
    app, _agent, _service = make(trained_bot, CONFIG)
    await say(app, "t1", "信用卡年费怎么收")
    await say(app, "t1", "/request_human")  # the 转人工 button: no topic
    alice = await accepted(app, "t1")
    _, context = await app.asgi_client.get("/agent/conversations/t1/context", headers=alice)
    found = context.json["suggestions"]
    assert found and "年费" in found[0]["question"]
    assert all(s["score"] >= packet.MIN_SUGGESTION for s in found)
    assert all(k["score"] >= packet.MIN_TRIED for k in context.json["knowledge_tried"])
    # the reason is said once; the detail is what the customer did
    reason = context.json["reason"]
    assert reason["label"] == "客户要求转人工" and "人工服务" not in reason["detail"]
    assert reason["detail"] == "客户点击了“转人工”按钮"
    # a later message without a topic keeps the topic's suggestions
    await say(app, "t1", "好的谢谢")
    _, topic = await app.asgi_client.get("/agent/conversations/t1/topic-suggestions", headers=alice)
    assert topic.status == 200 and "年费" in topic.json["suggestions"][0]["question"]
    # another agent's conversation is not visible
    bob = await login(app, "bob")
    _, hidden = await app.asgi_client.get("/agent/conversations/t1/topic-suggestions", headers=bob)
    assert hidden.status in (403, 404)


async def test_a_typed_ask_is_quoted_masked_in_the_detail(trained_bot: TrainedBot) -> None:
    app, _agent, service = make(trained_bot, CONFIG)
    await say(app, "t2", "我的卡号6222021234567890123 转人工")
    handoff = service.store.handoffs.latest("t2")
    assert handoff is not None and handoff.reason == "customer_request"
    assert handoff.reason_detail == "客户原话“我的卡号***************0123 转人工”"


def test_topic_suggestions_weigh_the_latest_topic_and_hide_weak_ones() -> None:
    def search(text: str) -> list[tuple[str, str, str, str, float]]:
        return {
            "年费怎么收": [
                ("fee", "信用卡年费", "a", "信用卡", 0.9),
                ("noise", "x", "b", "c", 0.05),
            ],
            "转账限额": [("limit", "转账限额", "a", "账户", 0.8)],
        }.get(text, [("noise", "x", "b", "c", 0.01)])

    messages = [
        {"from": "customer", "text": "年费怎么收", "intent": "faq"},
        {"from": "customer", "text": "转账限额", "intent": "faq"},
        {"from": "customer", "text": "/request_human", "intent": "request_human"},
        {"from": "customer", "text": "谢谢", "intent": "thank"},
    ]
    found = packet.topic_suggestions(messages, search)
    assert [s["id"] for s in found] == ["limit", "fee"]  # latest topic first; noise hidden
    assert packet.topic_texts(messages) == ["转账限额", "年费怎么收"]


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


async def test_a_console_that_stops_beating_is_set_away(trained_bot: TrainedBot) -> None:
    from bot.server.agent_workspace import AWAY_AFTER_SECONDS, SWEEP_SECONDS, Presence

    assert AWAY_AFTER_SECONDS + SWEEP_SECONDS <= 30  # closing the console: away within 30 s
    app, _agent, service = make(trained_bot, CONFIG)
    alice = await login(app, "alice")
    _, beat = await app.asgi_client.post("/agent/heartbeat")
    assert beat.status == 401
    _, online = await app.asgi_client.post(
        "/agent/status", headers=alice, json={"status": "available"}
    )
    assert online.status == 200
    _, beat = await app.asgi_client.post("/agent/heartbeat", headers=alice)
    assert beat.status == 200 and beat.json["away_after"] == AWAY_AFTER_SECONDS

    clock = Clock()
    presence = Presence(service, clock=clock)
    await presence.beat("alice")
    clock.now += AWAY_AFTER_SECONDS - 1
    assert await presence.sweep() == []  # still beating recently
    await presence.beat("alice")
    clock.now += AWAY_AFTER_SECONDS + 1  # the tab was closed
    assert await presence.sweep() == ["alice"]
    assert service.store.agents.get("alice").status == "away"  # type: ignore[union-attr]
    assert await presence.sweep() == []  # once
    # an agent who never sent a heartbeat (an API client) is not swept
    bob = await login(app, "bob")
    await app.asgi_client.post("/agent/status", headers=bob, json={"status": "available"})
    clock.now += 3600
    assert await presence.sweep() == []
    assert service.store.agents.get("bob").status == "available"  # type: ignore[union-attr]
