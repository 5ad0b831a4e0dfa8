"""Choices that fit the customer's products, end to end: the shipped project trained once
(``trained_bot``), a verified customer's message through the engine and the action server,
against the project's sandbox bank."""

from __future__ import annotations

from test_handoff_api import make
from test_server_project import TrainedBot, trained_bot

from bot.core.messages import UserMessage

__all__ = ["trained_bot"]


async def test_a_lost_credit_card_end_to_end(trained_bot: TrainedBot) -> None:
    """Through the engine on the shipped project, as a verified customer (C1002: debit only)."""
    app, agent, _service = make(trained_bot)
    assert app is not None
    result = await agent.processor.handle(
        UserMessage("信用卡丢了", "fit-1", "app", customer_id="C1002")
    )
    said = " ".join(str(m.get("text") or "") for m in result.messages)
    assert "您在本行名下没有信用卡" in said, said
    titles = [b["title"] for m in result.messages for b in m.get("buttons") or []]
    assert "储蓄卡 尾号8888" in titles and "转人工" in titles
