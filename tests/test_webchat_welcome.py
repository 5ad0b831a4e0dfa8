"""The customer's page without a browser, on the shipped project (``trained_bot``): the welcome's
猜你想问 follows what customers asked (counted by the handoff stage after every turn), and the
history gives a pressed button's title as the customer's message."""

from __future__ import annotations

from test_handoff_api import make, say
from test_server_project import TrainedBot, trained_bot

__all__ = ["trained_bot"]


async def test_the_welcome_follows_what_customers_ask(trained_bot: TrainedBot) -> None:
    app, _agent, _service = make(trained_bot)
    for sender in ("a", "b", "c"):
        await say(app, sender, "跨行转账手续费多少")
    await say(app, "d", "我的贷款批了没")
    _, response = await app.asgi_client.get("/webhooks/app/welcome")
    assert response.status == 200
    buttons = response.json["messages"][0]["buttons"]
    assert buttons[0]["payload"].startswith('/faq{"topic": ')
    assert "手续费" in buttons[0]["title"]
    assert {"title": "查询办理进度", "payload": "/query_progress"} in buttons


async def test_the_history_shows_pressed_buttons_by_their_title(trained_bot: TrainedBot) -> None:
    app, _agent, _service = make(trained_bot)
    await say(app, "p1", "你好")
    await say(app, "p1", "/query_progress")  # the greeting's 办理进度 chip
    _, response = await app.asgi_client.get("/webhooks/app/history?sender=p1")
    said = [(m["text"], m.get("button", False)) for m in response.json["messages"]]
    assert ("办理进度", True) in said
    assert not any(text.startswith("/") for text, _ in said)
