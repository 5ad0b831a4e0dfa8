"""HTTP load on the REST channel: the server in one process, the load generator in another.

Run after ``bot train``: ``.venv/bin/python bench/http_load.py [--turns 10] [--workers 1]``.
Starts ``bot run`` on a free loopback port (tracker store: a fresh SQLite file in a temporary
folder, via ``BOT_DB_URL``; ``--workers`` is passed on), then measures:

- start to first answer: from spawning the server to the first FAQ reply;
- FAQ-turn latency p50/p99 with 50 concurrent conversations (0.5 s between a conversation's
  turns; the 50 customers start spread over that first 0.5 s, as customers arrive, unless
  ``--no-stagger`` starts them in the same millisecond: that burst of 50 first messages
  then dominates p99);
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
TARGETS = {
    "p50_ms": "<= 5",
    "p99_ms": "<= 25",
    "turns_per_s": ">= 1000 (2 cores)",
    "errors": "0",
    "lost": "0",
    "start_to_first_answer_s": "<= 5",
    "rss_mb": "< 500",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def _children(pid: int) -> list[int]:
    """The server's worker processes (``--workers`` above 1) and theirs."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids = [int(k) for k in (task / "children").read_text().split()]
        except OSError:
            continue
        for kid in kids:
            found += [kid, *_children(kid)]
    return found


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# -- the load generator (second process) ------------------------------------------------------


async def _conversations(
    base: str,
    prefix: str,
    conversations: int,
    concurrency: int,
    turns: int,
    texts: tuple[str, ...],
    think: float = 0.0,
    stagger: bool = False,
) -> dict[str, Any]:
    """``concurrency`` simulated customers, each taking conversations from a queue and sending
    their ``turns`` messages one after the other (aiohttp: a client light enough to share the
    machine with the server). With ``think`` and ``stagger`` the customers start spread evenly
    over one think time, as customers arrive, rather than all in the same millisecond."""
    import aiohttp

    latencies: list[float] = []
    errors = 0
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(conversations):
        queue.put_nowait(i)
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(base, connector=connector, timeout=timeout) as client:

        async def worker(k: int) -> None:
            nonlocal errors
            if think and stagger:
                await asyncio.sleep(think * k / concurrency)
            while not queue.empty():
                i = queue.get_nowait()
                for t in range(turns):
                    body = {"sender": f"{prefix}-{i}", "message": texts[t % len(texts)]}
                    t0 = time.perf_counter()
                    try:
                        async with client.post("/webhooks/rest/webhook", json=body) as r:
                            ok = r.status == 200 and bool(await r.json())
                    except (aiohttp.ClientError, TimeoutError):
                        ok = False
                    latencies.append((time.perf_counter() - t0) * 1000)
                    errors += not ok
                    if think:
                        await asyncio.sleep(think)  # the customer reads and types

        started = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(concurrency)))
        seconds = time.perf_counter() - started
    return {
        "latencies": latencies,
        "errors": errors,
        "seconds": seconds,
        "sent": conversations * turns,
    }


async def _lost(base: str, senders: list[str], turns: int) -> int:
    import aiohttp

    lost = 0
    sem = asyncio.Semaphore(20)
    async with aiohttp.ClientSession(base, headers={"Authorization": f"Bearer {TOKEN}"}) as client:

        async def check(sender: str) -> None:
            nonlocal lost
            async with sem, client.get(f"/conversations/{sender}/tracker") as r:
                events = (await r.json())["events"]
            lost += max(0, turns - sum(e["event"] == "user" for e in events))

        await asyncio.gather(*(check(s) for s in senders))
    return lost


def _event_loop() -> Any:
    """uvloop when installed (a sanic dependency): it leaves more of the shared CPUs to the
    server than asyncio's own loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop
    return uvloop.new_event_loop


def generate(args: argparse.Namespace) -> None:
    base = args.base
    out: dict[str, Any] = {}
    with asyncio.Runner(loop_factory=_event_loop()) as runner:
        # latency: FAQ turns only, 50 concurrent conversations (warm-up first)
        runner.run(_conversations(base, "warm", 50, 50, 2, (FAQ,)))
        lat = runner.run(
            _conversations(
                base,
                "lat",
                args.latency_conversations,
                50,
                args.turns,
                (FAQ,),
                args.think,
                not args.no_stagger,
            )
        )
        out["p50_ms"] = round(percentile(lat["latencies"], 50), 2)
        out["p99_ms"] = round(percentile(lat["latencies"], 99), 2)
        thr = runner.run(
            _conversations(base, "thr", args.throughput_conversations, 200, args.turns, TEXTS)
        )
        out["turns_per_s"] = round(thr["sent"] / thr["seconds"])
        out["errors"] = lat["errors"] + thr["errors"]
        senders = [f"lat-{i}" for i in range(args.latency_conversations)] + [
            f"thr-{i}" for i in range(args.throughput_conversations)
        ]
        out["lost"] = runner.run(_lost(base, senders, args.turns))
    out["sent"] = lat["sent"] + thr["sent"]
    print(json.dumps(out))


# -- the driver ---------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--project", default=str(ROOT))
    parser.add_argument("--turns", type=int, default=10, help="turns per conversation")
    parser.add_argument("--latency-conversations", type=int, default=100)
    parser.add_argument(
        "--think",
        type=float,
        default=0.5,
        help="seconds between a conversation's turns in the latency phase "
        "(0: back to back, which measures queueing at saturation)",
    )
    parser.add_argument(
        "--no-stagger",
        action="store_true",
        help="latency phase: start the 50 customers at the same moment instead "
        "of spread over one think time (measures that burst)",
    )
    parser.add_argument("--throughput-conversations", type=int, default=600)
    parser.add_argument("--workers", type=int, default=1, help="server worker processes")
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
        env = {
            **os.environ,
            "BOT_OPERATOR_TOKEN": TOKEN,
            "BOT_DB_URL": f"sqlite:///{tmp}/bench.db",
            "BOT_PROJECT": args.project,
        }
        spawned = time.perf_counter()
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bot",
                "run",
                "--project",
                args.project,
                "--port",
                str(port),
                "--workers",
                str(args.workers),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            cwd=args.project,
            # A log file, not a pipe: an unread pipe fills up and blocks the server.
            stderr=open(Path(tmp) / "server.log", "wb"),  # noqa: SIM115
        )
        try:
            first = None
            while first is None and time.perf_counter() - spawned < 60:
                try:
                    r = httpx.post(
                        f"{base}/webhooks/rest/webhook",
                        json={"sender": "first", "message": FAQ},
                        timeout=30,
                    )
                    if r.status_code == 200 and r.json():
                        first = time.perf_counter() - spawned
                except httpx.HTTPError:
                    time.sleep(0.05)
            if first is None:
                print("server did not answer within 60 s", file=sys.stderr)
                return 1
            load = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--generate",
                    "--base",
                    base,
                    "--turns",
                    str(args.turns),
                    "--think",
                    str(args.think),
                    *(["--no-stagger"] if args.no_stagger else []),
                    "--latency-conversations",
                    str(args.latency_conversations),
                    "--throughput-conversations",
                    str(args.throughput_conversations),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            result = json.loads(load.stdout)
            result["start_to_first_answer_s"] = round(first, 2)
            # the largest process: the one worker, or with --workers the largest of them
            result["rss_mb"] = round(
                max(rss_mb(pid) for pid in [server.pid, *_children(server.pid)]), 1
            )
        finally:
            server.terminate()
            server.wait(30)
    workers = f"{args.workers} worker{'s' if args.workers > 1 else ''}"
    print(f"REST channel, loopback, {workers}, SQLite tracker store, {os.cpu_count()} CPUs")
    print(f"{'figure':<26}{'measured':>12}   target")
    for key in (
        "p50_ms",
        "p99_ms",
        "turns_per_s",
        "errors",
        "lost",
        "start_to_first_answer_s",
        "rss_mb",
    ):
        print(f"{key:<26}{result[key]:>12}   {TARGETS[key]}")
    start = "starting at once" if args.no_stagger else "starts spread over one think time"
    print(
        f"({result['sent']} turns sent; p50/p99: FAQ turns of 50 concurrent conversations, "
        f"{args.think} s between a conversation's turns, {start}; turns/s: greeting+FAQ, "
        "200 conversations back to back)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
