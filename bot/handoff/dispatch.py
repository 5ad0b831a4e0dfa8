"""The router: reserves waiting conversations for free agents (auto-assignment) and tells
waiting customers their place in the queue (live page, push channels)."""

from __future__ import annotations

import asyncio
from typing import Any

from bot.handoff import responses, routing
from bot.handoff.context import HandoffContext, Sender, minutes
from bot.handoff.records import AgentAccount, Handoff

DISPATCH_BATCH = 50  # assignments per blocking call of the router
TELL_STEP = 3  # a push channel hears its new position when it moved up at least this much


class Router:
    def __init__(self, ctx: HandoffContext) -> None:
        self.ctx = ctx
        self.db = ctx.store  # the handoff tables
        self._lock = asyncio.Lock()

    async def dispatch(self) -> list[Handoff]:
        """Reserve waiting conversations for free agents (auto-assignment); what was assigned."""
        assigned: list[Handoff] = []
        if not self.ctx.config.auto_assign:
            return assigned
        async with self._lock:
            while True:  # in batches, so other work on the loop or the store gets a turn
                found = await self.ctx.run(self.assign_some, DISPATCH_BATCH)
                assigned += found
                if len(found) < DISPATCH_BATCH:
                    break
        for handoff in assigned:
            await self.ctx.bus.publish(
                f"agent:{handoff.agent}", "assigned", {"handoff": await self.ctx.item(handoff)}
            )
            await self.ctx.run(
                self.db.audit.record,
                "router",
                "assign",
                handoff.conversation_id,
                handoff.id,
                {"agent": handoff.agent},
            )
        if assigned:
            await self.ctx.bus.publish("queue", "queue", {})
            await self.notify_positions()
        return assigned

    def assign_one(self) -> Handoff | None:
        """One assignment (blocking), agents and loads read afresh: what a newly queued
        customer or a newly free agent costs."""
        found = self.assign_some(1)
        return found[0] if found else None

    def assign_some(self, limit: int, attempts: int = 5) -> list[Handoff]:
        """Up to ``limit`` assignments (blocking): each time the best waiting conversation of
        the groups that have a free agent, to that group's least-loaded free agent. Agents and
        loads are read once and then kept up to date here; the store still checks capacity on
        every assignment, so a stale count can only cost a refused attempt. When another
        process took the conversation or the agent filled up, the loads are read again."""
        store = self.ctx.store
        available, loads = store.agents.available_with_loads()
        if not available:
            return []
        done: list[Handoff] = []
        misses = 0
        while len(done) < limit and misses < attempts:
            free = [a for a in available if loads.get(a.username, 0) < a.capacity]
            groups = sorted({g for a in free for g in a.groups})
            if not groups:
                break
            handoff = store.handoffs.next_waiting(groups)
            if handoff is None:
                break
            agent = routing.pick_agent(free, loads, handoff.group)
            if agent is None:  # cannot happen: some free agent has this group
                break
            now = self.ctx.clock()
            taken = store.handoffs.assign(handoff.id, agent.username, now)
            if taken is None:
                misses += 1
                loads = store.handoffs.loads()
                continue
            loads[agent.username] = loads.get(agent.username, 0) + 1
            agent.last_assigned_at = now  # the next tie goes to someone else
            done.append(taken)
        return done

    async def notify_positions(self) -> None:
        """Tell every waiting customer their place in the queue: on the live page at every
        change; on a push channel (WeChat's customer-service API, with its quota) only when
        they become next, moved up at least :data:`TELL_STEP` places since they were last
        told, or have waited ``max_wait_seconds`` (then once, with the offer to leave a
        message). The store's conditional updates make one worker the one who pushes."""
        waiting: list[Handoff] = await self.ctx.run(self.db.handoffs.waiting, None, 1000)
        agents: list[AgentAccount] = await self.ctx.run(self.db.agents.all)
        by_group: dict[str, int] = {}
        average: dict[str, float] = {}  # measured per group, as in the reply to a message
        now = self.ctx.clock()
        for handoff in waiting:
            by_group[handoff.group] = by_group.get(handoff.group, 0) + 1
            position = by_group[handoff.group]
            if handoff.group not in average:
                measured = await self.ctx.run(
                    self.db.handoffs.average_handle_seconds, handoff.group
                )
                average[handoff.group] = measured or self.ctx.config.average_handle_seconds
            eta = routing.eta_seconds(
                position, routing.slots(agents, handoff.group), average[handoff.group]
            )
            can_leave = now - handoff.enqueued_at >= self.ctx.config.max_wait_seconds
            await self.ctx.bus.publish(
                f"conversation:{handoff.conversation_id}",
                "queue",
                {
                    "status": "waiting",
                    "position": position,
                    "eta_seconds": eta,
                    "can_leave_message": can_leave,
                },
            )
            sender = self.ctx.senders.get(handoff.channel or "")
            if sender is not None:
                await self._tell_by_push(sender, handoff, position, eta, can_leave)

    async def _tell_by_push(
        self, sender: Sender, handoff: Handoff, position: int, eta: int, can_leave: bool
    ) -> None:
        told = handoff.told_position
        lines: list[str] = []
        moved = told is None or (
            position < told and (position == 1 or told - position >= TELL_STEP)
        )
        if moved and await self.ctx.run(self.db.handoffs.tell_position, handoff.id, position):
            name = responses.PUSH_NEXT if position == 1 else responses.PUSH_POSITION
            lines.append(
                self._push_text(
                    name, handoff, **responses.queue_values(handoff.group, position, minutes(eta))
                )
            )
        if can_leave and await self.ctx.run(self.db.handoffs.tell_leave, handoff.id):
            lines.append(self._push_text(responses.PUSH_CAN_LEAVE_MESSAGE, handoff))
        if lines:
            await self.ctx.push(sender, handoff.conversation_id, "\n".join(lines))

    def _push_text(self, name: str, handoff: Handoff, **values: Any) -> str:
        return str(self.ctx.words(name, channel=handoff.channel, **values).get("text") or "")
