"""The persisted queue, agents, tickets and audit log (bot/handoff/store.py) on SQLite in
memory, a SQLite file and PostgreSQL (skipped when not reachable; each test gets its own
schema, dropped afterwards). Last: no waiting customer is lost across a restart, at the store
and through the server."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from backends import pg_problem, pg_url
from test_server_project import TrainedBot, new_agent, trained_bot

from bot.core.tracker_store import SQLTrackerStore
from bot.errors import BotError
from bot.handoff.agent_store import check_password, hash_password
from bot.handoff.config import parse
from bot.handoff.records import AgentAccount, Handoff, new_id
from bot.handoff.service import HandoffService
from bot.handoff.store import HandoffStore
from bot.handoff.tables import AGENTS
from bot.server import create_app

__all__ = ["trained_bot"]


@pytest.fixture(params=["sqlite-memory", "sqlite-file", "postgresql"])
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    yield request.param


@pytest.fixture
def make_store(backend: str, tmp_path: Path) -> Iterator[Callable[[], HandoffStore]]:
    """Opens the test's store (again: the same database, as a restarted process would)."""
    engines: list[sa.Engine] = []
    schema = f"handoff_t{uuid.uuid4().hex[:12]}"
    if backend == "postgresql":
        problem = pg_problem()
        if problem:
            pytest.skip(problem)
        admin = sa.create_engine(pg_url())
        with admin.begin() as conn:
            conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    memory: list[HandoffStore] = []

    def open_store() -> HandoffStore:
        if backend == "sqlite-memory":
            if not memory:
                memory.append(HandoffStore.from_url("sqlite://"))
            return memory[0]
        if backend == "sqlite-file":
            store = HandoffStore.from_url(f"sqlite:///{tmp_path / 'data' / 'handoff.db'}")
        else:
            store = HandoffStore(
                sa.create_engine(pg_url(), connect_args={"options": f"-csearch_path={schema}"})
            )
        engines.append(store.engine)
        return store

    yield open_store
    for engine in engines:
        engine.dispose()
    for store in memory:
        store.engine.dispose()
    if backend == "postgresql":
        with admin.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def store(make_store: Callable[[], HandoffStore]) -> HandoffStore:
    return make_store()


@pytest.fixture
def staffed(store: HandoffStore) -> HandoffStore:
    """A store with agents alice and bob (room for many conversations each)."""
    store.agents.add("alice", "alice-password", ["账户", "信用卡"], capacity=50)
    store.agents.add("bob", "bob-password", ["账户", "信用卡"], capacity=50)
    return store


def waiting(
    conversation: str,
    group: str = "账户",
    priority: int = 0,
    at: float = 100.0,
    customer: str | None = None,
) -> Handoff:
    return Handoff(
        new_id(),
        conversation,
        "rest",
        customer,
        None,
        group,
        priority,
        "customer_request",
        "客户要求人工服务",
        "waiting",
        at,
        preview=f"{conversation} 的最后一句",
    )


def queued(
    store: HandoffStore,
    conversation: str,
    group: str = "账户",
    priority: int = 0,
    at: float = 100.0,
) -> Handoff:
    handoff, created = store.handoffs.enqueue(
        waiting(conversation, group, priority, at), {"conversation_id": conversation}
    )
    assert created
    return handoff


def ids(handoffs: list[Handoff]) -> list[str]:
    return [h.conversation_id for h in handoffs]


# --- agents ---------------------------------------------------------------------------------


def test_add_list_get_and_remove_agents(store: HandoffStore) -> None:
    assert store.agents.all() == []
    bob = store.agents.add(" bob ", "bob-password", ["信用卡", " 贷款 ", ""], capacity=5)
    assert (bob.username, bob.groups, bob.role, bob.capacity, bob.status) == (
        "bob",
        ["信用卡", "贷款"],
        "agent",
        5,
        "away",
    )
    store.agents.add("alice", "alice-password", ["账户"], role="supervisor")
    assert [a.username for a in store.agents.all()] == ["alice", "bob"]  # by name
    alice = store.agents.get("alice")
    assert alice is not None and alice.supervisor and alice.groups == ["账户"]
    assert alice.capacity == 3 and alice.last_assigned_at == 0.0
    assert store.agents.get("nobody") is None
    assert store.agents.remove("bob") is True
    assert store.agents.remove("bob") is False
    assert [a.username for a in store.agents.all()] == ["alice"]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s: s.agents.add("alice", "short", ["账户"]), "at least 8 characters"),
        (
            lambda s: s.agents.add("alice", "long-enough", ["账户"], role="admin"),
            "role must be one of agent, supervisor",
        ),
        (
            lambda s: s.agents.add("alice", "long-enough", ["账户"], capacity=0),
            "capacity must be at least 1",
        ),
        (lambda s: s.agents.add("alice", "long-enough", [" ", ""]), "at least one group"),
        (lambda s: s.agents.add("a,b", "long-enough", ["账户"]), "username must be"),
        (lambda s: s.agents.add("  ", "long-enough", ["账户"]), "username must be"),
        (lambda s: s.agents.add("x" * 65, "long-enough", ["账户"]), "username must be"),
        (lambda s: s.agents.add("alice", "long-enough", ["账户,信用卡"]), "group must be"),
    ],
)
def test_bad_agents_are_refused(
    store: HandoffStore, call: Callable[[HandoffStore], Any], message: str
) -> None:
    with pytest.raises(BotError, match=message):
        call(store)
    assert store.agents.all() == []


def test_duplicate_username(store: HandoffStore) -> None:
    store.agents.add("alice", "alice-password", ["账户"])
    with pytest.raises(BotError, match="'alice' exists already"):
        store.agents.add("alice", "another-password", ["信用卡"])
    agent = store.agents.get("alice")
    assert agent is not None and agent.groups == ["账户"]  # untouched
    assert store.agents.authenticate("alice", "alice-password") is not None


def test_passwords_are_hashed_and_checked(store: HandoffStore) -> None:
    store.agents.add("alice", "same-password", ["账户"])
    store.agents.add("bob", "same-password", ["账户"])
    with store.engine.connect() as conn:
        hashes = dict(conn.execute(sa.select(AGENTS.c.username, AGENTS.c.password_hash)).all())
    for stored in hashes.values():
        assert "same-password" not in stored and stored.startswith("scrypt$")
        assert check_password("same-password", stored)
        assert not check_password("same-passwort", stored)
    assert hashes["alice"] != hashes["bob"]  # salted
    found = store.agents.authenticate("alice", "same-password")
    assert isinstance(found, AgentAccount) and found.username == "alice"
    assert store.agents.authenticate("alice", "wrong-password") is None
    assert store.agents.authenticate("alice", "") is None
    assert store.agents.authenticate("nobody", "same-password") is None


@pytest.mark.parametrize(
    "stored",
    ["", "plain-text", "bcrypt$1$2$3$ab$cd", "scrypt$x$8$1$00$00", "scrypt$16384$8$1$zz$zz"],
)
def test_check_password_rejects_malformed_hashes(stored: str) -> None:
    assert check_password("anything", stored) is False


def test_hash_password_round_trip() -> None:
    stored = hash_password("密码也可以是中文")
    assert check_password("密码也可以是中文", stored)
    assert not check_password("密码也可以是中", stored)


def test_status(store: HandoffStore) -> None:
    store.agents.add("alice", "alice-password", ["账户"])
    store.agents.set_status("alice", "available")
    assert store.agents.get("alice").status == "available"  # type: ignore[union-attr]
    store.agents.set_status("alice", "away")
    assert store.agents.get("alice").status == "away"  # type: ignore[union-attr]


# --- the queue ------------------------------------------------------------------------------


def test_enqueue_once_per_open_conversation(store: HandoffStore) -> None:
    first = queued(store, "c1", at=100.0)
    again, created = store.handoffs.enqueue(waiting("c1", "信用卡", 5, at=200.0), {"other": True})
    assert not created and again.id == first.id and again.group == "账户"
    assert ids(store.handoffs.waiting()) == ["c1"]
    assert store.handoffs.packet(first.id) == {"conversation_id": "c1"}
    got = store.handoffs.get(first.id)
    assert got == first  # every field round-trips
    # once closed, the next handoff of the conversation is a new one
    assert store.handoffs.close(first.id, None, "resolved", 150.0) is not None
    second, created = store.handoffs.enqueue(waiting("c1", at=300.0), {})
    assert created and second.id != first.id
    assert store.handoffs.latest("c1") == second
    assert store.handoffs.latest("c1", ["closed"]).id == first.id  # type: ignore[union-attr]
    assert store.handoffs.latest("nobody") is None and store.handoffs.packet("nope") is None


def test_waiting_order_priority_then_time(store: HandoffStore) -> None:
    queued(store, "low-early", priority=0, at=100.0)
    queued(store, "high-late", priority=3, at=400.0)
    queued(store, "mid", priority=1, at=300.0)
    queued(store, "high-early", priority=3, at=200.0, group="信用卡")
    queued(store, "low-late", priority=0, at=500.0)
    assert ids(store.handoffs.waiting()) == [
        "high-early",
        "high-late",
        "mid",
        "low-early",
        "low-late",
    ]
    assert ids(store.handoffs.waiting(["账户"])) == ["high-late", "mid", "low-early", "low-late"]
    assert ids(store.handoffs.waiting(["信用卡", "贷款"])) == ["high-early"]
    assert ids(store.handoffs.waiting([])) == []
    assert ids(store.handoffs.waiting(limit=2)) == ["high-early", "high-late"]
    assert store.handoffs.next_waiting(["账户"]).conversation_id == "high-late"  # type: ignore[union-attr]
    assert store.handoffs.next_waiting(["贷款"]) is None


def test_position_within_the_group(staffed: HandoffStore) -> None:
    store = staffed
    a = queued(store, "a", priority=0, at=100.0)
    b = queued(store, "b", priority=0, at=200.0)
    c = queued(store, "c", priority=2, at=300.0)
    other = queued(store, "other", group="信用卡", priority=9, at=50.0)
    assert [store.handoffs.position(h) for h in (c, a, b)] == [1, 2, 3]
    assert store.handoffs.position(other) == 1
    store.handoffs.assign(c.id, "alice", 400.0)  # served: no longer ahead of anyone
    assert [store.handoffs.position(h) for h in (a, b)] == [1, 2]


def test_position_agrees_with_the_serving_order_when_times_are_equal(store: HandoffStore) -> None:
    """Two customers queued in the same clock tick with the same priority: the queue serves
    one first, so they must not both be told they are next."""
    first, second = (queued(store, name, at=100.0) for name in ("x", "y"))
    order = store.handoffs.waiting()
    assert sorted(store.handoffs.position(h) for h in (first, second)) == [1, 2]
    assert [store.handoffs.position(h) for h in order] == [1, 2]


def test_assign_accept_and_races(staffed: HandoffStore) -> None:
    store = staffed
    h = queued(store, "c1")
    assigned = store.handoffs.assign(h.id, "alice", 200.0)
    assert assigned is not None
    assert (assigned.status, assigned.agent, assigned.assigned_at) == ("assigned", "alice", 200.0)
    assert store.handoffs.assign(h.id, "bob", 201.0) is None  # stale: not waiting any more
    assert store.handoffs.accept(h.id, "bob", 202.0) is None  # reserved for alice
    assert store.handoffs.release(h.id, "bob") is None  # not bob's
    active = store.handoffs.accept(h.id, "alice", 203.0)
    assert active is not None
    assert (active.status, active.agent, active.accepted_at) == ("active", "alice", 203.0)
    assert active.assigned_at == 200.0
    assert store.handoffs.accept(h.id, "alice", 204.0) is None  # already active
    assert store.handoffs.accept("no-such-id", "alice", 205.0) is None
    assert store.handoffs.get(h.id).status == "active"  # type: ignore[union-attr]


def test_two_agents_accepting_a_waiting_conversation_only_one_wins(staffed: HandoffStore) -> None:
    store = staffed
    h = queued(store, "c1")
    first = store.handoffs.accept(h.id, "alice", 200.0)
    second = store.handoffs.accept(h.id, "bob", 200.0)
    assert first is not None and first.agent == "alice" and first.status == "active"
    assert first.assigned_at == first.accepted_at == 200.0
    assert second is None
    assert store.handoffs.get(h.id).agent == "alice"  # type: ignore[union-attr]


def test_concurrent_accepts_from_threads_only_one_wins(backend: str, staffed: HandoffStore) -> None:
    store = staffed
    if backend == "sqlite-memory":
        pytest.skip("one shared connection: statements cannot really run side by side")
    handoffs = [queued(store, f"race-{i}", at=float(i)) for i in range(10)]
    agents = [f"agent{n}" for n in range(4)]
    for agent in agents:
        store.agents.add(agent, "agent-password", ["账户"], capacity=10)
    for h in handoffs:
        gate = threading.Barrier(len(agents))

        def take(
            agent: str, handoff_id: str = h.id, gate: threading.Barrier = gate
        ) -> Handoff | None:
            gate.wait()
            return store.handoffs.accept(handoff_id, agent, 500.0)

        with ThreadPoolExecutor(len(agents)) as pool:
            results = list(pool.map(take, agents))
        winners = [r for r in results if r is not None]
        assert len(winners) == 1, results
        assert store.handoffs.get(h.id).agent == winners[0].agent  # type: ignore[union-attr]
    assert sum(store.handoffs.loads().values()) == len(handoffs)


def test_concurrent_assignments_never_exceed_an_agents_capacity(
    backend: str, store: HandoffStore
) -> None:
    """Several processes' routers reserve conversations for the same free agent at the same
    moment: the agent ends with exactly their capacity, never one more."""
    if backend == "sqlite-memory":
        pytest.skip("one shared connection: statements cannot really run side by side")
    store.agents.add("dora", "dora-password", ["账户"], capacity=3)
    for trial in range(5):
        handoffs = [queued(store, f"cap-{trial}-{i}", at=float(i)) for i in range(8)]
        gate = threading.Barrier(len(handoffs))

        def take(handoff_id: str, gate: threading.Barrier = gate) -> Handoff | None:
            gate.wait()
            return store.handoffs.assign(handoff_id, "dora", 500.0)

        with ThreadPoolExecutor(len(handoffs)) as pool:
            results = list(pool.map(take, [h.id for h in handoffs]))
        assert len([r for r in results if r is not None]) == 3, results
        assert store.handoffs.loads() == {"dora": 3}
        assert len(store.handoffs.waiting()) == 5
        for h in store.handoffs.open_for_agent("dora"):
            store.handoffs.close(h.id, "dora", "resolved", 600.0)
        for h in store.handoffs.waiting():
            store.handoffs.close(h.id, None, "cancelled", 600.0)


def test_an_unknown_or_full_agent_gets_nothing(staffed: HandoffStore) -> None:
    store = staffed
    store.agents.add("erin", "erin-password", ["账户"], capacity=1)
    first, second = queued(store, "f1"), queued(store, "f2", at=200.0)
    assert store.handoffs.assign(first.id, "nobody", 300.0) is None
    assert store.handoffs.assign(first.id, "erin", 300.0) is not None
    before = store.agents.get("erin")
    assert store.handoffs.assign(second.id, "erin", 400.0) is None  # full
    assert store.handoffs.accept(second.id, "erin", 400.0) is None  # taking it by hand too
    assert store.handoffs.get(second.id).status == "waiting"  # type: ignore[union-attr]
    assert store.agents.get("erin") == before  # a refused assignment leaves the agent as it was


def test_concurrent_enqueues_of_one_conversation_queue_it_once(
    backend: str, store: HandoffStore
) -> None:
    """Two turns of the same customer (a double-clicked 转人工, or two workers) enqueue at
    the same moment: one handoff is created, the other gets it back."""
    if backend == "sqlite-memory":
        pytest.skip("one shared connection: statements cannot really run side by side")
    callers = 6
    for trial in range(10):
        gate = threading.Barrier(callers)

        def enqueue(
            i: int, conversation: str = f"double-{trial}", gate: threading.Barrier = gate
        ) -> bool:
            gate.wait()
            return store.handoffs.enqueue(waiting(conversation, at=100.0 + i), {})[1]

        with ThreadPoolExecutor(callers) as pool:
            created = list(pool.map(enqueue, range(callers)))
        assert created.count(True) == 1, created
        assert ids(store.handoffs.waiting()).count(f"double-{trial}") == 1


def test_release_puts_an_assigned_conversation_back(staffed: HandoffStore) -> None:
    store = staffed
    h = queued(store, "c1", at=100.0)
    store.handoffs.assign(h.id, "alice", 200.0)
    released = store.handoffs.release(h.id, "alice")
    assert released is not None and released.status == "waiting" and released.agent is None
    assert released.assigned_at is None and released.enqueued_at == 100.0
    assert store.handoffs.release(h.id, "alice") is None
    store.handoffs.accept(h.id, "alice", 300.0)
    assert store.handoffs.release(h.id, "alice") is None  # active: only transfer or close


def test_transfer(staffed: HandoffStore) -> None:
    store = staffed
    early = queued(store, "early", at=50.0, group="信用卡")
    h = queued(store, "c1", at=100.0)
    late = queued(store, "late", at=900.0, group="信用卡")
    store.handoffs.accept(h.id, "alice", 200.0)
    assert store.handoffs.transfer(h.id, "bob", "信用卡", 300.0) is None  # not bob's
    moved = store.handoffs.transfer(h.id, "alice", "信用卡", 300.0)
    assert moved is not None
    assert (moved.status, moved.group, moved.agent) == ("waiting", "信用卡", None)
    assert moved.assigned_at is None and moved.accepted_at is None
    assert moved.enqueued_at == 100.0  # keeps its place in time
    assert ids(store.handoffs.waiting(["信用卡"])) == ["early", "c1", "late"]
    assert store.handoffs.position(moved) == 2
    # a supervisor (no agent) may move a waiting one; a closed one cannot move
    again = store.handoffs.transfer(early.id, None, "贷款", 400.0)
    assert again is not None and again.group == "贷款"
    store.handoffs.close(late.id, None, "resolved", 500.0)
    assert store.handoffs.transfer(late.id, None, "账户", 600.0) is None


def test_close(staffed: HandoffStore) -> None:
    store = staffed
    h = queued(store, "c1")
    store.handoffs.accept(h.id, "alice", 200.0)
    assert store.handoffs.close(h.id, "bob", "resolved", 300.0) is None  # only alice (or no agent)
    closed = store.handoffs.close(h.id, "alice", "resolved", 300.0)
    assert closed is not None
    assert (closed.status, closed.resolution, closed.closed_at) == ("closed", "resolved", 300.0)
    assert store.handoffs.close(h.id, None, "resolved", 301.0) is None  # stale
    assert store.handoffs.waiting() == [] and store.handoffs.open_for_agent("alice") == []
    w = queued(store, "c2")
    assert store.handoffs.close(w.id, None, "cancelled", 400.0).status == "closed"  # type: ignore[union-attr]


def test_leave_message_and_ticket(staffed: HandoffStore) -> None:
    store = staffed
    h = queued(store, "c1", at=100.0)
    h = Handoff(**{**h.__dict__, "customer_id": None})
    leaving = store.handoffs.leave_message(h.id)
    assert leaving is not None and leaving.status == "leaving"
    assert store.handoffs.leave_message(h.id) is None  # not waiting any more
    assert store.handoffs.waiting() == []  # out of the queue
    assert store.handoffs.latest("c1", ["leaving"]) is not None
    ticket = store.tickets.to_ticket(h.id, "请回电 138****5678", 200.0)
    assert ticket is not None
    assert (
        ticket.handoff_id,
        ticket.conversation_id,
        ticket.group,
        ticket.text,
        ticket.created_at,
        ticket.status,
    ) == (h.id, "c1", "账户", "请回电 138****5678", 200.0, "open")
    after = store.handoffs.get(h.id)
    assert after is not None
    assert (after.status, after.resolution, after.closed_at) == ("ticket", "ticket", 200.0)
    assert store.tickets.to_ticket(h.id, "again", 201.0) is None
    # straight from waiting too (a message outside opening hours)
    w = queued(store, "c2", group="贷款")
    second = store.tickets.to_ticket(w.id, "明天联系我", 300.0)
    assert second is not None and second.id > ticket.id
    assert [(t.id, t.text) for t in store.tickets.all()] == [
        (ticket.id, "请回电 138****5678"),
        (second.id, "明天联系我"),
    ]
    assert [t.id for t in store.tickets.all(None)] == [ticket.id, second.id]
    assert store.tickets.all("done") == []
    active = queued(store, "c3")
    store.handoffs.accept(active.id, "alice", 400.0)
    assert store.tickets.to_ticket(active.id, "no", 401.0) is None


def test_loads_and_open_for_agent(staffed: HandoffStore) -> None:
    store = staffed
    a, b, c, d = (queued(store, f"c{i}", at=float(i)) for i in range(4))
    store.handoffs.assign(a.id, "alice", 10.0)
    store.handoffs.accept(b.id, "alice", 11.0)
    store.handoffs.accept(c.id, "bob", 12.0)
    store.handoffs.accept(d.id, "bob", 13.0)
    store.handoffs.close(d.id, "bob", "resolved", 14.0)
    assert store.handoffs.loads() == {"alice": 2, "bob": 1}
    assert ids(store.handoffs.open_for_agent("alice")) == ["c0", "c1"]
    assert ids(store.handoffs.open_for_agent("carol")) == []


def test_assignment_marks_the_agents_last_assignment(store: HandoffStore) -> None:
    store.agents.add("alice", "alice-password", ["账户"])
    h = queued(store, "c1")
    store.handoffs.assign(h.id, "alice", 10.0)
    agent = store.agents.get("alice")
    assert agent is not None and agent.last_assigned_at > 0


def test_rate_only_once(staffed: HandoffStore) -> None:
    store = staffed
    assert store.handoffs.rate("c1", 5) is None  # nothing closed yet
    h = queued(store, "c1")
    store.handoffs.accept(h.id, "alice", 200.0)
    assert store.handoffs.rate("c1", 5) is None  # still open
    store.handoffs.close(h.id, "alice", "resolved", 300.0)
    rated = store.handoffs.rate("c1", 4)
    assert rated is not None and rated.rating == 4 and rated.id == h.id
    assert store.handoffs.rate("c1", 1) is None
    assert store.handoffs.get(h.id).rating == 4  # type: ignore[union-attr]


def test_average_handle_seconds(staffed: HandoffStore) -> None:
    store = staffed
    assert store.handoffs.average_handle_seconds("账户") is None
    for i, (accepted, closed) in enumerate([(100.0, 160.0), (200.0, 380.0)]):
        h = queued(store, f"c{i}")
        store.handoffs.accept(h.id, "alice", accepted)
        store.handoffs.close(h.id, "alice", "resolved", closed)
    never_accepted = queued(store, "c9")
    store.handoffs.close(never_accepted.id, None, "cancelled", 999.0)
    assert store.handoffs.average_handle_seconds("账户") == pytest.approx(120.0)
    assert store.handoffs.average_handle_seconds("信用卡") is None


def test_groups_overview(staffed: HandoffStore) -> None:
    store = staffed
    assert store.handoffs.groups_overview(1000.0) == {}
    queued(store, "a1", at=400.0)
    queued(store, "a2", at=700.0)
    queued(store, "card", group="信用卡", at=900.0)
    served = queued(store, "served", group="贷款", at=100.0)
    store.handoffs.accept(served.id, "alice", 200.0)
    overview = store.handoffs.groups_overview(1000.0)
    assert overview == {"账户": (2, 600.0), "信用卡": (1, 100.0)}
    assert store.handoffs.groups_overview(0.0)["账户"] == (2, 0.0)  # never negative


def test_audit_log(store: HandoffStore) -> None:
    store.audit.record(
        "bot", "enqueue", "c1", "h1", {"reason": "complaint", "group": "投诉"}, now=10.0
    )
    store.audit.record("alice", "accept", "c1", "h1", now=11.0)
    store.audit.record("alice", "note", "c1", "h1", {"text": "客户很着急"}, now=12.0)
    store.audit.record("bob", "login", None)
    store.audit.record("bob", "note", "c2", "h2", {"text": "另一个"}, now=13.0)
    log = store.audit.log()
    assert [e["action"] for e in log] == ["enqueue", "accept", "note", "login", "note"]
    first = log[0]
    assert (first["at"], first["actor"], first["conversation_id"], first["handoff_id"]) == (
        10.0,
        "bot",
        "c1",
        "h1",
    )
    assert first["detail"] == {"reason": "complaint", "group": "投诉"}
    assert log[1]["detail"] == {}
    assert log[3]["conversation_id"] is None and log[3]["at"] > 0
    assert [e["action"] for e in store.audit.log("c1")] == ["enqueue", "accept", "note"]
    notes = store.audit.log(actions=["note"])
    assert [(e["actor"], e["detail"]["text"]) for e in notes] == [
        ("alice", "客户很着急"),
        ("bob", "另一个"),
    ]
    assert [e["actor"] for e in store.audit.log("c1", ["note", "accept"])] == ["alice", "alice"]
    assert len(store.audit.log(limit=2)) == 2
    assert store.audit.log("c3") == []


# --- no waiting customer is lost across a restart -------------------------------------------


def test_the_queue_survives_a_restart(backend: str, make_store: Callable[[], HandoffStore]) -> None:
    if backend == "sqlite-memory":
        pytest.skip("an in-memory database ends with its process")
    before = make_store()
    before.agents.add("alice", "alice-password", ["账户", "信用卡"])
    for i, (group, priority) in enumerate(
        [("账户", 0), ("信用卡", 2), ("账户", 1), ("账户", 0), ("信用卡", 0)]
    ):
        queued(before, f"c{i}", group, priority, at=100.0 + i)
    served = before.handoffs.waiting()[0]
    before.handoffs.accept(served.id, "alice", 200.0)
    expected = before.handoffs.waiting()
    positions = [before.handoffs.position(h) for h in expected]
    assert len(expected) == 4
    before.engine.dispose()  # the process ends

    after = make_store()  # a new process on the same database
    assert after.handoffs.waiting() == expected
    assert [after.handoffs.position(h) for h in after.handoffs.waiting()] == positions
    assert ids(after.handoffs.open_for_agent("alice")) == [served.conversation_id]
    assert after.agents.authenticate("alice", "alice-password") is not None


REST = "/webhooks/rest/webhook"
CONFIG = {
    "groups": [{"name": "账户"}, {"name": "信用卡"}],
    "routing": {"default_group": "账户"},
    "queue": {"auto_assign": False},
}


async def say(app: Any, sender: str, text: str) -> list[dict[str, Any]]:
    _, response = await app.asgi_client.post(REST, json={"sender": sender, "message": text})
    assert response.status == 200, response.json
    messages: list[dict[str, Any]] = response.json
    return messages


def serve(bot: TrainedBot, url: str) -> tuple[Any, HandoffService, SQLTrackerStore]:
    """One server process: its own tracker store on ``url``, the handoff tables in the same
    database (as bot/handoff/factory.py does), its own app."""
    tracker_store = SQLTrackerStore(url)
    agent = new_agent(bot, tracker_store)
    service = HandoffService(parse(CONFIG, {}), HandoffStore(tracker_store.engine), agent.processor)
    return create_app(agent, handoff=service, close_stores=False), service, tracker_store


@pytest.mark.slow  # trains the shipped project once per session
async def test_a_waiting_customer_survives_a_server_restart(
    trained_bot: TrainedBot, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    app, service, tracker_store = serve(trained_bot, url)
    service.store.agents.add("alice", "alice-password", ["账户"])
    for sender in ("first", "second"):
        replies = await say(app, sender, "转人工")
        assert "队列" in " ".join(m.get("text", "") for m in replies)
    await service.drain()
    await tracker_store.close()  # the process stops

    app, service, tracker_store = serve(trained_bot, url)  # a brand-new one
    try:
        _, login = await app.asgi_client.post(
            "/agent/login", json={"username": "alice", "password": "alice-password"}
        )
        assert login.status == 200, login.json
        alice = {"Authorization": f"Bearer {login.json['token']}"}
        _, queue = await app.asgi_client.get("/agent/queue", headers=alice)
        assert queue.status == 200
        assert [(w["conversation_id"], w["position"]) for w in queue.json["waiting"]] == [
            ("first", 1),
            ("second", 2),
        ]
        assert queue.json["waiting"][0]["reason"] == "customer_request"
        # the conversation is still paused: the bot does not answer, the queue does
        replies = await say(app, "first", "还要等多久")
        assert "已收到" in " ".join(m.get("text", "") for m in replies)  # acknowledged once
        _, accepted = await app.asgi_client.post("/agent/conversations/first/accept", headers=alice)
        assert accepted.status == 200, accepted.json
        assert accepted.json["handoff"]["status"] == "active"
        assert accepted.json["handoff"]["agent"] == "alice"
        _, context = await app.asgi_client.get("/agent/conversations/first/context", headers=alice)
        assert [m["text"] for m in context.json["transcript"] if m["from"] == "customer"] == [
            "转人工",
            "还要等多久",
        ]
        assert await say(app, "first", "你好") == []  # now it goes to alice
        await service.drain()
    finally:
        await tracker_store.close()


def test_workers_starting_together_on_a_new_database_all_get_the_tables(tmp_path: Path) -> None:
    """`bot run --workers N` on a fresh SQLite file: every worker creates the schema at the
    same moment; the losers of that race must not fail to start."""
    url = f"sqlite:///{tmp_path}/fresh.db"
    gate = threading.Barrier(6)

    def start(_: int) -> HandoffStore:
        gate.wait()
        return HandoffStore.from_url(url)

    for _ in range(3):
        with ThreadPoolExecutor(6) as pool:
            stores = list(pool.map(start, range(6)))
        assert all(s.handoffs.waiting() == [] for s in stores)
        for s in stores:
            s.engine.dispose()
        (tmp_path / "fresh.db").unlink()
