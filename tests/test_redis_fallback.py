"""Degrade, don't fail: Redis down (closed port, or connections cut by a proxy) leaves the
conversation locks, the handoff bus, the rate limit and the ``message_id`` memory working per
process, logged once per outage; ``message_id`` claims of a dead worker expire within seconds
and the retry that takes one over answers from the tracker store instead of running the turn
again; a database that does not answer is a 503 with ``Retry-After``, logged once.

Tests that need Redis use ``$BOT_TEST_REDIS_URL`` and skip with the reason when it is absent.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from backends import REDIS_URL, redis_problem
from test_server_project import TrainedBot, new_agent, trained_bot
from test_server_run import free_port
from test_turns import CLAIMED, greet, prefix, runner_for, runners, user_events, workers

from bench.soak import TcpProxy
from bot.core.lock_store import RedisLockStore
from bot.core.tracker_store import InMemoryTrackerStore
from bot.handoff.bus import RedisBus
from bot.redis import RedisOutage
from bot.server import create_app
from bot.server.turns import TurnRunner, stored_replies

__all__ = ["prefix", "runners", "trained_bot", "workers"]
DOWN_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1


def errors_of(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.ERROR and text in r.getMessage()
    ]


# -- the outage bookkeeping --------------------


def test_an_outage_is_logged_once_and_its_end_once(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    outage = RedisOutage("locks are per process", pause=2.0, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="bot.redis"):
        for _ in range(50):
            outage.failed(ConnectionError("refused"))
        assert not outage.usable and outage.down
        now[0] += 2.5
        assert outage.usable  # the pause is over: the next call tries Redis again
        outage.failed(ConnectionError("refused"))
        outage.answered()
        outage.answered()
        outage.failed(ConnectionError("refused again"))  # a new outage: logged again
    lines = [r.getMessage() for r in caplog.records]
    assert len([m for m in lines if "unavailable" in m]) == 2, lines
    assert len([m for m in lines if "answers again after" in m]) == 1, lines
    assert "locks are per process" in lines[0] and outage.outages == 2


# -- locks --------------------


async def test_locks_fall_back_to_the_process_in_order(caplog: pytest.LogCaptureFixture) -> None:
    store = RedisLockStore(DOWN_URL)
    order: list[int] = []

    async def turn(n: int) -> None:
        async with store.lock("c1", wait_timeout=5):
            order.append(n)
            await asyncio.sleep(0.01)
            order.append(n)

    with caplog.at_level(logging.ERROR):
        await asyncio.gather(*(turn(n) for n in range(6)))
        await asyncio.gather(*(turn(n) for n in range(6, 9)))
    assert order == [n for n in range(9) for _ in (0, 1)]  # one at a time, in arrival order
    assert len(errors_of(caplog, "conversation locks are per process")) == 1
    assert await store.queue_length("c1") == 0
    await store.close()


async def test_locks_go_back_to_redis_when_it_answers_again() -> None:
    problem = redis_problem()
    if problem:
        pytest.skip(problem)
    host, port = REDIS_URL.split("//")[1].split("/")[0].split(":")
    with TcpProxy(host, int(port)) as proxy:
        store = RedisLockStore(f"redis://127.0.0.1:{proxy.port}/0", key_prefix="fallback-test:")
        store.outage.pause = 0.2
        async with store.lock("c1"):
            assert await store.queue_length("c1") == 1  # the ticket is in Redis
        proxy.cut()
        async with store.lock("c1"):  # served by the process
            assert store.outage.down and len(store.local) == 1
        proxy.restore()
        await asyncio.sleep(0.3)
        async with store.lock("c1"):
            assert not store.outage.down and len(store.local) == 0
            assert await store.queue_length("c1") == 1
        await store.close()


# -- the handoff bus --------------------


async def test_the_bus_starts_without_redis_and_delivers_locally(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = RedisBus(DOWN_URL)
    with caplog.at_level(logging.ERROR):
        await bus.start()  # no exception: the server starts
        async with bus.subscribe(["queue"]) as queue:
            for n in range(20):
                await bus.publish("queue", "queue", {"n": n})
            assert [queue.get_nowait()[1]["n"] for _ in range(20)] == list(range(20))
    await bus.close()
    assert len(errors_of(caplog, "live updates reach this process")) == 1


# -- message_id claims ----------------------------------------------------------------------------


async def test_a_dead_workers_stored_turn_is_replayed_not_run_again(
    workers: Any, runners: list[TurnRunner], prefix: str
) -> None:
    """Worker A stored the turn and died before it answered or kept the replies in Redis:
    its claim runs out within seconds and B answers from the tracker store."""
    store, [a, b] = workers(2)
    first_worker = runner_for(runners, a, REDIS_URL, prefix)
    second_worker = runner_for(runners, b, REDIS_URL, prefix)
    await first_worker.run(greet("m1"))
    assert first_worker.redis is not None
    key = f"{prefix}message:2:c1:m1"
    await first_worker.redis.set(key, f"{CLAIMED}dead-worker", px=300)  # as if mid-turn
    replies = await second_worker.run(greet("m1"))
    assert [m["text"] for m in replies] == ["您好"]  # the stored reply, not w1's
    assert b.turns == 0 and await user_events(store) == 1
    assert second_worker.shared_replies is not None
    assert second_worker.shared_replies.takeovers == 1 and second_worker.replays == 1
    assert await second_worker.run(greet("m1")) == replies  # remembered from now on


async def test_a_dead_workers_unstored_turn_runs_once(
    workers: Any, runners: list[TurnRunner], prefix: str
) -> None:
    store, [b] = workers(1)
    runner = runner_for(runners, b, REDIS_URL, prefix)
    assert runner.redis is not None
    key = f"{prefix}message:2:c1:m1"
    await runner.redis.set(key, f"{CLAIMED}dead-worker", px=300)
    await runner.redis.set(f"{key}:tried", "1", px=60_000)
    replies = await runner.run(greet("m1"))
    assert replies[0]["text"] == "您好 (w0)" and b.turns == 1
    assert await user_events(store) == 1 and runner.replays == 0


async def test_a_long_turn_keeps_its_claim_alive(
    workers: Any, runners: list[TurnRunner], prefix: str
) -> None:
    """The heartbeat: a turn running for several claim lifetimes is not taken over."""
    store, [a, b] = workers(2)
    first_worker = runner_for(runners, a, REDIS_URL, prefix)
    second_worker = runner_for(runners, b, REDIS_URL, prefix)
    for runner in (first_worker, second_worker):
        assert runner.shared_replies is not None
        runner.shared_replies.claim_ms = 300
    a.gate = asyncio.Event()
    first = asyncio.create_task(first_worker.run(greet("m1")))
    await a.started.wait()
    retry = asyncio.create_task(second_worker.run(greet("m1")))
    await asyncio.sleep(1.2)  # four claim lifetimes
    assert not retry.done() and b.turns == 0
    a.gate.set()
    assert await retry == await first
    assert (a.turns, b.turns) == (1, 0) and await user_events(store) == 1


async def test_a_client_that_hangs_up_does_not_cancel_its_turn(
    workers: Any, runners: list[TurnRunner]
) -> None:
    store, [w] = workers(1)
    runner = runner_for(runners, w, "")
    w.gate = asyncio.Event()
    request = asyncio.create_task(runner.run(greet("m1")))
    await w.started.wait()
    request.cancel()  # the client's timeout: Sanic cancels the request's task
    with pytest.raises(asyncio.CancelledError):
        await request
    w.gate.set()
    replies = await runner.run(greet("m1"))  # the retry gets the turn that went on
    assert replies[0]["text"] == "您好 (w0)" and w.turns == 1
    assert await user_events(store) == 1


def test_stored_replies_are_the_bot_messages_after_the_message() -> None:
    events = [
        {"event": "user", "text": "a", "metadata": {"message_id": "m1"}},
        {"event": "bot", "text": "one", "data": {}},
        {"event": "action", "name": "action_listen"},
        {"event": "user", "text": "b", "metadata": {"message_id": "m2"}},
        {"event": "bot", "text": "two", "data": {"buttons": [{"title": "x", "payload": "/x"}]}},
    ]
    assert stored_replies(events, "c", "m1") == [{"recipient_id": "c", "text": "one"}]
    assert stored_replies(events, "c", "m2") == [
        {"recipient_id": "c", "text": "two", "buttons": [{"title": "x", "payload": "/x"}]}
    ]
    assert stored_replies(events, "c", "m3") is None


# -- the database --------------------


class DownStore(InMemoryTrackerStore):
    """A store whose database went away."""

    down = True

    async def events(self, sender_id: str, after: int = 0) -> list[Any]:
        if self.down:
            import sqlalchemy as sa

            raise sa.exc.OperationalError(
                "SELECT", {}, ConnectionRefusedError("connection refused")
            )
        return await super().events(sender_id, after)


def test_a_database_outage_is_a_503_logged_once(
    trained_bot: TrainedBot, caplog: pytest.LogCaptureFixture
) -> None:
    store = DownStore()
    app = create_app(new_agent(trained_bot, store))
    with caplog.at_level(logging.ERROR):
        for n in range(5):
            _, response = app.test_client.post(
                "/webhooks/rest/webhook", json={"sender": "d1", "message": f"你好{n}"}
            )
            assert response.status == 503
            assert response.headers["Retry-After"] == "2"
            assert "conversation store is unavailable" in response.json["error"]
        store.down = False
        _, response = app.test_client.post(
            "/webhooks/rest/webhook", json={"sender": "d1", "message": "你好"}
        )
    assert response.status == 200  # back by itself, the conversation intact
    assert len(errors_of(caplog, "database unavailable")) == 1
    assert not [r for r in caplog.records if r.exc_info]  # no tracebacks


# -- the whole server --------------------


def test_the_server_starts_and_serves_with_redis_at_a_closed_port(
    trained_bot: TrainedBot, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "BOT_DB_URL": f"sqlite:///{tmp_path}/t.db",
        "BOT_REDIS_URL": DOWN_URL,
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log_path = tmp_path / "server.log"
    root = str(trained_bot.root)
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "bot", "run", "--port", str(port), "-v", "--project", root],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=trained_bot.root,
            start_new_session=True,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, log_path.read_text()
            try:
                if httpx.get(f"{base}/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.2)
        with httpx.Client(timeout=30) as client:
            for n in range(10):
                body = {"sender": "r1", "message": "你好", "metadata": {"message_id": f"m{n}"}}
                reply = client.post(f"{base}/webhooks/rest/webhook", json=body)
                assert reply.status_code == 200, reply.text
                again = client.post(f"{base}/webhooks/rest/webhook", json=body)
                assert again.json() == reply.json()  # remembered by the process
    finally:
        server.terminate()
        server.wait(30)
    text = log_path.read_text()
    lines = [line for line in text.splitlines() if "Redis unavailable" in line]
    # one line per use (locks, limits and message_ids, the bus), not one per turn
    assert 1 <= len(lines) <= 3, text
    assert "Traceback" not in text, text
    assert server.returncode == 0
