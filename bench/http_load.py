"""HTTP load on the REST channel: the server in one process, the load generator in another.

Run after ``bot train``: ``.venv/bin/python bench/http_load.py [--turns 10] [--quick]``.
Starts ``bot run`` on a free loopback port (tracker store: a fresh SQLite file in a temporary
folder, via ``BOT_DB_URL``), then measures:

- start to first answer: from spawning the server to the first FAQ reply;
- FAQ-turn latency p50/p99 with 50 concurrent conversations;
- turns/s with 200 concurrent conversations (greeting and FAQ turns);
- errors (non-200 answers, empty answers) and lost turns: every message sent must be a user
  event of its conversation's tracker afterwards (read through the operator endpoint);
- the worker's resident memory (VmRSS of /proc/PID/status).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FAQ = "开户要带什么材料"
TEXTS = ("你好", FAQ)
TOKEN = "bench-operator-token-0123456789"
TARGETS = {"p50_ms": "<= 5", "p99_ms": "<= 25", "turns_per_s": ">= 1000 (2 cores)",
           "errors": "0", "lost": "0", "start_to_first_answer_s": "<= 5", "rss_mb": "< 500"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# -- the load generator (second process) ------------------------------------------------------

async def _conversations(base: str, prefix: str, conversations: int, concurrency: int,
                         turns: int, texts: tuple[str, ...], think: float = 0.0
                         ) -> dict[str, Any]:
    import httpx

    latencies: list[float] = []
    errors = 0
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(conversations):
        queue.put_nowait(i)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:
        async def worker() -> None:
            nonlocal errors
            while not queue.empty():
                i = queue.get_nowait()
                for t in range(turns):
                    body = {"sender": f"{prefix}-{i}", "message": texts[t % len(texts)]}
                    t0 = time.perf_counter()
                    try:
                        r = await client.post("/webhooks/rest/webhook", json=body)
                        ok = r.status_code == 200 and bool(r.json())
                    except httpx.HTTPError:
                        ok = False
                    latencies.append((time.perf_counter() - t0) * 1000)
                    errors += not ok
                    if think:
                        await asyncio.sleep(think)  # the customer reads and types

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    return {"latencies": latencies, "errors": errors, "seconds": seconds,
            "sent": conversations * turns}


async def _lost(base: str, senders: list[str], turns: int) -> int:
    import httpx

    lost = 0
    sem = asyncio.Semaphore(20)
    async with httpx.AsyncClient(base_url=base, timeout=30,
                                 headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        async def check(sender: str) -> None:
            nonlocal lost
            async with sem:
                r = await client.get(f"/conversations/{sender}/tracker")
                users = sum(e["event"] == "user" for e in r.json()["events"])
                lost += max(0, turns - users)

        await asyncio.gather(*(check(s) for s in senders))
    return lost


def generate(args: argparse.Namespace) -> None:
    base = args.base
    out: dict[str, Any] = {}
    # latency: FAQ turns only, 50 concurrent conversations (warm-up first)
    asyncio.run(_conversations(base, "warm", 50, 50, 2, (FAQ,)))
    lat = asyncio.run(_conversations(base, "lat", args.latency_conversations, 50, args.turns,
                                     (FAQ,), args.think))
    out["p50_ms"] = round(percentile(lat["latencies"], 50), 2)
    out["p99_ms"] = round(percentile(lat["latencies"], 99), 2)
    thr = asyncio.run(_conversations(base, "thr", args.throughput_conversations, 200,
                                     args.turns, TEXTS))
    out["turns_per_s"] = round(thr["sent"] / thr["seconds"])
    out["errors"] = lat["errors"] + thr["errors"]
    senders = [f"lat-{i}" for i in range(args.latency_conversations)] + [
        f"thr-{i}" for i in range(args.throughput_conversations)]
    out["lost"] = asyncio.run(_lost(base, senders, args.turns))
    out["sent"] = lat["sent"] + thr["sent"]
    print(json.dumps(out))


# -- the driver ---------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--project", default=str(ROOT))
    parser.add_argument("--turns", type=int, default=10, help="turns per conversation")
    parser.add_argument("--latency-conversations", type=int, default=100)
    parser.add_argument("--think", type=float, default=0.5,
                        help="seconds between a conversation's turns in the latency phase "
                             "(0: back to back, which measures queueing at saturation)")
    parser.add_argument("--throughput-conversations", type=int, default=600)
    parser.add_argument("--generate", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--base", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        generate(args)
        return 0
    import httpx

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "BOT_OPERATOR_TOKEN": TOKEN,
               "BOT_DB_URL": f"sqlite:///{tmp}/bench.db", "BOT_PROJECT": args.project}
        spawned = time.perf_counter()
        server = subprocess.Popen(
            [sys.executable, "-m", "bot", "run", "--project", args.project, "--port", str(port)],
            env=env, stdout=subprocess.DEVNULL, cwd=args.project,
            # A log file, not a pipe: an unread pipe fills up and blocks the server.
            stderr=open(Path(tmp) / "server.log", "wb"))  # noqa: SIM115
        try:
            first = None
            while first is None and time.perf_counter() - spawned < 60:
                try:
                    r = httpx.post(f"{base}/webhooks/rest/webhook",
                                   json={"sender": "first", "message": FAQ}, timeout=30)
                    if r.status_code == 200 and r.json():
                        first = time.perf_counter() - spawned
                except httpx.HTTPError:
                    time.sleep(0.05)
            if first is None:
                print("server did not answer within 60 s", file=sys.stderr)
                return 1
            load = subprocess.run(
                [sys.executable, __file__, "--generate", "--base", base,
                 "--turns", str(args.turns), "--think", str(args.think),
                 "--latency-conversations", str(args.latency_conversations),
                 "--throughput-conversations", str(args.throughput_conversations)],
                capture_output=True, text=True, check=True)
            result = json.loads(load.stdout)
            result["start_to_first_answer_s"] = round(first, 2)
            result["rss_mb"] = round(rss_mb(server.pid), 1)
        finally:
            server.terminate()
            server.wait(30)
    print(f"REST channel, loopback, 1 worker, SQLite tracker store, {os.cpu_count()} CPUs")
    print(f"{'figure':<26}{'measured':>12}   target")
    for key in ("p50_ms", "p99_ms", "turns_per_s", "errors", "lost",
                "start_to_first_answer_s", "rss_mb"):
        print(f"{key:<26}{result[key]:>12}   {TARGETS[key]}")
    print(f"({result['sent']} turns sent; p50/p99: FAQ turns of 50 concurrent conversations, "
          f"{args.think} s between a conversation's turns; turns/s: greeting+FAQ, 200 "
          "conversations back to back)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
