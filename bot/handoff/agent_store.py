"""Agents: the ``handoff_agents`` table (accounts, scrypt password hashes, groups, capacity,
availability). Blocking calls."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Engine

from bot.errors import BotError
from bot.handoff.records import AgentAccount, check_name
from bot.handoff.tables import AGENTS, BUSY, HANDOFFS, ROLES


def hash_password(password: str) -> str:
    """scrypt (n=2^14, r=8, p=1) with a random salt, as ``scrypt$n$r$p$salt$hash``."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    return f"scrypt$16384$8$1${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        given = hashlib.scrypt(
            password.encode(),
            salt=bytes.fromhex(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(digest) // 2,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(given.hex(), digest)


def agent_of(row: Any) -> AgentAccount:
    m = row._mapping
    return AgentAccount(
        m["username"],
        json.loads(m["groups"]),
        m["role"],
        m["capacity"],
        m["status"],
        m["created_at"],
        m["last_assigned_at"],
    )


class AgentStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(
        self,
        username: str,
        password: str,
        groups: Sequence[str],
        role: str = "agent",
        capacity: int = 3,
    ) -> AgentAccount:
        username = check_name(username, "username")
        if len(password) < 8:
            raise BotError("the password must have at least 8 characters")
        if role not in ROLES:
            raise BotError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
        if capacity < 1:
            raise BotError("capacity must be at least 1")
        clean = [check_name(g, "group") for g in groups if g.strip()]
        if not clean:
            raise BotError("an agent needs at least one group")
        now = time.time()
        with self.engine.begin() as conn:
            if conn.execute(select(AGENTS.c.username).where(AGENTS.c.username == username)).first():
                raise BotError(f"agent {username!r} exists already (remove it first)")
            conn.execute(
                insert(AGENTS).values(
                    username=username,
                    password_hash=hash_password(password),
                    groups=json.dumps(clean, ensure_ascii=False),
                    role=role,
                    capacity=capacity,
                    status="away",
                    created_at=now,
                    last_assigned_at=0.0,
                )
            )
        return AgentAccount(username, clean, role, capacity, "away", now)

    def remove(self, username: str) -> bool:
        with self.engine.begin() as conn:
            return bool(conn.execute(AGENTS.delete().where(AGENTS.c.username == username)).rowcount)

    def all(self) -> list[AgentAccount]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(AGENTS).order_by(AGENTS.c.username)).all()
        return [agent_of(r) for r in rows]

    def get(self, username: str) -> AgentAccount | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(AGENTS).where(AGENTS.c.username == username)).first()
        return agent_of(row) if row else None

    def authenticate(self, username: str, password: str) -> AgentAccount | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(AGENTS).where(AGENTS.c.username == username)).first()
        if row is None:
            check_password(password, hash_password("timing"))  # same time either way
            return None
        return agent_of(row) if check_password(password, row._mapping["password_hash"]) else None

    def set_status(self, username: str, status: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(AGENTS).where(AGENTS.c.username == username).values(status=status))

    def available_with_loads(self) -> tuple[list[AgentAccount], dict[str, int]]:
        """The available agents and their open conversations, in one query (what the router
        reads before assigning)."""
        counts = (
            select(HANDOFFS.c.agent, func.count().label("n"))
            .where(HANDOFFS.c.status.in_(BUSY))
            .group_by(HANDOFFS.c.agent)
            .subquery()
        )
        query = (
            select(AGENTS, func.coalesce(counts.c.n, 0).label("load"))
            .outerjoin(counts, counts.c.agent == AGENTS.c.username)
            .where(AGENTS.c.status == "available")
            .order_by(AGENTS.c.username)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        agents = [agent_of(r) for r in rows]
        return agents, {
            a.username: int(r.load) for a, r in zip(agents, rows, strict=True) if r.load
        }
