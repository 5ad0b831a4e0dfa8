"""Engine throughput: N conversations × T turns with C at a time through one processor.

Run after ``bot train``: ``.venv/bin/python bench/engine_throughput.py [--store sqlite]``.
Turns are real customer texts (NLU, policies, actions, stores). Prints turns per second,
per-turn latency percentiles, and checks that no user event was lost or reordered.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.agent import Agent  # noqa: E402
from bot.core.processor import UserMessage  # noqa: E402
from bot.core.tracker_store import InMemoryTrackerStore, SQLTrackerStore, TrackerStore  # noqa: E402
from bot.project import Project  # noqa: E402

TEXTS = [
    "你好",
    "帮我查下余额",
    "我的贷款批了没",
    "转账限额多少",
    "我的卡丢了",
    "尾号1234",
    "确认",
    "谢谢",
    "讲个笑话",
    "再见",
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def run(store: TrackerStore, conversations: int, turns: int, concurrency: int) -> dict:
    agent = Agent.load(Project(ROOT), tracker_store=store)
    processor = agent.processor
    latencies: list[float] = []
    semaphore = asyncio.Semaphore(concurrency)

    async def conversation(i: int) -> None:
        async with semaphore:
            for t in range(turns):
                t0 = time.perf_counter()
                await processor.handle(UserMessage(f"{TEXTS[t % len(TEXTS)]} #{t}", f"c{i}"))
                latencies.append((time.perf_counter() - t0) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(conversation(i) for i in range(conversations)))
    seconds = time.perf_counter() - started
    lost = reordered = 0
    for i in range(conversations):
        texts = [e["text"] for e in await store.events(f"c{i}") if e["event"] == "user"]
        expected = [f"{TEXTS[t % len(TEXTS)]} #{t}" for t in range(turns)]
        lost += len(set(expected) - set(texts))
        reordered += int(texts != expected and not set(expected) - set(texts))
    return {
        "conversations": conversations,
        "turns_each": turns,
        "concurrency": concurrency,
        "seconds": round(seconds, 2),
        "turns_per_second": round(conversations * turns / seconds, 1),
        "turn_p50_ms": round(percentile(latencies, 50), 3),
        "turn_p99_ms": round(percentile(latencies, 99), 3),
        "lost_user_events": lost,
        "reordered_conversations": reordered,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--conversations", type=int, default=1000)
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--store", choices=["memory", "sqlite", "both"], default="both")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        stores: dict[str, TrackerStore] = {}
        if args.store in ("memory", "both"):
            stores["memory"] = InMemoryTrackerStore()
        if args.store in ("sqlite", "both"):
            # the default: statements inline on the event loop (a local file)
            stores["sqlite"] = SQLTrackerStore(f"sqlite:///{tmp}/bench.db")
            stores["sqlite-threads"] = SQLTrackerStore(
                f"sqlite:///{tmp}/threads.db", run_inline=False
            )
        for name, store in stores.items():
            results[name] = asyncio.run(
                run(store, args.conversations, args.turns, args.concurrency)
            )
            asyncio.run(store.close())
            print(f"[{name}] " + "  ".join(f"{k}={v}" for k, v in results[name].items()))
    (ROOT / "results").mkdir(exist_ok=True)
    (ROOT / "results" / "bench_engine.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
