"""Routing (bot/handoff/routing.py): which group and priority a conversation gets, which agent
takes it, which conversation a free agent gets, the estimated wait; and the router's one
assignment step (Router.assign_one, bot/handoff/dispatch.py) on a real queue."""

from __future__ import annotations

from typing import Any

import pytest

from bot.handoff.config import HandoffConfig, parse
from bot.handoff.records import AgentAccount, Handoff, new_id
from bot.handoff.routing import (
    Profile,
    Route,
    eta_seconds,
    pick_agent,
    pick_handoff,
    route,
    slots,
)
from bot.handoff.service import HandoffService
from bot.handoff.store import HandoffStore

CONFIG = parse(
    {
        "groups": ["账户", "信用卡", "贷款", "投诉", "老年客户专线"],
        "routing": {
            "default_group": "账户",
            "elderly_group": "老年客户专线",
            "intents": {"complain": "投诉", "apply_loan": "贷款"},
            "entities": {
                "account_type": {"credit_card": "信用卡", "debit_card": "账户"},
                "business_type": {"loan": "贷款"},
            },
            "knowledge_categories": {"信用卡": "信用卡", "贷款": "贷款"},
        },
        "priorities": {"complaint": 2, "elderly": 3, "vip": 1, "elderly_age": 60},
    },
    {},
)
CARD = [{"entity": "account_type", "value": "credit_card"}]
LOAN = [{"entity": "business_type", "value": "loan"}]
YOUNG = Profile("C1", "张伟", age=30)
OLD = Profile("C2", "李秀英", age=72)
VIP = Profile("C3", "王芳", age=40, vip=True)


# --- route: the group -------------------------------------------------------------------------


def test_explicit_group_beats_everything() -> None:
    found = route(CONFIG, "complain", CARD, "信用卡", OLD, group="贷款")
    assert found.group == "贷款"


def test_elderly_line_beats_intent_entity_and_category() -> None:
    assert route(CONFIG, "complain", CARD, "贷款", OLD).group == "老年客户专线"


def test_elderly_from_exactly_the_configured_age() -> None:
    assert route(CONFIG, None, [], None, Profile("C", "x", age=60)).group == "老年客户专线"
    assert route(CONFIG, None, [], None, Profile("C", "x", age=59)).group == "账户"
    assert route(CONFIG, None, [], None, Profile("C", "x", age=None)).group == "账户"


def test_no_elderly_group_configured_falls_through() -> None:
    config = parse({"groups": ["账户", "投诉"], "routing": {"intents": {"complain": "投诉"}}}, {})
    assert route(config, "complain", [], None, OLD).group == "投诉"


def test_intent_beats_entity_and_category() -> None:
    assert route(CONFIG, "complain", CARD, "贷款", YOUNG).group == "投诉"


def test_entity_beats_category() -> None:
    assert route(CONFIG, "query_balance", CARD, "贷款", YOUNG).group == "信用卡"
    assert route(CONFIG, None, LOAN, "信用卡", None).group == "贷款"


def test_first_matching_entity_wins() -> None:
    entities = [
        {"entity": "city", "value": "上海"},
        {"entity": "account_type", "value": "x"},
        *LOAN,
        *CARD,
    ]
    assert route(CONFIG, None, entities, None, None).group == "贷款"


def test_category_of_the_knowledge_tried() -> None:
    assert route(CONFIG, "faq", [], "信用卡", YOUNG).group == "信用卡"
    assert route(CONFIG, "faq", [], "不认识的分类", YOUNG).group == "账户"


def test_default_group_when_nothing_matches() -> None:
    assert route(CONFIG, None, [], None, None) == Route("账户", 0)
    assert route(CONFIG, "greet", [{"entity": "amount", "value": 5}], None, YOUNG) == Route(
        "账户", 0
    )


# --- route: the priority ----------------------------------------------------------------------


def test_priority_complaint_by_flag_or_intent() -> None:
    assert route(CONFIG, None, [], None, None, complaint=True).priority == 2
    assert route(CONFIG, "complain", [], None, None).priority == 2
    assert route(CONFIG, "request_human", [], None, None).priority == 0


def test_priority_elderly_vip_and_extra_add_up() -> None:
    assert route(CONFIG, None, [], None, OLD).priority == 3
    assert route(CONFIG, None, [], None, VIP).priority == 1
    old_vip = Profile("C4", "赵敏", age=80, vip=True)
    assert route(CONFIG, "complain", [], None, old_vip, extra_priority=4) == Route(
        "老年客户专线", 2 + 3 + 1 + 4
    )
    # the elderly bonus applies even when a rule picked the group
    assert route(CONFIG, None, [], None, OLD, group="贷款", extra_priority=1) == Route("贷款", 4)


def test_priority_follows_the_configured_age() -> None:
    config = parse({"priorities": {"elderly": 5, "elderly_age": 70}}, {})
    assert route(config, None, [], None, Profile("C", "x", age=69)).priority == 0
    assert route(config, None, [], None, Profile("C", "x", age=70)).priority == 5


# --- pick_agent -------------------------------------------------------------------------------


def agent(
    name: str, groups: list[str], capacity: int = 3, status: str = "available", last: float = 0.0
) -> AgentAccount:
    return AgentAccount(name, groups, "agent", capacity, status, 0.0, last)


def test_only_available_agents_of_the_group() -> None:
    agents = [
        agent("away", ["账户"], status="away"),
        agent("card", ["信用卡"]),
        agent("ok", ["投诉", "账户"]),
    ]
    assert pick_agent(agents, {}, "账户") is agents[2]
    assert pick_agent(agents, {}, "贷款") is None
    assert pick_agent([agents[0]], {}, "账户") is None


def test_only_agents_with_spare_capacity() -> None:
    agents = [agent("full", ["账户"], capacity=2), agent("free", ["账户"], capacity=2)]
    assert pick_agent(agents, {"full": 2, "free": 1}, "账户") is agents[1]
    assert pick_agent(agents, {"full": 2, "free": 2}, "账户") is None
    assert pick_agent(agents, {"full": 5}, "账户") is agents[1]  # over capacity, still skipped


def test_least_relative_load_wins() -> None:
    small = agent("small", ["账户"], capacity=2)  # 1/2 = 0.5
    big = agent("big", ["账户"], capacity=5)  # 2/5 = 0.4
    assert pick_agent([small, big], {"small": 1, "big": 2}, "账户") is big
    assert pick_agent([big, small], {"small": 0, "big": 1}, "账户") is small


def test_tie_goes_to_the_longest_since_last_assignment() -> None:
    recent = agent("recent", ["账户"], last=200.0)
    long_ago = agent("long_ago", ["账户"], last=100.0)
    never = agent("never", ["账户"], last=0.0)
    assert pick_agent([recent, long_ago], {}, "账户") is long_ago
    assert pick_agent([recent, long_ago, never], {}, "账户") is never
    # the same relative load: 1/3 == 2/6
    a, b = agent("a", ["账户"], 3, last=50.0), agent("b", ["账户"], 6, last=10.0)
    assert pick_agent([a, b], {"a": 1, "b": 2}, "账户") is b


# --- pick_handoff / eta -------------------------------------------------------------------------


def handoff(
    conversation: str, group: str, priority: int = 0, at: float = 0.0, status: str = "waiting"
) -> Handoff:
    return Handoff(
        new_id(),
        conversation,
        "rest",
        None,
        None,
        group,
        priority,
        "customer_request",
        None,
        status,
        at,
    )


def test_pick_handoff_takes_the_first_of_the_agents_groups() -> None:
    waiting = [
        handoff("a", "贷款", 5),
        handoff("b", "信用卡", 2),
        handoff("c", "账户", 2),
        handoff("d", "信用卡", 0),
    ]
    assert pick_handoff(waiting, ["信用卡", "账户"]) is waiting[1]
    assert pick_handoff(waiting, ["账户"]) is waiting[2]
    assert pick_handoff(waiting, ["投诉"]) is None
    assert pick_handoff([], ["账户"]) is None


@pytest.mark.parametrize(
    ("position", "slots", "average", "expected"),
    [
        (1, 1, 240, 240),
        (3, 1, 240, 720),
        (3, 2, 240, 360),
        (4, 0, 100, 400),
        (0, 3, 240, 0),
        (5, 3, 100, 167),
        (1, 6, 240, 40),
    ],
)
def test_eta_seconds(position: int, slots: int, average: float, expected: int) -> None:
    assert eta_seconds(position, slots, average) == expected


def test_slots_add_up_the_available_agents_capacities_of_the_group() -> None:
    agents = [
        AgentAccount("a", ["账户"], "agent", 3, "available", 0.0),
        AgentAccount("b", ["账户", "信用卡"], "agent", 2, "available", 0.0),
        AgentAccount("c", ["账户"], "agent", 5, "away", 0.0),
        AgentAccount("d", ["信用卡"], "agent", 4, "available", 0.0),
    ]
    assert slots(agents, "账户") == 5
    assert slots(agents, "信用卡") == 6
    assert slots(agents, "贷款") == 0


# --- the router's assignment step on a real queue ---------------------------------------------


def service(config: HandoffConfig, clock: list[float]) -> HandoffService:
    """A service for the router alone: the router uses the store, never the processor."""
    processor: Any = None
    return HandoffService(
        config, HandoffStore.from_url("sqlite://"), processor, clock=lambda: clock[0]
    )


def enqueue(
    store: HandoffStore, conversation: str, group: str, priority: int = 0, at: float = 0.0
) -> Handoff:
    found, created = store.handoffs.enqueue(handoff(conversation, group, priority, at), {})
    assert created
    return found


def available(store: HandoffStore, name: str, groups: list[str], capacity: int = 3) -> None:
    store.agents.add(name, f"{name}-password", groups, capacity=capacity)
    store.agents.set_status(name, "available")


def test_assign_one_serves_priority_then_waiting_time_to_the_least_loaded_agent() -> None:
    clock = [1000.0]
    svc = service(CONFIG, clock)
    store = svc.store
    enqueue(store, "old-low", "账户", 0, at=10.0)
    enqueue(store, "new-high", "账户", 2, at=20.0)
    enqueue(store, "card", "信用卡", 0, at=5.0)
    assert svc.router.assign_one() is None  # nobody is available
    available(store, "alice", ["账户"], capacity=2)
    available(store, "bob", ["账户"], capacity=2)
    first = svc.router.assign_one()
    assert first is not None and first.conversation_id == "new-high"
    assert first.status == "assigned" and first.assigned_at == 1000.0
    second = svc.router.assign_one()
    assert second is not None and second.conversation_id == "old-low"
    assert {first.agent, second.agent} == {"alice", "bob"}  # spread, not stacked
    assert svc.router.assign_one() is None  # 信用卡 has no agent
    assert [h.conversation_id for h in store.handoffs.waiting()] == ["card"]


def test_assign_one_respects_capacity() -> None:
    svc = service(CONFIG, [0.0])
    for i in range(3):
        enqueue(svc.store, f"c{i}", "账户", at=float(i))
    available(svc.store, "alice", ["账户"], capacity=2)
    assert svc.router.assign_one() is not None and svc.router.assign_one() is not None
    assert svc.router.assign_one() is None
    assert svc.store.handoffs.loads() == {"alice": 2}


def test_assign_one_is_not_blocked_by_a_backlog_of_another_group() -> None:
    """A free 信用卡 agent gets the waiting 信用卡 customer even when more than 200
    higher-priority conversations of a group without free agents are ahead in the queue."""
    svc = service(CONFIG, [10_000.0])
    for i in range(201):
        enqueue(svc.store, f"loan-{i}", "贷款", priority=1, at=float(i))
    enqueue(svc.store, "card-1", "信用卡", priority=0, at=1.0)
    available(svc.store, "bob", ["信用卡"])
    found = svc.router.assign_one()
    assert found is not None and found.conversation_id == "card-1" and found.agent == "bob"


def test_assign_some_fills_every_free_slot_in_serving_order_and_spreads_the_load() -> None:
    svc = service(CONFIG, [500.0])
    for i in range(10):
        enqueue(svc.store, f"a{i}", "账户", priority=i % 2, at=float(i))
    available(svc.store, "alice", ["账户"], capacity=3)
    available(svc.store, "bob", ["账户"], capacity=2)
    done = svc.router.assign_some(50)
    assert len(done) == 5  # every slot, not one more
    assert svc.store.handoffs.loads() == {"alice": 3, "bob": 2}
    # priority 1 (odd numbers) first, each by waiting time, then priority 0
    assert [h.conversation_id for h in done] == ["a1", "a3", "a5", "a7", "a9"]
    agents = [h.agent for h in done]
    assert agents[:2] in (["alice", "bob"], ["bob", "alice"])  # spread, not stacked
    waiting = svc.store.handoffs.waiting()
    assert [h.conversation_id for h in waiting] == ["a0", "a2", "a4", "a6", "a8"]
    assert svc.router.assign_some(50) == []


def test_assign_some_stops_at_its_limit_and_copes_with_a_rival_router(tmp_path: Any) -> None:
    """Another process's router takes conversations meanwhile: the store refuses what is
    gone or over capacity, and this router re-reads the loads instead of overfilling."""
    url = f"sqlite:///{tmp_path}/q.db"
    processor: Any = None
    mine = HandoffService(CONFIG, HandoffStore.from_url(url), processor, clock=lambda: 1.0)
    rival = HandoffStore.from_url(url)
    for i in range(6):
        enqueue(mine.store, f"c{i}", "账户", at=float(i))
    available(mine.store, "alice", ["账户"], capacity=4)
    assert len(mine.router.assign_some(2)) == 2
    # the rival fills alice's third slot
    rival.handoffs.assign(rival.handoffs.waiting()[0].id, "alice", 2.0)
    original_loads = mine.store.handoffs.loads
    # a read from before the rival's assignment, every time: only the store's check is left
    mine.store.handoffs.loads = lambda: {"alice": 2}  # type: ignore[method-assign]
    stale = mine.router.assign_some(50)
    mine.store.handoffs.loads = original_loads  # type: ignore[method-assign]
    assert len(stale) == 1 and mine.store.handoffs.loads() == {"alice": 4}
    assert len(mine.store.handoffs.waiting()) == 2


def test_available_agents_come_with_their_loads_in_one_read() -> None:
    store = HandoffStore.from_url("sqlite://")
    available(store, "alice", ["账户"], capacity=3)
    available(store, "bob", ["账户"], capacity=2)
    store.agents.add("carol", "carol-password", ["账户"])  # away: not available
    for i in range(3):
        enqueue(store, f"c{i}", "账户", at=float(i))
    first, second, third = store.handoffs.waiting()
    store.handoffs.assign(first.id, "alice", 1.0)
    store.handoffs.accept(second.id, "alice", 2.0)
    store.handoffs.assign(third.id, "bob", 3.0)
    store.handoffs.close(third.id, "bob", "resolved", 4.0)  # closed: no longer a load
    agents, loads = store.agents.available_with_loads()
    assert [a.username for a in agents] == ["alice", "bob"]
    assert loads == {"alice": 2}
    assert loads == {k: v for k, v in store.handoffs.loads().items() if k in ("alice", "bob")}
