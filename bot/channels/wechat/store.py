"""OpenID-to-customer bindings of the WeChat channel: table ``wechat_bindings`` (``openid``
primary key, ``customer_id``, ``bound_at``) through SQLAlchemy.

By default the table lives in the tracker store's database (``endpoints.yml``
``tracker_store``, ``$BOT_DB_URL``; SQLite ``data/bankbot.db`` when nothing is configured), so
every worker and host sees the same bindings; ``channels.wechat.bindings_db`` (or
``$BOT_WECHAT_BINDINGS_DB``) names another database. Filled by ``bot wechat bind``.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Column, Float, MetaData, String, Table, create_engine, delete, select
from sqlalchemy.engine import Engine

from bot.core.schema import create_racing
from bot.errors import BotError

MAX_ID = 64
_metadata = MetaData()
BINDINGS = Table(
    "wechat_bindings",
    _metadata,
    Column("openid", String(MAX_ID), primary_key=True),
    Column("customer_id", String(MAX_ID), nullable=False, index=True),
    Column("bound_at", Float, nullable=False),
)


def check_id(value: str, what: str) -> str:
    value = value.strip()
    if not value or len(value) > MAX_ID or not value.isprintable():
        raise BotError(f"{what} must be 1-{MAX_ID} printable characters, got {value!r}")
    return value


def engine_for(url: str) -> Engine:
    if url.startswith("sqlite:///") and not url.endswith(":memory:"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    return create_engine(url)


class BindingStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        create_racing(lambda: _metadata.create_all(engine, tables=[BINDINGS]))

    @classmethod
    def from_url(cls, url: str) -> BindingStore:
        return cls(engine_for(url))

    def bind(self, openid: str, customer_id: str) -> None:
        openid, customer_id = check_id(openid, "OpenID"), check_id(customer_id, "customer id")
        with self.engine.begin() as conn:
            conn.execute(delete(BINDINGS).where(BINDINGS.c.openid == openid))
            conn.execute(
                BINDINGS.insert().values(
                    openid=openid, customer_id=customer_id, bound_at=time.time()
                )
            )

    def unbind(self, openid: str) -> bool:
        with self.engine.begin() as conn:
            result: Any = conn.execute(delete(BINDINGS).where(BINDINGS.c.openid == openid.strip()))
            return bool(result.rowcount)

    def customer(self, openid: str) -> str | None:
        with self.engine.connect() as conn:
            value = conn.execute(
                select(BINDINGS.c.customer_id).where(BINDINGS.c.openid == openid)
            ).scalar()
        return str(value) if value is not None else None

    def openid_of(self, customer_id: str) -> str | None:
        """The OpenID most recently bound to ``customer_id``."""
        with self.engine.connect() as conn:
            value = conn.execute(
                select(BINDINGS.c.openid)
                .where(BINDINGS.c.customer_id == customer_id)
                .order_by(BINDINGS.c.bound_at.desc())
                .limit(1)
            ).scalar()
        return str(value) if value is not None else None

    def all(self) -> list[tuple[str, str, float]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(BINDINGS.c.openid, BINDINGS.c.customer_id, BINDINGS.c.bound_at).order_by(
                    BINDINGS.c.openid
                )
            )
            return [(str(r[0]), str(r[1]), float(r[2])) for r in rows]

    async def lookup(self, openid: str) -> str | None:
        """The bound customer id (read on every message: ``bot wechat bind`` in another process
        takes effect at once)."""
        return await asyncio.to_thread(self.customer, openid)
