"""HandoffService's queue updates on a push channel (WeChat): milestones only, once, even
with several workers on one store. The web page's live updates are in test_handoff_api.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.handoff.config import parse
from bot.handoff.records import Handoff, new_id
from bot.handoff.service import HandoffService
from bot.handoff.store import HandoffStore

CONFIG = parse(
    {
        "groups": ["账户"],
        "routing": {"default_group": "账户"},
        "queue": {"max_wait_seconds": 300, "average_handle_seconds": 240},
    }
)


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def worker(url: str, clock: Clock, pushed: list[tuple[str, str]]) -> HandoffService:
    """One server process's service (the router and queue updates never use the processor)."""
    processor: Any = None
    service = HandoffService(CONFIG, HandoffStore.from_url(url), processor, clock=clock)

    async def push(conversation_id: str, text: str) -> None:
        pushed.append((conversation_id, text))

    service.senders["wechat"] = push
    return service


def queue(store: HandoffStore, conversation: str, channel: str, at: float) -> Handoff:
    handoff, created = store.handoffs.enqueue(
        Handoff(
            new_id(),
            conversation,
            channel,
            None,
            None,
            "账户",
            0,
            "customer_request",
            None,
            "waiting",
            at,
        ),
        {},
    )
    assert created
    return handoff


async def test_wechat_customers_hear_milestones_once_across_workers(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/q.db"
    clock = Clock(1000.0)
    pushed: list[tuple[str, str]] = []
    first, second = worker(url, clock, pushed), worker(url, clock, pushed)
    store = first.store
    for i in range(8):
        h = queue(store, f"wechat:o{i}", "wechat", at=990.0 + i)
        store.handoffs.tell_position(h.id, i + 1, True)  # what the queue reply told them
    page = queue(store, "web-1", "rest", at=999.5)  # the page has live events, no pushes
    store.handoffs.tell_position(page.id, 9, True)

    for service in (first, second):  # nobody moved: nothing to say
        await service.notify_positions()
    assert pushed == []

    store.agents.add("alice", "alice-password", ["账户"], capacity=3)
    store.agents.set_status("alice", "available")
    assert len(first.router.assign_some(10)) == 3  # o0, o1, o2 leave the queue
    for service in (first, second, first):
        await service.notify_positions()
    # o3 is next now; o4..o7 moved up 3 places; the web customer never gets a push
    assert sorted(pushed) == sorted(
        [
            ("wechat:o3", "您是下一位，客服马上为您接入。"),
            # position i - 2 of a group with 3 chat slots: (i - 2) × 240 s / 3
            *[
                (
                    f"wechat:o{i}",
                    f"排队进展：您前面还有{i - 3}位客户，预计等待约"
                    f"{max(1, round((i - 2) * 80 / 60))}分钟。",
                )
                for i in range(4, 8)
            ],
        ]
    )
    pushed.clear()

    store.handoffs.close(store.handoffs.open_for_agent("alice")[0].id, "alice", "resolved", 1001.0)
    assert len(first.router.assign_some(10)) == 1  # o3 is served; the rest move up one place
    for service in (second, first):
        await service.notify_positions()
    assert pushed == [("wechat:o4", "您是下一位，客服马上为您接入。")]  # 1 place: only the new next
    pushed.clear()

    clock.now = 990.0 + 5 + 300  # o5 (queued at 995) has now waited max_wait_seconds
    for service in (first, second):
        await service.notify_positions()
    offers = [c for c, text in pushed if "回复“留言”" in text]
    assert sorted(offers) == ["wechat:o4", "wechat:o5"]  # o6 and o7 came later
    assert all(c != "web-1" for c, _ in pushed)
    pushed.clear()
    for service in (first, second):
        await service.notify_positions()
    assert pushed == []  # each offer once


async def test_pushed_waits_use_the_measured_handling_time(tmp_path: Path) -> None:
    """The estimate a WeChat customer is pushed agrees with the one in the reply to their
    own message: the group's measured average once chats have been closed."""
    clock = Clock(2000.0)
    pushed: list[tuple[str, str]] = []
    service = worker(f"sqlite:///{tmp_path}/q.db", clock, pushed)
    store = service.store
    store.agents.add("alice", "alice-password", ["账户"], capacity=1)
    store.agents.set_status("alice", "available")
    for i in range(2):  # two chats of 60 s each
        done = queue(store, f"done-{i}", "rest", at=1000.0 + i)
        store.handoffs.accept(done.id, "alice", 1100.0)
        store.handoffs.close(done.id, "alice", "resolved", 1160.0)
    assert store.handoffs.average_handle_seconds("账户") == 60.0
    for i in range(5):
        h = queue(store, f"wechat:m{i}", "wechat", at=1990.0 + i)
        store.handoffs.tell_position(h.id, 9, True)  # told a worse place before
    await service.notify_positions()
    # position p of a group with 1 slot: p × 60 s → whole minutes
    assert ("wechat:m4", "排队进展：您前面还有4位客户，预计等待约5分钟。") in pushed
    assert ("wechat:m1", "排队进展：您前面还有1位客户，预计等待约2分钟。") in pushed


async def test_a_reservation_nobody_accepts_goes_back_and_the_agent_is_set_away(
    tmp_path: Path,
) -> None:
    """An agent's console died while they were 'available': after reservation_seconds the
    customers are served by someone else instead of waiting for nobody."""
    url = f"sqlite:///{tmp_path}/q.db"
    clock = Clock(1000.0)
    first, second = worker(url, clock, []), worker(url, clock, [])
    store = first.store
    for name in ("gone", "here"):
        store.agents.add(name, f"{name}-password", ["账户"], capacity=1)
    store.agents.set_status("gone", "available")
    waiting = [queue(store, f"r{i}", "rest", at=990.0 + i) for i in range(2)]
    assert [h.agent for h in first.router.assign_some(10)] == ["gone"]
    clock.now = 1000.0 + CONFIG.reservation_seconds - 1
    assert await first.expire_reservations() == []  # not yet
    store.agents.set_status("here", "available")
    store.handoffs.accept(waiting[1].id, "here", clock.now)  # here is busy with r1
    clock.now = 1000.0 + CONFIG.reservation_seconds + 1
    back = [h.conversation_id for h in await first.expire_reservations()]
    assert back == ["r0"] and await second.expire_reservations() == []  # once
    assert store.agents.get("gone").status == "away"  # type: ignore[union-attr]
    assert store.handoffs.latest("r0").status == "waiting"  # type: ignore[union-attr]
    assert [e["actor"] for e in store.audit.log("r0", ["reservation_expired"])] == ["router"]
    store.handoffs.close(waiting[1].id, "here", "resolved", clock.now)
    assert [h.agent for h in first.router.assign_some(10)] == ["here"]  # not gone again
