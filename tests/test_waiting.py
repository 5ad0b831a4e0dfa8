"""Keep helping while waiting: queued (or reserved for an agent who has not accepted), the bot
still answers FAQ and self-service questions, marked as the bot's; other messages are
acknowledged once (已收到，客服接入后会看到); the customer hears when the place in the queue
changes; every message reaches the agent; a card loss (a flow that changes data) stays off
while a person has the conversation. Through the REST channel on the shipped project."""

from __future__ import annotations

import time
from typing import Any

from test_handoff_api import login, make, say
from test_server_project import TrainedBot, trained_bot

__all__ = ["trained_bot"]
RECEIVED = "已收到，客服接入后会看到"
CONFIG = {
    "groups": [{"name": "账户"}, {"name": "投诉"}],
    "routing": {"default_group": "账户", "intents": {"complain": "投诉"}},
    "queue": {"auto_assign": False},
}
FEE = "跨行转账手续费多少"


def texts(replies: list[dict[str, Any]]) -> str:
    return " ".join(str(m.get("text") or "") for m in replies)


async def queued(app: Any, service: Any, sender: str) -> None:
    replies = await say(app, sender, "转人工")
    assert "队列" in texts(replies)
    assert service.store.handoffs.latest(sender).status == "waiting"


async def test_the_bot_answers_faq_while_queued_marked_as_the_bot(trained_bot: TrainedBot) -> None:
    app, agent, service = make(trained_bot, CONFIG)
    await queued(app, service, "w1")
    replies = await say(app, "w1", FEE)
    said = texts(replies)
    assert "智能客服" in replies[0]["text"] and "排队" in replies[0]["text"]  # who answers
    assert "手续费" in said and RECEIVED not in said
    tracker = await agent.processor.get_tracker("w1")
    assert tracker.paused and service.store.handoffs.latest("w1").status == "waiting"
    bots = [e for e in tracker.events if e["event"] == "bot"]
    assert (bots[-1].get("metadata") or {}).get("while_waiting") is True
    # the introduction once per wait
    again = await say(app, "w1", "开户要带什么材料")
    assert "身份证" in texts(again) and "由智能客服先为您解答" not in texts(again)


async def test_other_messages_are_acknowledged_once(trained_bot: TrainedBot) -> None:
    app, _agent, service = make(trained_bot, CONFIG)
    await queued(app, service, "w2")
    first = await say(app, "w2", "我的问题是昨天转账没到账，对方说没收到")
    assert RECEIVED in texts(first)
    second = await say(app, "w2", "另外我还想补充一下细节")
    assert RECEIVED not in texts(second) and "队列" not in texts(second)  # not said again


async def test_the_customer_hears_when_the_place_changes(trained_bot: TrainedBot) -> None:
    app, _agent, service = make(trained_bot, CONFIG)
    await queued(app, service, "first")
    await queued(app, service, "second")
    alice = await login(app, "alice")
    _, accepted = await app.asgi_client.post("/agent/conversations/first/accept", headers=alice)
    assert accepted.status == 200
    moved = await say(app, "second", "还要等多久啊")
    assert "您是下一位" in texts(moved)
    unchanged = await say(app, "second", "好的我再等等")
    assert "您是下一位" not in texts(unchanged)


async def test_reserved_for_an_agent_the_bot_still_answers(trained_bot: TrainedBot) -> None:
    app, _agent, service = make(trained_bot, CONFIG)
    await queued(app, service, "w3")
    handoff = service.store.handoffs.latest("w3")
    assert service.store.handoffs.assign(handoff.id, "alice", time.time()) is not None
    replies = await say(app, "w3", FEE)  # before: [] once an agent was reserved
    assert "手续费" in texts(replies)
    other = await say(app, "w3", "麻烦快一点")
    assert RECEIVED in texts(other)


async def test_a_card_loss_stays_off_while_a_person_has_the_conversation(
    trained_bot: TrainedBot,
) -> None:
    app, agent, service = make(trained_bot, CONFIG)
    await queued(app, service, "w4")
    replies = await say(app, "w4", "我的卡丢了，帮我挂失")
    assert "客服接入后会为您办理" in texts(replies) and "95500-0000" in texts(replies)
    tracker = await agent.processor.get_tracker("w4")
    assert tracker.active_loop.name is None and tracker.paused
    alice = await login(app, "alice")
    await app.asgi_client.post("/agent/conversations/w4/accept", headers=alice)
    during = await say(app, "w4", "卡丢了 挂失")
    assert "客服接入后会为您办理" in texts(during)
    assert await say(app, "w4", FEE) == []  # the agent answers now


async def test_everything_the_customer_wrote_reaches_the_agent(trained_bot: TrainedBot) -> None:
    app, _agent, service = make(trained_bot, CONFIG)
    await queued(app, service, "w5")
    written = [FEE, "我的问题是昨天转账没到账", "另外补充一下", "卡丢了 挂失"]
    for text in written:
        await say(app, "w5", text)
    alice = await login(app, "alice")
    await app.asgi_client.post("/agent/conversations/w5/accept", headers=alice)
    _, context = await app.asgi_client.get("/agent/conversations/w5/context", headers=alice)
    customer = [m["text"] for m in context.json["transcript"] if m["from"] == "customer"]
    assert customer[-len(written) :] == written
    bot = [m for m in context.json["transcript"] if m["from"] == "bot"]
    assert any("手续费" in m["text"] for m in bot)  # what the bot answered meanwhile, too


async def test_the_rating_asks_whether_it_was_solved_and_takes_a_comment(
    trained_bot: TrainedBot,
) -> None:
    app, _agent, service = make(trained_bot, CONFIG)
    await queued(app, service, "r1")
    alice = await login(app, "alice")
    await app.asgi_client.post("/agent/conversations/r1/accept", headers=alice)
    _, closed = await app.asgi_client.post(
        "/agent/conversations/r1/close", headers=alice, json={"resolution": "resolved"}
    )
    assert closed.status == 200
    rated = await say(app, "r1", '/rate_service{"rating": "4"}')
    assert "感谢您的评价" in rated[0]["text"]
    question = rated[-1]
    assert "解决了吗" in question["text"]
    assert [b["title"] for b in question["buttons"]] == ["已解决", "未解决"]
    answered = await say(app, "r1", question["buttons"][1]["payload"])
    assert "意见或建议" in texts(answered)
    await say(app, "r1", "等得太久了，我的卡号6222021234567890123")
    log = {e["action"]: e for e in service.store.audit.log("r1")}
    assert log["rate"]["detail"] == {"rating": 4}
    assert log["rate_solved"]["detail"] == {"solved": False}
    comment = log["rate_comment"]["detail"]["comment"]
    assert comment.startswith("等得太久了") and "6222021234567890123" not in comment
    # a later message is not a comment any more
    await say(app, "r1", "谢谢")
    assert [e["action"] for e in service.store.audit.log("r1")].count("rate_comment") == 1
