"""The per-conversation token bucket, in process and shared through Redis by several workers.

Redis tests use ``$BOT_TEST_REDIS_URL`` (default redis://127.0.0.1:6379/0) with a fresh key
prefix per test, delete their keys afterwards, and skip with the reason when Redis is absent.
Time is a fake clock shared by the instances (passed to Redis), except in the one test of the
Redis server clock, which sleeps a tenth of a second."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from backends import REDIS_URL, redis_problem

from bot.redis import redis_client
from bot.server.ratelimit import RateLimiter, RedisFallback, RedisRateLimiter
from bot.server.settings import RateLimit

DOWN_URL = "redis://127.0.0.1:1/0"  # nothing listens on port 1


class Clock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def redis() -> AsyncIterator[Any]:
    problem = redis_problem()
    if problem:
        pytest.skip(problem)
    client = redis_client(REDIS_URL)
    yield client
    await client.aclose()


@pytest.fixture
async def prefix(redis: Any) -> AsyncIterator[str]:
    prefix = f"bankbot-test-{uuid.uuid4().hex[:10]}:"
    yield prefix
    keys = [key async for key in redis.scan_iter(match=f"{prefix}*")]
    if keys:
        await redis.delete(*keys)


@pytest.fixture
def make(redis: Any, prefix: str) -> Callable[..., RedisRateLimiter]:
    """Limiters as separate workers would have them: one bucket store, their own clients."""

    def build(limit: RateLimit, clock: Callable[[], float] | None) -> RedisRateLimiter:
        return RedisRateLimiter(limit, redis, prefix=prefix, clock=clock)

    return build


def test_in_process_burst_then_refill() -> None:
    clock = Clock()
    limiter = RateLimiter(RateLimit(per_minute=120, burst=3), clock=clock)
    assert [limiter.acquire("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire("a") == pytest.approx(0.5)
    assert limiter.acquire("b") == 0.0  # buckets are per conversation
    clock.now += 0.5
    assert limiter.acquire("a") == 0.0
    assert limiter.acquire("a") == pytest.approx(0.5)


async def test_two_workers_share_one_bucket(make: Callable[..., RedisRateLimiter]) -> None:
    clock = Clock()
    limit = RateLimit(per_minute=60, burst=4)  # one token a second
    first, second = make(limit, clock), make(limit, clock)
    waits = [await limiter.acquire("c1") for limiter in (first, second, first, second)]
    assert waits == [0.0, 0.0, 0.0, 0.0]  # the burst, in total across both workers
    refused = await first.acquire("c1")
    assert refused == pytest.approx(1.0)
    assert await second.acquire("c1") == pytest.approx(1.0)  # the other worker too
    assert await second.acquire("c2") == 0.0  # another conversation has its own bucket
    clock.now += 0.25
    assert await second.acquire("c1") == pytest.approx(0.75)
    clock.now += 0.75  # one token refilled: one message, on either worker
    assert await second.acquire("c1") == 0.0
    assert await first.acquire("c1") == pytest.approx(1.0)
    clock.now += 60  # refills up to the burst, not beyond
    assert [await first.acquire("c1") for _ in range(5)][-2:] == [0.0, pytest.approx(1.0)]


async def test_redis_gives_the_same_waits_as_the_in_process_bucket(
    make: Callable[..., RedisRateLimiter],
) -> None:
    limit = RateLimit(per_minute=90, burst=3)
    clock = Clock()
    local = RateLimiter(limit, clock=clock)
    shared = make(limit, clock)
    steps = [0.0, 0.0, 0.1, 0.0, 0.3, 0.05, 0.7, 0.0, 0.0, 2.5, 0.0, 0.0, 0.0, 0.0, 0.4]
    expected, got = [], []
    for step in steps:
        clock.now += step
        expected.append(local.acquire("same"))
        got.append(await shared.acquire("same"))
    assert got == pytest.approx(expected, abs=1e-9)
    assert sum(w > 0 for w in got) >= 5  # the sequence did refuse


async def test_the_bucket_expires_once_it_would_be_full_again(
    make: Callable[..., RedisRateLimiter], redis: Any, prefix: str
) -> None:
    limiter = make(RateLimit(per_minute=60, burst=5), Clock())
    await limiter.acquire("idle")
    ttl = await redis.pttl(f"{prefix}rate:idle")
    assert 5_000 < ttl <= 6_000  # the 5 s a bucket takes to refill, plus a second


async def test_disabled_limit_touches_no_redis(
    make: Callable[..., RedisRateLimiter], redis: Any, prefix: str
) -> None:
    limiter = make(RateLimit(per_minute=0, burst=1), Clock())
    assert [await limiter.acquire("x") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert [key async for key in redis.scan_iter(match=f"{prefix}*")] == []


async def test_redis_server_clock(make: Callable[..., RedisRateLimiter]) -> None:
    """Without a clock the script reads Redis TIME (one clock for every worker and host)."""
    limit = RateLimit(per_minute=600, burst=2)  # a token every 0.1 s
    first, second = make(limit, None), make(limit, None)
    assert [await first.acquire("t"), await second.acquire("t")] == [0.0, 0.0]
    wait = await first.acquire("t")
    assert 0.0 < wait <= 0.1
    await asyncio.sleep(wait + 0.02)
    assert await second.acquire("t") == 0.0


async def test_redis_down_falls_back_to_the_worker_and_still_limits(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = Clock()
    limit = RateLimit(per_minute=60, burst=2)
    client = redis_client(DOWN_URL)
    fallback = RedisFallback(pause=5.0, log_every=60.0, clock=clock)
    limiter = RedisRateLimiter(
        limit, client, local=RateLimiter(limit, clock=clock), fallback=fallback, clock=clock
    )
    with caplog.at_level(logging.ERROR, logger="bot.server.ratelimit"):
        assert [await limiter.acquire("d") for _ in range(2)] == [0.0, 0.0]
        assert await limiter.acquire("d") == pytest.approx(1.0)
        assert fallback.failures == 1  # inside the pause Redis is not even asked
        clock.now += 6  # the pause is over: Redis is tried again, fails, not logged again
        assert await limiter.acquire("d") == 0.0  # 6 s refilled the local bucket
        assert fallback.failures == 2
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "per worker" in errors[0].getMessage()
    await client.aclose()


async def test_back_to_redis_after_the_pause(
    make: Callable[..., RedisRateLimiter], redis: Any, prefix: str
) -> None:
    clock = Clock()
    limiter = make(RateLimit(per_minute=60, burst=1), clock)
    limiter.fallback = RedisFallback(pause=5.0, clock=clock)
    limiter.fallback.failed(ConnectionError("a blip"))
    assert await limiter.acquire("r") == 0.0  # the in-process bucket
    assert not await redis.exists(f"{prefix}rate:r")
    clock.now += 5
    assert await limiter.acquire("r") == 0.0  # Redis again: its bucket was still full
    assert await redis.exists(f"{prefix}rate:r")
    assert await limiter.acquire("r") == pytest.approx(1.0)
