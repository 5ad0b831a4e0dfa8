"""What agents and supervisors do with conversations: the queue, accept, read the context
packet and messages, reply, note, suggestions, transfer, close, the supervisor's overview.
Every step is written to the audit log."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.core import events as ev
from bot.handoff import responses
from bot.handoff.context import HandoffContext
from bot.handoff.dispatch import Router
from bot.handoff.errors import HandoffError
from bot.handoff.packet import build_packet, transcript
from bot.handoff.records import AgentAccount, Handoff
from bot.privacy import mask_text

MAX_NOTE_CHARS = 2000


class Operations:
    def __init__(self, ctx: HandoffContext, router: Router) -> None:
        self.ctx = ctx
        self.db = ctx.store  # the handoff tables
        self.router = router

    async def queue(self, agent: AgentAccount) -> dict[str, Any]:
        groups = None if agent.supervisor else agent.groups
        waiting = await self.ctx.run(self.db.handoffs.waiting, groups, 500)
        mine = await self.ctx.run(self.db.handoffs.open_for_agent, agent.username)
        by_group: dict[str, int] = {}
        items = []
        for handoff in waiting:  # positions from the one ordered list, not a query each
            by_group[handoff.group] = by_group.get(handoff.group, 0) + 1
            items.append(await self.ctx.item(handoff, by_group[handoff.group]))
        return {"waiting": items, "mine": [await self.ctx.item(h) for h in mine]}

    async def _visible(
        self, agent: AgentAccount, conversation_id: str, statuses: Sequence[str] | None = None
    ) -> Handoff:
        handoff = await self.ctx.store_latest(conversation_id)
        if handoff is None:
            raise HandoffError(404, f"conversation {conversation_id!r} has no handoff")
        if not agent.may_see(handoff):
            raise HandoffError(
                403,
                "this conversation is neither assigned to you nor waiting in one of your groups",
            )
        if statuses is not None and handoff.status not in statuses:
            raise HandoffError(
                409, f"the conversation is {handoff.status}, not {' or '.join(statuses)}"
            )
        return handoff

    async def _mine(self, agent: AgentAccount, conversation_id: str) -> Handoff:
        handoff = await self._visible(agent, conversation_id, ("assigned", "active"))
        if handoff.agent != agent.username:
            raise HandoffError(409, f"the conversation is handled by {handoff.agent}")
        return handoff

    async def accept(self, agent: AgentAccount, conversation_id: str) -> dict[str, Any]:
        handoff = await self._visible(agent, conversation_id, ("waiting", "assigned", "active"))
        if handoff.status == "active":
            if handoff.agent == agent.username:
                return await self.ctx.item(handoff)
            raise HandoffError(409, f"the conversation is handled by {handoff.agent}")
        if handoff.status == "assigned" and handoff.agent != agent.username:
            raise HandoffError(409, f"the conversation is reserved for {handoff.agent}")
        loads = await self.ctx.run(self.db.handoffs.loads)
        if handoff.status == "waiting" and loads.get(agent.username, 0) >= agent.capacity:
            raise HandoffError(
                409,
                f"you have {agent.capacity} conversations already (your capacity); close one first",
            )
        accepted = await self.ctx.run(
            self.db.handoffs.accept, handoff.id, agent.username, self.ctx.clock()
        )
        if accepted is None:
            raise HandoffError(409, "another agent took this conversation first")
        await self.ctx.run(
            self.db.audit.record, agent.username, "accept", conversation_id, handoff.id
        )
        accepted_words = self.ctx.words(responses.ACCEPTED, channel=handoff.channel)
        accepted_words["metadata"].update({"agent": agent.username, "handoff": "accepted"})
        await self.ctx.to_customer(conversation_id, accepted_words)
        await self.ctx.bus.publish(
            f"conversation:{conversation_id}",
            "queue",
            {"status": "active", "position": 0, "eta_seconds": 0},
        )
        await self.ctx.bus.publish("queue", "queue", {})
        await self.router.notify_positions()
        return await self.ctx.item(accepted)

    async def context(self, agent: AgentAccount, conversation_id: str) -> dict[str, Any]:
        """The packet, refreshed with the transcript and suggestions as they are now."""
        handoff = await self._visible(agent, conversation_id)
        stored: dict[str, Any] = await self.ctx.run(self.db.handoffs.packet, handoff.id) or {}
        tracker = await self.ctx.processor.get_tracker(conversation_id)
        profile = await self.ctx.profile(handoff.customer_id)
        packet = build_packet(
            handoff, tracker.events, dict(tracker.slots), profile, self.ctx.search
        )
        packet["knowledge_tried"] = stored.get("knowledge_tried", packet["knowledge_tried"])
        packet["status"] = handoff.status
        packet["agent"] = handoff.agent
        packet["notes"] = [
            {"at": n["at"], "agent": n["actor"], "text": n["detail"].get("text")}
            for n in await self.ctx.run(self.db.audit.log, conversation_id, ["note"])
        ]
        await self.ctx.run(
            self.db.audit.record, agent.username, "view_context", conversation_id, handoff.id
        )
        return packet

    async def messages(
        self, agent: AgentAccount, conversation_id: str, after: int = 0
    ) -> list[dict[str, Any]]:
        await self._visible(agent, conversation_id)
        tracker = await self.ctx.processor.get_tracker(conversation_id)
        return transcript(tracker.events)[after:]

    async def send(self, agent: AgentAccount, conversation_id: str, text: str) -> dict[str, Any]:
        handoff = await self._mine(agent, conversation_id)
        if handoff.status == "assigned":  # replying is accepting
            await self.accept(agent, conversation_id)
        await self.ctx.to_customer(conversation_id, ev.bot(text, {}, {"agent": agent.username}))
        await self.ctx.run(
            self.db.audit.record,
            agent.username,
            "message",
            conversation_id,
            handoff.id,
            {"chars": len(text)},
        )
        return {
            "from": "agent",
            "agent": agent.username,
            "text": mask_text(text),
            "at": self.ctx.clock(),
        }

    async def note(self, agent: AgentAccount, conversation_id: str, text: str) -> dict[str, Any]:
        handoff = await self._visible(agent, conversation_id)
        now = self.ctx.clock()
        masked = mask_text(text)[:MAX_NOTE_CHARS]
        await self.ctx.run(
            self.db.audit.record,
            agent.username,
            "note",
            conversation_id,
            handoff.id,
            {"text": masked},
            now,
        )
        return {"at": now, "agent": agent.username, "text": masked}

    async def suggestions(
        self, agent: AgentAccount, conversation_id: str, query: str | None
    ) -> list[dict[str, Any]]:
        await self._visible(agent, conversation_id)
        if not query:
            tracker = await self.ctx.processor.get_tracker(conversation_id)
            query = next(
                (
                    str(e.get("text") or "")
                    for e in reversed(tracker.events)
                    if e.get("event") == "user" and not str(e.get("text") or "").startswith("/")
                ),
                "",
            )
        if not query or self.ctx.search is None:
            return []
        return [
            {"id": i, "question": q, "answer": a, "category": c, "score": round(s, 3)}
            for i, q, a, c, s in self.ctx.search(query)[:5]
        ]

    async def transfer(
        self, agent: AgentAccount, conversation_id: str, group: str
    ) -> dict[str, Any]:
        if self.ctx.config.group(group) is None:
            raise HandoffError(
                400, f"unknown group {group!r}; groups: {', '.join(self.ctx.config.group_names)}"
            )
        handoff = await self._visible(agent, conversation_id, ("waiting", "assigned", "active"))
        owner = None if agent.supervisor or handoff.status == "waiting" else agent.username
        if owner is not None and handoff.agent != agent.username:
            raise HandoffError(409, f"the conversation is handled by {handoff.agent}")
        # an agent moves a waiting conversation only while it still waits (not once a
        # colleague took it); a supervisor moves any open one
        statuses = None if agent.supervisor or owner is not None else ("waiting",)
        moved = await self.ctx.run(
            self.db.handoffs.transfer, handoff.id, owner, group, self.ctx.clock(), statuses
        )
        if moved is None:
            raise HandoffError(409, "the conversation changed meanwhile; reload the queue")
        await self.ctx.run(
            self.db.audit.record,
            agent.username,
            "transfer",
            conversation_id,
            handoff.id,
            {"from": handoff.group, "to": group},
        )
        await self.ctx.to_customer(
            conversation_id,
            self.ctx.words(responses.TRANSFERRED, channel=handoff.channel, group=group),
        )
        await self.ctx.bus.publish("queue", "queue", {"group": group})
        await self.router.notify_positions()  # the customer's page: waiting again, at this place
        self.ctx.spawn(self.router.dispatch())
        return await self.ctx.item(moved)

    async def close(
        self, agent: AgentAccount, conversation_id: str, resolution: str
    ) -> dict[str, Any]:
        if resolution not in self.ctx.config.resolutions:
            raise HandoffError(
                400, f"resolution must be one of {', '.join(self.ctx.config.resolutions)}"
            )
        handoff = await self._visible(agent, conversation_id, ("waiting", "assigned", "active"))
        owner = None if agent.supervisor else agent.username
        if owner is not None and handoff.agent != agent.username:
            raise HandoffError(
                409, "only the agent handling the conversation (or a supervisor) can close it"
            )
        closed = await self.ctx.run(
            self.db.handoffs.close, handoff.id, owner, resolution, self.ctx.clock()
        )
        if closed is None:
            raise HandoffError(409, "the conversation changed meanwhile; reload")
        await self.ctx.run(
            self.db.audit.record,
            agent.username,
            "close",
            conversation_id,
            handoff.id,
            {"resolution": resolution},
        )
        await self.ctx.resume(conversation_id)
        closed_words = self.ctx.words(responses.CLOSED, channel=closed.channel)
        closed_words["metadata"]["handoff"] = "closed"
        await self.ctx.to_customer(conversation_id, closed_words)
        await self.ctx.bus.publish(
            f"conversation:{conversation_id}",
            "queue",
            {"status": "closed", "position": 0, "eta_seconds": 0},
        )
        for name in dict.fromkeys(n for n in (closed.agent, agent.username) if n):
            # the agent handling it (when a supervisor closed it) and whoever closed it
            await self.ctx.bus.publish(
                f"agent:{name}", "closed", {"conversation_id": conversation_id}
            )
        await self.ctx.bus.publish("queue", "queue", {})
        self.ctx.spawn(self.router.dispatch())
        return await self.ctx.item(closed)

    async def supervisor(self, agent: AgentAccount) -> dict[str, Any]:
        if not agent.supervisor:
            raise HandoffError(403, "supervisors only")
        now = self.ctx.clock()
        overview = await self.ctx.run(self.db.handoffs.groups_overview, now)
        agents = await self.ctx.run(self.db.agents.all)
        loads = await self.ctx.run(self.db.handoffs.loads)
        return {
            "groups": [
                {
                    "name": g,
                    "waiting": overview.get(g, (0, 0.0))[0],
                    "longest_wait_s": round(overview.get(g, (0, 0.0))[1], 1),
                    "agents_available": sum(
                        a.status == "available" and g in a.groups for a in agents
                    ),
                }
                for g in self.ctx.config.group_names
            ],
            "agents": [
                {
                    "username": a.username,
                    "status": a.status,
                    "role": a.role,
                    "load": loads.get(a.username, 0),
                    "capacity": a.capacity,
                    "groups": a.groups,
                }
                for a in agents
            ],
        }

    def public_config(self) -> dict[str, Any]:
        config = self.ctx.config
        return {
            "groups": config.group_names,
            "resolutions": list(config.resolutions),
            "canned_replies": [{"title": t, "text": x} for t, x in config.canned_replies],
        }
