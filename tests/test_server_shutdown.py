"""Graceful shutdown: a turn in flight when the server stops still completes and is stored."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import httpx
from test_server_project import TrainedBot, new_agent, trained_bot

from bot.core.messages import TurnResult, UserMessage
from bot.server import create_app

__all__ = ["trained_bot"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_stopping_finishes_the_turn_in_flight(trained_bot: TrainedBot) -> None:
    agent = new_agent(trained_bot)
    started = asyncio.Event()
    handle = agent.handle

    async def slow(message: UserMessage) -> TurnResult:
        started.set()
        await asyncio.sleep(0.5)
        return await handle(message)

    agent.handle = slow  # type: ignore[method-assign]
    app = create_app(agent, close_stores=False)
    port = free_port()
    server: Any = await app.create_server(host="127.0.0.1", port=port, return_asyncio_server=True)
    await server.startup()
    await server.before_start()
    await server.after_start()
    async with httpx.AsyncClient(timeout=10) as client:
        request = asyncio.create_task(
            client.post(
                f"http://127.0.0.1:{port}/webhooks/rest/webhook",
                json={"sender": "g1", "message": "你好"},
            )
        )
        await started.wait()
        # what Sanic does on SIGTERM: stop listeners first, then close the server
        await server.before_stop()
        assert app.ctx.runner.in_flight == 0  # before_stop waited for the turn
        server.close()
        await server.wait_closed()
        await server.after_stop()
        response = await request
    assert response.status_code == 200 and response.json()
    tracker = await agent.processor.get_tracker("g1")
    assert [e["text"] for e in tracker.events if e["event"] == "user"] == ["你好"]
