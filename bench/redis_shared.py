"""What sharing the rate limiter and the ``metadata.message_id`` memory through Redis costs a turn.

    .venv/bin/python bench/redis_shared.py [--calls 2000] [--redis-url redis://127.0.0.1:6379/0]

Sequential calls on one event loop, after 200 warm-up calls, under a throwaway key prefix that
is deleted afterwards. Prints p50/p99 in ms of: the in-process limiter; the Redis limiter (one
EVALSHA); the claim + stored replies of a message (EVALSHA + SET around a no-op turn); and a
whole ``TurnRunner.run`` of a message with a ``message_id`` around an agent that answers at
once, per worker and through Redis, whose difference is the extra latency per turn.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.core.messages import TurnResult, UserMessage
from bot.redis import redis_client
from bot.server.metrics import BotMetrics
from bot.server.ratelimit import RateLimiter, RedisRateLimiter
from bot.server.settings import RateLimit, ServerSettings
from bot.server.turns import SharedReplies, TurnRunner

WARM_UP = 200
REPLIES = [{"recipient_id": "bench", "text": "开户需要携带本人有效身份证件，到任一网点办理。"}]
LIMIT = RateLimit(per_minute=1e9, burst=1_000_000)  # never refuses: we time the work only


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def timed(calls: int, call: Callable[[int], Awaitable[Any]]) -> tuple[float, float]:
    samples = []
    for i in range(WARM_UP + calls):
        started = time.perf_counter()
        await call(i)
        if i >= WARM_UP:
            samples.append((time.perf_counter() - started) * 1000)
    return percentile(samples, 50), percentile(samples, 99)


class InstantAgent:
    """Answers every message at once: the runner's own overhead is all that is timed."""

    processor = None

    async def handle(self, message: UserMessage) -> TurnResult:
        return TurnResult(REPLIES, [], {"intent": {"name": "faq"}}, [])


async def main(calls: int, url: str) -> None:
    prefix = f"bankbot-bench-{uuid.uuid4().hex[:8]}:"
    client = redis_client(url)
    await client.ping()
    runners: list[TurnRunner] = []
    try:
        local = RateLimiter(LIMIT)

        async def local_limit(i: int) -> None:
            local.acquire(f"c{i % 100}")

        shared = RedisRateLimiter(LIMIT, client, prefix=prefix)
        replies = SharedReplies(client, prefix=prefix)

        async def noop() -> list[dict[str, Any]]:
            return REPLIES

        figures = {
            "in-process limiter": await timed(calls, local_limit),
            "Redis limiter (EVALSHA)": await timed(calls, lambda i: shared.acquire(f"c{i % 100}")),
            "Redis claim + stored replies": await timed(
                calls, lambda i: replies.run_once(f"c{i % 100}", f"m{i}", noop)
            ),
        }
        settings = ServerSettings(rate_limit=LIMIT)
        for name, redis_url in (("per worker", ""), ("through Redis", url)):
            runner = TurnRunner(
                InstantAgent(),
                settings,
                BotMetrics(),  # type: ignore[arg-type]
                redis_url=redis_url,
                redis_prefix=prefix,
            )
            runners.append(runner)
            figures[f"TurnRunner.run with message_id, {name}"] = await timed(
                calls,
                lambda i, r=runner, n=name: r.run(
                    UserMessage("开户要带什么", f"c{i % 100}", "rest", {"message_id": f"{n}-{i}"})
                ),
            )
        print(f"{calls} sequential calls each, Redis {url}, load average {os.getloadavg()[0]:.1f}")
        for name, (p50, p99) in figures.items():
            print(f"  {name:48s} p50 {p50:6.3f} ms   p99 {p99:6.3f} ms")
        base = figures["TurnRunner.run with message_id, per worker"]
        full = figures["TurnRunner.run with message_id, through Redis"]
        print(
            f"  {'extra per turn (Redis minus per worker)':48s} p50 {full[0] - base[0]:6.3f} ms"
            f"   p99 {full[1] - base[1]:6.3f} ms"
        )
    finally:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        if keys:
            await client.delete(*keys)
        for runner in runners:
            await runner.close()
        await client.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument(
        "--redis-url", default=os.environ.get("BOT_REDIS_URL", "redis://127.0.0.1:6379/0")
    )
    args = parser.parse_args()
    asyncio.run(main(args.calls, args.redis_url))
