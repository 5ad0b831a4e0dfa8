"""Which skill group and priority a conversation gets, and which agent takes it. Pure
functions of their arguments (no I/O), so the queue can call them inside a transaction and the
benchmark can time them alone."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.handoff.config import HandoffConfig
from bot.handoff.records import AgentAccount, Handoff


@dataclass(frozen=True)
class Profile:
    """What routing needs of the customer (from the core-banking backend)."""

    customer_id: str
    name: str
    age: int | None = None
    vip: bool = False


@dataclass(frozen=True)
class Route:
    group: str
    priority: int


def route(
    config: HandoffConfig,
    intent: str | None,
    entities: Iterable[Mapping[str, Any]],
    category: str | None,
    profile: Profile | None,
    *,
    complaint: bool = False,
    group: str | None = None,
    extra_priority: int = 0,
) -> Route:
    """The group: an explicit ``group`` (a business rule), else the elderly line for older
    customers, else by intent, then entities, then the knowledge category of what the bot
    tried, else the default group. The priority adds up complaint, age and VIP."""
    p = config.priorities
    elderly = profile is not None and profile.age is not None and profile.age >= p.elderly_age
    chosen = group
    if chosen is None and elderly and config.elderly_group:
        chosen = config.elderly_group
    if chosen is None and intent is not None:
        chosen = config.intent_groups.get(intent)
    if chosen is None:
        for entity in entities:
            by_value = config.entity_groups.get(str(entity.get("entity")))
            if by_value and str(entity.get("value")) in by_value:
                chosen = by_value[str(entity.get("value"))]
                break
    if chosen is None and category is not None:
        chosen = config.category_groups.get(category)
    priority = extra_priority
    if complaint or intent == "complain":
        priority += p.complaint
    if elderly:
        priority += p.elderly
    if profile is not None and profile.vip:
        priority += p.vip
    return Route(chosen or config.default_group, priority)


def pick_agent(
    agents: Sequence[AgentAccount], loads: Mapping[str, int], group: str
) -> AgentAccount | None:
    """The available agent of ``group`` with spare capacity and the least load (ties: the one
    who got a conversation longest ago)."""
    best: AgentAccount | None = None
    best_key: tuple[float, float] | None = None
    for agent in agents:
        if agent.status != "available" or group not in agent.groups:
            continue
        load = loads.get(agent.username, 0)
        if load >= agent.capacity:
            continue
        key = (load / agent.capacity, agent.last_assigned_at)
        if best_key is None or key < best_key:
            best, best_key = agent, key
    return best


def pick_handoff(waiting: Sequence[Handoff], groups: Iterable[str]) -> Handoff | None:
    """For a free agent: the highest-priority, longest-waiting conversation of their groups
    (``waiting`` in the store's serving order)."""
    allowed = set(groups)
    return next((h for h in waiting if h.group in allowed), None)


def eta_seconds(position: int, slots: int, average_handle_seconds: float) -> int:
    """Rough wait for the customer at ``position``: the group's ``slots`` (the capacities of
    its available agents added up) are all taken while anyone waits, and one frees up every
    ``average_handle_seconds / slots`` on average, so ``position`` of them must free up. With
    no agent available the group counts as one slot."""
    return round(position * average_handle_seconds / max(1, slots))


def slots(agents: Iterable[AgentAccount], group: str) -> int:
    """Concurrent conversations the available agents of ``group`` take in all."""
    return sum(a.capacity for a in agents if a.status == "available" and group in a.groups)
