"""End-to-end engine turn latency with a custom action (balance, FAQ), in-process and
through rasa_sdk's action server (target: in-process p50 ≤ 3 ms).

Run from the project root after ``bot train``: ``.venv/bin/python bench/turn_latency.py``.
The remote run starts ``bot run actions`` on a free local port and stops it afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.agent import Agent  # noqa: E402
from bot.core.actions.custom import RemoteExecutor  # noqa: E402
from bot.core.processor import UserMessage  # noqa: E402
from bot.core.tracker_store import InMemoryTrackerStore  # noqa: E402
from bot.project import Project  # noqa: E402

TEXTS = {"balance": "查下尾号1234的余额", "faq": "开户要带什么材料"}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def measure(agent: Agent, repeats: int) -> dict[str, dict[str, float]]:
    out = {}

    async def run() -> None:
        for kind, text in TEXTS.items():
            latencies = []
            for i in range(repeats + 20):
                t0 = time.perf_counter()
                messages = await agent.processor.handle_message(
                    UserMessage(text, f"bench-{kind}-{i}", "rest", {}, "C1001")
                )
                if i >= 20:  # warm-up excluded
                    latencies.append((time.perf_counter() - t0) * 1000)
                assert messages, "no reply"
            out[kind] = {
                "p50_ms": round(percentile(latencies, 50), 3),
                "p99_ms": round(percentile(latencies, 99), 3),
            }

    asyncio.run(run())
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=300)
    parser.add_argument("--no-remote", action="store_true")
    args = parser.parse_args()
    project = Project(ROOT)
    figures = {
        "in_process": measure(
            Agent.load(project, tracker_store=InMemoryTrackerStore()), args.repeats
        )
    }
    if not args.no_remote:
        port = free_port()
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bot",
                "run",
                "actions",
                "--port",
                str(port),
                "--project",
                str(ROOT),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            for _ in range(100):
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
                    break
                except OSError:
                    time.sleep(0.2)
            base = Agent.load(project, tracker_store=InMemoryTrackerStore())
            remote = Agent.load(
                project,
                tracker_store=InMemoryTrackerStore(),
                executor=RemoteExecutor(
                    f"http://127.0.0.1:{port}/webhook", 2.0, set(base.processor.domain.actions)
                ),
            )
            figures["remote_action_server"] = measure(remote, args.repeats)
        finally:
            server.terminate()
            server.wait(timeout=10)
    for mode, kinds in figures.items():
        for kind, values in kinds.items():
            print(
                f"{mode:22} {kind:8} p50 {values['p50_ms']:8.3f} ms   "
                f"p99 {values['p99_ms']:8.3f} ms"
            )
    print("target: in-process p50 ≤ 3 ms")
    (ROOT / "results").mkdir(exist_ok=True)
    (ROOT / "results" / "bench_turn.json").write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
