"""Next-action prediction latency for a 20-turn conversation history (target p50 ≤ 0.5 ms).

Run from the project root after ``bot train``: ``.venv/bin/python bench/policy_latency.py``.
Builds a real tracker by running 20 turns through the processor, then times
``PolicyEnsemble.predict`` (state featurisation of the whole history included).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.agent import Agent  # noqa: E402
from bot.core.processor import UserMessage  # noqa: E402
from bot.core.tracker_store import InMemoryTrackerStore  # noqa: E402
from bot.project import Project  # noqa: E402

TURNS = [
    "/greet",
    "/query_balance",
    "/thank",
    "/faq",
    "/query_progress",
    "/report_loss",
    '/inform{"card_last4": "1234"}',
    "/affirm",
    "/thank",
    "/out_of_scope",
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3000)
    args = parser.parse_args()
    agent = Agent.load(Project(ROOT), tracker_store=InMemoryTrackerStore(), use_executor=True)
    processor = agent.processor

    async def build() -> None:
        for i in range(args.turns):
            await processor.handle(UserMessage(TURNS[i % len(TURNS)], "bench"))

    asyncio.run(build())
    tracker = asyncio.run(processor.get_tracker("bench"))
    ensemble = processor.policies
    for _ in range(100):
        ensemble.predict(tracker, processor.domain)
    latencies = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        ensemble.predict(tracker, processor.domain)
        latencies.append((time.perf_counter() - t0) * 1000)
    figures = {
        "history_turns": args.turns,
        "history_events": len(tracker.events),
        "predict_p50_ms": round(percentile(latencies, 50), 4),
        "predict_p90_ms": round(percentile(latencies, 90), 4),
        "predict_p99_ms": round(percentile(latencies, 99), 4),
        "predict_mean_ms": round(statistics.mean(latencies), 4),
    }
    for key, value in figures.items():
        print(f"{key:22} {value:>10}" + ("   target ≤ 0.5" if key == "predict_p50_ms" else ""))
    (ROOT / "results").mkdir(exist_ok=True)
    (ROOT / "results" / "bench_policy.json").write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
