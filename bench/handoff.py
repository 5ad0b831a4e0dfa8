"""Human handoff: (a) from the handoff decision to the conversation in the queue, and (b) one
queue assignment with 1,000 conversations waiting and 100 agents.

    .venv/bin/python bench/handoff.py [--conversations 300] [--waiting 1000] [--agents 100]
        [--assignments 300] [--pg URL | --no-pg] [--no-kb] [--json results/bench_handoff.json]

Run from the project root after ``bot train`` (it loads the model in ``models/``).

(a) Each conversation first asks an FAQ question, then "转人工"; the engine's turn (untimed)
pauses the conversation, then the handoff stage (``HandoffService.stage``, run by the processor
in the same turn and lock) is timed: trigger decision,
routing, the context packet (with knowledge-base suggestions unless ``--no-kb``), the insert
into the queue, the audit row, the queue position and the reply. The tracker and the handoff
tables share one SQLite file (as ``bot/handoff/factory.py`` sets them up); the background
auto-assignment it starts is awaited outside the timing (10 agents of 3 chats take the first
30 conversations; the rest keep waiting, so the queue grows as under load). Target: p99 ≤ 50 ms.

(b) ``--waiting`` conversations over the groups of ``handoff.yml`` (random priorities 0-5) and
``--agents`` available agents (one or two groups each, capacity 3-5); then
``Router.assign_one`` (bot/handoff/dispatch.py: what the router runs per assignment: agents,
loads, the head of the queue, the conditional update) is timed until ``--assignments`` are
done or nobody free is left; then the router in batches as ``dispatch`` runs it
(``Router.assign_some(50)``: agents and loads read once per batch; the figure is each
batch's time divided by its assignments); and separately the store-level path
(``next_waiting`` for a free agent's groups, then ``assign``, which checks the agent's
capacity in its transaction); on the tracker store's engine, as in
production. Target: p99 ≤ 5 ms.

Both parts also run on PostgreSQL when it is reachable (``--pg``, default ``$BOT_DB_URL`` if it
is a PostgreSQL URL, else postgres@127.0.0.1:5432/test), in a schema of their own, dropped
afterwards.

Figures are wall-clock on this machine; nothing here asserts them.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402

from bot.agent import Agent  # noqa: E402
from bot.core.processor import UserMessage  # noqa: E402
from bot.core.stages import Turn  # noqa: E402
from bot.core.tracker_store import SQLTrackerStore  # noqa: E402
from bot.handoff import config as handoff_config  # noqa: E402
from bot.handoff.config import HandoffConfig, Hours  # noqa: E402
from bot.handoff.factory import knowledge_search  # noqa: E402
from bot.handoff.records import Handoff, new_id  # noqa: E402
from bot.handoff.service import HandoffService  # noqa: E402
from bot.handoff.store import HandoffStore  # noqa: E402
from bot.project import Project  # noqa: E402

DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
FAQ = "开户要带什么材料"
ASK = "转人工"


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(samples: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in samples]
    return {
        "n": len(ms),
        "p50_ms": round(statistics.median(ms), 3),
        "p99_ms": round(percentile(ms, 0.99), 3),
        "max_ms": round(max(ms), 3),
    }


def always_open(config: HandoffConfig) -> HandoffConfig:
    """The shipped groups, open around the clock: the bench measures the queue path, whatever
    the time of day it runs at."""
    return dataclasses.replace(
        config, groups=tuple(dataclasses.replace(g, hours=Hours()) for g in config.groups)
    )


def pg_problem(url: str) -> str | None:
    try:
        engine = sa.create_engine(url, connect_args={"connect_timeout": 2})
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        return str(exc).splitlines()[0]
    return None


@contextmanager
def databases(args: argparse.Namespace) -> Iterator[list[tuple[str, str]]]:
    """(name, URL) of every database to measure: a fresh SQLite file, and PostgreSQL in a
    throwaway schema (the search path points there, so every table lands in it)."""
    tmp = Path(tempfile.mkdtemp(prefix="bankbot-bench-handoff-"))
    found = [("sqlite file", f"sqlite:///{tmp / 'bot.db'}")]
    schema = f"bench_handoff_{uuid.uuid4().hex[:8]}"
    admin = None
    if args.pg:
        problem = pg_problem(args.pg)
        if problem:
            print(f"PostgreSQL skipped ({args.pg}): {problem}")
        else:
            admin = sa.create_engine(args.pg)
            with admin.begin() as conn:
                conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
            url = sa.make_url(args.pg).update_query_dict({"options": f"-csearch_path={schema}"})
            found.append(("postgresql", url.render_as_string(hide_password=False)))
    try:
        yield found
    finally:
        if admin is not None:
            with admin.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()
        shutil.rmtree(tmp, ignore_errors=True)


# --- (a) decision → queue ---------------------------------------------------------------------


async def decision_to_queue(
    url: str, config: HandoffConfig, args: argparse.Namespace, search: Any, category: Any
) -> dict[str, Any]:
    tracker_store = SQLTrackerStore(url, table="bench_events")
    agent = Agent.load(Project(ROOT), tracker_store=tracker_store, seed=1)
    service = HandoffService(
        config,
        HandoffStore(tracker_store.engine),
        agent.processor,
        search=search,
        categories=category,
    )
    staged: list[float] = []  # seconds of the handoff stage in the latest turn

    async def timed_stage(turn: Turn) -> None:
        started = time.perf_counter()
        await service.stage(turn)
        staged.append(time.perf_counter() - started)

    agent.processor.add_stage(timed_stage)
    group = config.default_group
    for n in range(10):
        service.store.agents.add(f"agent{n}", "bench-password", [group], capacity=3)
        service.store.agents.set_status(f"agent{n}", "available")
    prefix = uuid.uuid4().hex[:6]
    timed: list[float] = []
    with_dispatch: list[float] = []
    warmup = 10
    try:
        for i in range(args.conversations + warmup):
            sender = f"{prefix}-{i}"
            await agent.processor.handle(UserMessage(FAQ, sender, "rest", {}, None))
            message = UserMessage(ASK, sender, "rest", {}, None)
            staged.clear()
            result = await agent.processor.handle(message)
            assert any(e.get("event") == "pause" for e in result.events), "no pause"
            assert result.outcome == "queued", result.outcome
            start = time.perf_counter()
            await service.drain()  # the auto-assignment it started
            drained = time.perf_counter() - start
            replies = result.messages
            assert replies and "队列" in replies[-1]["text"], replies
            if i >= warmup:
                timed.append(staged[-1])
                with_dispatch.append(staged[-1] + drained)
        queued = len(service.store.handoffs.waiting(limit=100_000))
        assigned = sum(service.store.handoffs.loads().values())
        assert queued + assigned == args.conversations + warmup, (queued, assigned)
    finally:
        await service.drain()
        await tracker_store.close()
    return {
        "stage": summary(timed),
        "with_auto_assign": summary(with_dispatch),
        "waiting_at_end": queued,
        "assigned": assigned,
    }


# --- (b) queue assignment ---------------------------------------------------------------------


def fill(store: HandoffStore, config: HandoffConfig, args: argparse.Namespace) -> None:
    rng = random.Random(7)
    groups = config.group_names
    weights = [5, 3, 2, 1, 1][: len(groups)] + [1] * max(0, len(groups) - 5)
    now = time.time()
    with store.engine.begin() as conn:  # one transaction: setup speed is not measured
        from bot.handoff.tables import HANDOFFS

        rows = []
        for i in range(args.waiting):
            group = rng.choices(groups, weights)[0]
            handoff = Handoff(
                new_id(),
                f"bench-{i}",
                "rest",
                None,
                None,
                group,
                rng.randint(0, 5),
                "customer_request",
                None,
                "waiting",
                now - args.waiting + i,
                preview="转人工",
            )
            values = dataclasses.asdict(handoff)
            values["group_name"] = values.pop("group")
            rows.append({**values, "packet": "{}"})
        conn.execute(sa.insert(HANDOFFS), rows)
    for n in range(args.agents):
        mine = rng.sample(groups, rng.choice([1, 1, 2]))
        store.agents.add(f"agent{n:03d}", "bench-password", mine, capacity=rng.randint(3, 5))
        store.agents.set_status(f"agent{n:03d}", "available")


async def assignment(url: str, config: HandoffConfig, args: argparse.Namespace) -> dict[str, Any]:
    """Times the router's step and the store-level step on two identical queues, on the
    tracker store's engine (as in production: WAL and synchronous=NORMAL on SQLite)."""
    out: dict[str, Any] = {}
    for kind in (
        "router (assign_one)",
        "router batch (per assignment)",
        "store (next_waiting + assign)",
    ):
        tracker_store = SQLTrackerStore(url, table="bench_events")
        engine = tracker_store.engine
        with engine.begin() as conn:  # a fresh queue for each kind
            for table in ("handoff_audit", "handoff_tickets", "handoffs", "handoff_agents"):
                conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
        store = HandoffStore(engine)
        fill(store, config, args)
        processor: Any = None  # the router step never touches the processor
        service = HandoffService(config, store, processor)
        samples: list[float] = []
        if kind.startswith("router batch"):
            service.router.assign_some(5)  # warm-up
            while len(samples) < args.assignments:
                start = time.perf_counter()
                batch = service.router.assign_some(50)
                elapsed = time.perf_counter() - start
                if not batch:
                    break
                samples += [elapsed / len(batch)] * len(batch)
            samples = samples[: args.assignments]
        elif kind.startswith("router"):
            for _ in range(5):  # warm-up, counted in the assignments but not in the figures
                service.router.assign_one()
            while len(samples) < args.assignments:
                start = time.perf_counter()
                done = service.router.assign_one()
                elapsed = time.perf_counter() - start
                if done is None:
                    break
                samples.append(elapsed)
        else:
            agents = store.agents.all()
            loads: dict[str, int] = {}
            free = list(agents)
            while free and len(samples) < args.assignments + 5:
                agent = free[0]
                start = time.perf_counter()
                handoff = store.handoffs.next_waiting(agent.groups)
                done = (
                    store.handoffs.assign(handoff.id, agent.username, time.time())
                    if handoff
                    else None
                )
                elapsed = time.perf_counter() - start
                if done is None:
                    free.pop(0)
                    continue
                loads[agent.username] = loads.get(agent.username, 0) + 1
                if loads[agent.username] >= agent.capacity:
                    free.pop(0)
                else:  # round-robin, as least-loaded-first would
                    free.append(free.pop(0))
                samples.append(elapsed)
            samples = samples[5:]
        left = len(store.handoffs.waiting(limit=100_000))
        out[kind] = {**summary(samples), "waiting_after": left}
        await tracker_store.close()
    return out


# --- main -------------------------------------------------------------------------------------


def show(name: str, label: str, figures: dict[str, Any]) -> None:
    print(
        f"  {name:<12} {label:<32} n={figures['n']:<4} p50 {figures['p50_ms']:8.3f} ms   "
        f"p99 {figures['p99_ms']:8.3f} ms   max {figures['max_ms']:8.3f} ms"
    )


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--conversations", type=int, default=300)
    parser.add_argument("--waiting", type=int, default=1000)
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument("--assignments", type=int, default=300)
    env_url = os.environ.get("BOT_DB_URL", "")
    parser.add_argument(
        "--pg",
        default=env_url if env_url.startswith("postgres") else DEFAULT_PG_URL,
        help="PostgreSQL URL",
    )
    parser.add_argument("--no-pg", dest="pg", action="store_const", const=None)
    parser.add_argument(
        "--no-kb", action="store_true", help="no knowledge-base suggestions in the context packet"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    config = always_open(handoff_config.load(ROOT, {}))
    search, category = (None, None) if args.no_kb else knowledge_search(ROOT)
    figures: dict[str, Any] = {}
    with databases(args) as found:
        print(
            f"(a) handoff decision → conversation in the queue: HandoffService.stage "
            f"after '{ASK}', {args.conversations} conversations "
            f"(knowledge suggestions {'off' if search is None else 'on'}); target p99 ≤ 50 ms"
        )
        for name, url in found:
            result = await decision_to_queue(url, config, args, search, category)
            figures.setdefault(name, {})["decision_to_queue"] = result
            show(name, "stage", result["stage"])
            show(name, "stage + auto-assignment", result["with_auto_assign"])
        print(
            f"\n(b) one assignment, {args.waiting} waiting, {args.agents} agents "
            f"(groups {', '.join(config.group_names)}; capacity 3-5); target p99 ≤ 5 ms"
        )
        for name, url in found:
            result = await assignment(url, config, args)
            figures.setdefault(name, {})["assignment"] = result
            for label, values in result.items():
                show(name, label, values)
                print(f"  {'':<12} {'':<32} still waiting afterwards: {values['waiting_after']}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
