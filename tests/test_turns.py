"""TurnRunner: a retried ``metadata.message_id`` runs one turn, within a worker and, through
Redis, across workers (two runners over two agents sharing one tracker store); the shared
rate limit; Redis down falls back to per-worker behaviour.

Redis tests use ``$BOT_TEST_REDIS_URL`` (default redis://127.0.0.1:6379/0) with a fresh key
prefix per test, delete their keys afterwards, and skip with the reason when Redis is absent."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from backends import REDIS_URL, redis_problem

from bot.agent import Agent
from bot.core.messages import TurnResult, UserMessage
from bot.core.processor import MessageProcessor
from bot.core.tracker_store import InMemoryTrackerStore, TrackerStore
from bot.redis import redis_client
from bot.server.errors import ApiError
from bot.server.metrics import BotMetrics
from bot.server.settings import RateLimit, ServerSettings
from bot.server.turns import CLAIMED, TurnRunner

DOWN_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1

DOMAIN = """
version: "3.1"
intents: [greet]
responses:
  utter_greet: [{text: 您好}]
"""
RULES = """
version: "3.1"
rules:
- rule: greet
  steps:
  - intent: greet
  - action: utter_greet
"""


class Worker:
    """An agent whose turns are counted, can be held at a gate or made to fail, and whose
    replies name the worker (so a reply shows which worker ran the turn)."""

    def __init__(self, name: str, processor: MessageProcessor) -> None:
        self.name = name
        self.agent = Agent(model=None, processor=processor)  # type: ignore[arg-type]
        self.turns = 0
        self.started = asyncio.Event()
        self.gate: asyncio.Event | None = None
        self.fail = 0  # the next n turns raise
        self.agent.handle = self.handle  # type: ignore[method-assign]

    async def handle(self, message: UserMessage) -> TurnResult:
        self.turns += 1
        self.started.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            self.fail -= 1
            raise RuntimeError(f"{self.name} crashed")
        result = await self.agent.processor.handle(message)
        result.messages = [{**m, "text": f"{m['text']} ({self.name})"} for m in result.messages]
        return result


@pytest.fixture
def workers(dialogue: Any) -> Callable[[int], tuple[TrackerStore, list[Worker]]]:
    """``n`` workers: their own processors (caches, locks) over one tracker store."""

    def build(n: int) -> tuple[TrackerStore, list[Worker]]:
        domain, policies = dialogue(DOMAIN, RULES, [("RulePolicy", {})])
        store = InMemoryTrackerStore()
        return store, [
            Worker(f"w{i}", MessageProcessor(domain, policies, tracker_store=store))
            for i in range(n)
        ]

    return build


@pytest.fixture
async def prefix() -> AsyncIterator[str]:
    problem = redis_problem()
    if problem:
        pytest.skip(problem)
    prefix = f"bankbot-test-{uuid.uuid4().hex[:10]}:"
    yield prefix
    client = redis_client(REDIS_URL)
    keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
async def runners() -> AsyncIterator[list[TurnRunner]]:
    made: list[TurnRunner] = []
    yield made
    for runner in made:
        await runner.close()


def runner_for(
    made: list[TurnRunner],
    worker: Worker,
    url: str,
    prefix: str = "",
    limit: RateLimit | None = None,
) -> TurnRunner:
    settings = ServerSettings(rate_limit=limit or RateLimit())
    runner = TurnRunner(
        worker.agent, settings, BotMetrics(), redis_url=url, redis_prefix=prefix or "unused:"
    )
    made.append(runner)
    return runner


def greet(message_id: str | None, sender: str = "c1") -> UserMessage:
    metadata = {"message_id": message_id} if message_id is not None else {}
    return UserMessage("/greet", sender, "rest", metadata)


async def user_events(store: TrackerStore, sender: str = "c1") -> int:
    return sum(e["event"] == "user" for e in await store.events(sender))


# -- one worker (no Redis) -------------------------------------------------------------------


async def test_a_retry_in_one_worker_gets_the_same_replies(
    workers: Any, runners: list[TurnRunner]
) -> None:
    store, [w] = workers(1)
    runner = runner_for(runners, w, "")
    assert runner.redis is None and runner.shared_replies is None
    first = await runner.run(greet("m1"))
    assert first[0]["text"] == "您好 (w0)"
    assert await runner.run(greet("m1")) == first
    assert w.turns == 1 and await user_events(store) == 1
    await runner.run(greet("m2"))
    await runner.run(greet(None))  # without a message_id every message is a turn
    assert w.turns == 3 and await user_events(store) == 3


async def test_in_one_worker_a_concurrent_retry_waits_and_a_failure_is_retried(
    workers: Any, runners: list[TurnRunner]
) -> None:
    store, [w] = workers(1)
    runner = runner_for(runners, w, "")
    w.gate = asyncio.Event()
    first = asyncio.create_task(runner.run(greet("m1")))
    await w.started.wait()
    retry = asyncio.create_task(runner.run(greet("m1")))
    await asyncio.sleep(0.02)
    assert not retry.done()
    w.gate.set()
    assert await first == await retry and w.turns == 1
    w.fail = 1
    with pytest.raises(RuntimeError):
        await runner.run(greet("m2"))
    replies = await runner.run(greet("m2"))
    assert replies[0]["text"] == "您好 (w0)" and w.turns == 3
    assert await user_events(store) == 2


# -- two workers sharing Redis ---------------------------------------------------------------


async def test_the_same_message_id_on_two_workers_runs_one_turn(
    workers: Any, runners: list[TurnRunner], prefix: str
) -> None:
    store, [a, b] = workers(2)
    first_worker = runner_for(runners, a, REDIS_URL, prefix)
    second_worker = runner_for(runners, b, REDIS_URL, prefix)
    first = await first_worker.run(greet("m1"))
    retry = await second_worker.run(greet("m1"))
    assert first == retry and first[0]["text"] == "您好 (w0)"
    assert (a.turns, b.turns) == (1, 0)
    assert await user_events(store) == 1
    # what Redis holds: the replies as JSON, for a limited time
    client = first_worker.redis
    assert client is not None
    key = f"{prefix}message:2:c1:m1"
    assert json.loads(await client.get(key)) == first
    assert 0 < await client.pttl(key) <= 600_000
    # another message_id, or another conversation with the same id, is a new turn
    await second_worker.run(greet("m2"))
    await second_worker.run(greet("m1", sender="c2"))
    assert (a.turns, b.turns) == (1, 2)


async def test_a_retry_on_another_worker_waits_for_the_first_attempt(
    workers: Any, runners: list[TurnRunner], prefix: str
) -> None:
    store, [a, b] = workers(2)
    first_worker = runner_for(runners, a, REDIS_URL, prefix)
    second_worker = runner_for(runners, b, REDIS_URL, prefix)
    a.gate = asyncio.Event()
    first = asyncio.create_task(first_worker.run(greet("m1")))
    await a.started.wait()
    retries = [asyncio.create_task(second_worker.run(greet("m1"))) for _ in range(2)]
    await asyncio.sleep(0.1)  # the retries poll the claim meanwhile
    assert not any(task.done() for task in retries)
    a.gate.set()
    replies = await first
    assert [await task for task in retries] == [replies, replies]
    assert (a.turns, b.turns) == (1, 0)
    assert await user_events(store) == 1


async def test_a_failed_first_attempt_is_run_again_by_the_retry(
    workers: Any, runners: list[TurnRunner], prefix: str
) -> None:
    store, [a, b] = workers(2)
    first_worker = runner_for(runners, a, REDIS_URL, prefix)
    second_worker = runner_for(runners, b, REDIS_URL, prefix)
    a.fail = 1
    with pytest.raises(RuntimeError):
        await first_worker.run(greet("m1"))
    assert first_worker.redis is not None
    assert not await first_worker.redis.exists(f"{prefix}message:2:c1:m1")  # claim dropped
    replies = await second_worker.run(greet("m1"))
    assert replies[0]["text"] == "您好 (w1)"
    assert await first_worker.run(greet("m1")) == replies  # and now it is remembered
    assert (a.turns, b.turns) == (1, 1)
    assert await user_events(store) == 1


async def test_a_retry_waiting_on_a_failing_first_attempt_takes_over(
    workers: Any, runners: list[TurnRunner], prefix: str
) -> None:
    store, [a, b] = workers(2)
    first_worker = runner_for(runners, a, REDIS_URL, prefix)
    second_worker = runner_for(runners, b, REDIS_URL, prefix)
    a.gate, a.fail = asyncio.Event(), 1
    first = asyncio.create_task(first_worker.run(greet("m1")))
    await a.started.wait()
    retry = asyncio.create_task(second_worker.run(greet("m1")))
    await asyncio.sleep(0.05)
    assert not retry.done() and b.turns == 0
    a.gate.set()
    with pytest.raises(RuntimeError):
        await first
    assert (await retry)[0]["text"] == "您好 (w1)"
    assert (a.turns, b.turns) == (1, 1)
    assert await user_events(store) == 1


async def test_a_claim_left_by_a_crashed_worker_expires(
    workers: Any, runners: list[TurnRunner], prefix: str
) -> None:
    store, [b] = workers(1)
    runner = runner_for(runners, b, REDIS_URL, prefix)
    assert runner.redis is not None
    await runner.redis.set(f"{prefix}message:2:c1:m1", f"{CLAIMED}dead-worker", px=150)
    replies = await runner.run(greet("m1"))  # waits for the claim to expire, then runs it
    assert replies[0]["text"] == "您好 (w0)" and b.turns == 1
    assert await user_events(store) == 1


async def test_a_retry_gives_up_with_503_after_the_wait(
    workers: Any, runners: list[TurnRunner], prefix: str
) -> None:
    _store, [a, b] = workers(2)
    first_worker = runner_for(runners, a, REDIS_URL, prefix)
    second_worker = runner_for(runners, b, REDIS_URL, prefix)
    assert second_worker.shared_replies is not None
    second_worker.shared_replies.wait = 0.1
    a.gate = asyncio.Event()
    first = asyncio.create_task(first_worker.run(greet("m1")))
    await a.started.wait()
    with pytest.raises(ApiError) as refused:
        await second_worker.run(greet("m1"))
    assert refused.value.status == 503 and refused.value.headers == {"Retry-After": "1"}
    assert b.turns == 0
    a.gate.set()
    assert await second_worker.run(greet("m1")) == await first  # the next retry gets them


async def test_the_rate_limit_is_shared_by_the_workers(
    workers: Any, runners: list[TurnRunner], prefix: str
) -> None:
    store, [a, b] = workers(2)
    limit = RateLimit(per_minute=6, burst=3)  # a token every 10 s
    first_worker = runner_for(runners, a, REDIS_URL, prefix, limit)
    second_worker = runner_for(runners, b, REDIS_URL, prefix, limit)
    for runner in (first_worker, second_worker, first_worker):
        await runner.run(greet(None))
    with pytest.raises(ApiError) as refused:
        await second_worker.run(greet("m9"))
    assert refused.value.status == 429 and int(refused.value.headers["Retry-After"]) > 0
    assert await user_events(store) == 3
    # the refused message was not remembered: its retry is refused again, not answered
    with pytest.raises(ApiError):
        await first_worker.run(greet("m9"))


async def test_redis_down_keeps_the_memory_and_limit_per_worker(
    workers: Any, runners: list[TurnRunner]
) -> None:
    store, [a, b] = workers(2)
    limit = RateLimit(per_minute=6, burst=3)
    first_worker = runner_for(runners, a, DOWN_URL, limit=limit)
    second_worker = runner_for(runners, b, DOWN_URL, limit=limit)
    first = await first_worker.run(greet("m1"))
    assert await first_worker.run(greet("m1")) == first  # remembered by this worker
    # the other worker does not remember it, but finds the stored turn: not run twice
    replayed = await second_worker.run(greet("m1"))
    assert [m["text"] for m in replayed] == ["您好"] and second_worker.replays == 1
    assert (a.turns, b.turns) == (1, 0)
    await first_worker.run(greet(None))
    await first_worker.run(greet(None))
    with pytest.raises(ApiError) as refused:  # the worker's own bucket still limits
        await first_worker.run(greet(None))
    assert refused.value.status == 429
    assert await user_events(store) == 3
    assert first_worker.shared_limiter is not None
    assert first_worker.shared_limiter.fallback.failures >= 1
