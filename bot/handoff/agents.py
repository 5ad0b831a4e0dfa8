"""Agents: login (tokens), verification, availability, and the reservations the router
made for them (given back when they go away or do not accept in time)."""

from __future__ import annotations

import logging
from typing import Any

import jwt

from bot.handoff.context import HandoffContext
from bot.handoff.dispatch import Router
from bot.handoff.errors import HandoffError
from bot.handoff.records import AgentAccount, Handoff

logger = logging.getLogger(__name__)

DEV_SECRET_REFUSED = (
    "BOT_ENV=production: set BOT_AGENT_SECRET to sign agent tokens (the development "
    "secret is refused, and so is every token signed with it)"
)


class Agents:
    def __init__(self, ctx: HandoffContext, router: Router) -> None:
        self.ctx = ctx
        self.db = ctx.store  # the handoff tables
        self.router = router
        if self.refuses_dev_secret:
            logger.error(
                "agent console closed (every agent endpoint answers 503): %s", DEV_SECRET_REFUSED
            )

    @property
    def refuses_dev_secret(self) -> bool:
        """Production without ``BOT_AGENT_SECRET``: no agent token is issued or accepted."""
        return self.ctx.production and self.ctx.config.uses_dev_secret

    def _check_secret(self) -> None:
        if self.refuses_dev_secret:
            raise HandoffError(503, DEV_SECRET_REFUSED)

    def issue_token(self, agent: AgentAccount) -> str:
        self._check_secret()
        now = int(self.ctx.clock())
        claims = {
            "sub": agent.username,
            "role": agent.role,
            "typ": "agent",
            "iat": now,
            "exp": now + self.ctx.config.token_minutes * 60,
        }
        return jwt.encode(claims, self.ctx.config.secret, algorithm="HS256")

    async def login(self, username: str, password: str) -> tuple[str, AgentAccount]:
        """A token and the account, now available; a failed login (503 without a secret in
        production, 401 for a wrong password) changes nothing but the audit log."""
        self._check_secret()  # before anything is changed
        account: AgentAccount | None = await self.ctx.run(
            self.db.agents.authenticate, username, password
        )
        if account is None:
            await self.ctx.run(self.db.audit.record, username[:64] or "?", "login_failed", None)
            raise HandoffError(401, "wrong username or password")
        token = self.issue_token(account)  # before the agent is made available
        await self.ctx.run(self.db.agents.set_status, account.username, "available")
        account.status = "available"
        await self.ctx.run(self.db.audit.record, account.username, "login", None)
        self.ctx.spawn(self.router.dispatch())
        return token, account

    async def verify(self, token: str) -> AgentAccount:
        self._check_secret()  # a token signed with the public secret proves nothing
        if not token.isascii():
            raise HandoffError(401, "agent token is invalid; log in again")
        try:
            claims = jwt.decode(
                token,
                self.ctx.config.secret,
                algorithms=["HS256"],
                options={"require": ["exp", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise HandoffError(401, "agent token has expired; log in again") from None
        except jwt.PyJWTError:  # any other: malformed, bad signature, unknown 'crit', ...
            raise HandoffError(401, "agent token is invalid; log in again") from None
        if claims.get("typ") != "agent":
            raise HandoffError(401, "not an agent token")
        account: AgentAccount | None = await self.ctx.run(self.db.agents.get, str(claims["sub"]))
        if account is None:
            raise HandoffError(401, "this agent account no longer exists")
        return account

    async def set_status(self, agent: AgentAccount, status: str) -> AgentAccount:
        if status not in ("available", "away"):
            raise HandoffError(400, "status must be 'available' or 'away'")
        await self.ctx.run(self.db.agents.set_status, agent.username, status)
        await self.ctx.run(self.db.audit.record, agent.username, f"status_{status}", None)
        agent.status = status
        released = status == "away" and await self._release_reservations(agent)
        if released:
            await self.ctx.bus.publish("queue", "queue", {})
            await self.router.notify_positions()
        if status == "available" or released:  # released: for another agent
            self.ctx.spawn(self.router.dispatch())
        return agent

    async def expire_reservations(self) -> list[Handoff]:
        """Reservations not accepted within ``queue.reservation_seconds`` (the agent's console
        is gone, or they are not at their desk) go back to the queue, and the agent is set
        away so the router stops reserving for them; what went back. Run by the queue tick."""
        seconds = self.ctx.config.reservation_seconds
        if seconds <= 0:
            return []
        stale: list[Handoff] = await self.ctx.run(
            self.db.handoffs.stale_reservations, self.ctx.clock() - seconds
        )
        released: list[Handoff] = []
        for handoff in stale:
            assert handoff.agent is not None
            back = await self.ctx.run(self.db.handoffs.release, handoff.id, handoff.agent)
            if back is None:  # accepted or moved meanwhile (or another worker was first)
                continue
            released.append(back)
            await self.ctx.run(self.db.agents.set_status, handoff.agent, "away")
            await self.ctx.run(
                self.db.audit.record,
                "router",
                "reservation_expired",
                handoff.conversation_id,
                handoff.id,
                {"agent": handoff.agent},
            )
            await self.ctx.bus.publish(f"agent:{handoff.agent}", "status", {"status": "away"})
        if released:
            await self.ctx.bus.publish("queue", "queue", {})
        return released

    async def _release_reservations(self, agent: AgentAccount) -> bool:
        """An agent going away (or logging out) gives back what the router reserved for them
        and they have not accepted, so those customers do not wait for nobody."""
        released = False
        for handoff in await self.ctx.run(self.db.handoffs.open_for_agent, agent.username):
            if handoff.status != "assigned":
                continue
            if await self.ctx.run(self.db.handoffs.release, handoff.id, agent.username) is not None:
                await self.ctx.run(
                    self.db.audit.record,
                    agent.username,
                    "release",
                    handoff.conversation_id,
                    handoff.id,
                )
                released = True
        return released

    async def me(self, agent: AgentAccount) -> dict[str, Any]:
        loads = await self.ctx.run(self.db.handoffs.loads)
        return {
            "username": agent.username,
            "role": agent.role,
            "groups": agent.groups,
            "capacity": agent.capacity,
            "load": loads.get(agent.username, 0),
            "status": agent.status,
        }
