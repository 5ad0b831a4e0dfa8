"""What the kf channel keeps in the database (SQLAlchemy; by default the tracker store's, so
every worker and host shares it):

- ``wecom_kf_cursors``: the ``kf/sync_msg`` cursor per ``open_kfid``, advanced only after the
  page's messages are stored, and only from the cursor the page was read with (a worker that
  lost the race does not move it back);
- ``wecom_kf_inbox``: every message by ``msgid`` (the primary key: a message two workers pull
  is stored once) with its status ``pending`` → ``processing`` (one worker's claim) →
  ``done`` / ``failed``, or ``skipped`` (older than the 3-day window);
- ``wecom_kf_sessions``: per (open_kfid, external_userid) the conversation id, the session
  state as last seen, the time of the customer's last message and the messages sent since
  (WeChat's five messages within 48 hours);
- ``wecom_kf_outbox``: messages held back because that budget is used up, sent (merged) when
  the customer writes again;
- ``wecom_kf_bindings``: external_userid → customer id (as ``wechat_bindings`` binds
  OpenIDs).
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    delete,
    event,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from bot.core.schema import create_racing
from bot.errors import BotError

MAX_ID = 128
STALE_CLAIM_SECONDS = 300.0  # a claim older than this (its worker died) is taken again

_metadata = MetaData()
CURSORS = Table(
    "wecom_kf_cursors",
    _metadata,
    Column("open_kfid", String(MAX_ID), primary_key=True),
    Column("cursor", String(255)),
    Column("updated_at", Float, nullable=False),
)
INBOX = Table(
    "wecom_kf_inbox",
    _metadata,
    Column("msgid", String(MAX_ID), primary_key=True),
    Column("open_kfid", String(MAX_ID), nullable=False, index=True),
    Column("external_userid", String(MAX_ID)),
    Column("origin", Integer),
    Column("send_time", Float, nullable=False),
    Column("payload", Text, nullable=False),
    Column("status", String(16), nullable=False, index=True),
    Column("stored_at", Float, nullable=False),
    Column("page_index", Integer, nullable=False, default=0),  # order within the sync page
    Column("claimed_at", Float),
    Column("claimed_by", String(32), index=True),
)
SESSIONS = Table(
    "wecom_kf_sessions",
    _metadata,
    Column("open_kfid", String(MAX_ID), primary_key=True),
    Column("external_userid", String(MAX_ID), primary_key=True),
    Column("conversation_id", String(255), nullable=False, index=True),
    Column("state", Integer),
    Column("servicer_userid", String(64)),
    Column("last_customer_at", Float, nullable=False, default=0.0),
    Column("sent", Integer, nullable=False, default=0),
    Column("updated_at", Float, nullable=False),
)
OUTBOX = Table(
    "wecom_kf_outbox",
    _metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("open_kfid", String(MAX_ID), nullable=False),
    Column("external_userid", String(MAX_ID), nullable=False, index=True),
    Column("body", Text, nullable=False),
    Column("created_at", Float, nullable=False),
)
BINDINGS = Table(
    "wecom_kf_bindings",
    _metadata,
    Column("external_userid", String(MAX_ID), primary_key=True),
    Column("customer_id", String(64), nullable=False, index=True),
    Column("bound_at", Float, nullable=False),
)


@dataclass(frozen=True)
class Session:
    open_kfid: str
    external_userid: str
    conversation_id: str
    state: int | None
    servicer_userid: str | None
    last_customer_at: float
    sent: int


@dataclass(frozen=True)
class Stored:
    msgid: str
    item: dict[str, Any]


def engine_for(url: str) -> Engine:
    """An engine for ``url``; a SQLite file in WAL mode with ``synchronous=NORMAL`` (as the
    tracker store's): a commit does not wait for the disk, a crash loses none."""
    if not (url.startswith("sqlite:///") and not url.endswith(":memory:")):
        return create_engine(url)
    Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 15.0})

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        with contextlib.suppress(Exception):  # another process is switching it right now
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    event.listen(engine, "connect", on_connect)
    return engine


def _check_id(value: str, what: str, limit: int = MAX_ID) -> str:
    value = value.strip()
    if not value or len(value) > limit or not value.isprintable():
        raise BotError(f"{what} must be 1-{limit} printable characters, got {value!r}")
    return value


class KfStore:
    def __init__(self, engine: Engine, clock: Any = time.time) -> None:
        self.engine = engine
        self.clock = clock
        create_racing(lambda: _metadata.create_all(engine))

    @classmethod
    def from_url(cls, url: str) -> KfStore:
        return cls(engine_for(url))

    @property
    def inline(self) -> bool:
        """SQLite statements take microseconds: the channel runs them on its own thread."""
        return self.engine.dialect.name == "sqlite"

    # the cursor
    def cursor(self, open_kfid: str) -> str | None:
        with self.engine.connect() as conn:
            value = conn.execute(
                select(CURSORS.c.cursor).where(CURSORS.c.open_kfid == open_kfid)
            ).scalar()
        return str(value) if value else None

    def advance(self, open_kfid: str, old: str | None, new: str) -> bool:
        """Set the cursor to ``new`` if it is still ``old``; False when another worker moved
        it meanwhile."""
        now = self.clock()
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    CURSORS.insert().values(open_kfid=open_kfid, cursor=None, updated_at=now)
                )
        except IntegrityError:
            pass  # the row exists
        c = CURSORS.c
        condition = c.cursor.is_(None) if old is None else c.cursor == old
        with self.engine.begin() as conn:
            result: Any = conn.execute(
                update(CURSORS)
                .where(c.open_kfid == open_kfid, condition)
                .values(cursor=new, updated_at=now)
            )
            return bool(result.rowcount)

    # the inbox
    def store(self, open_kfid: str, items: list[dict[str, Any]], max_age: float) -> list[str]:
        """Store the page's messages (duplicates ignored; older than ``max_age`` seconds as
        ``skipped``); the msgids that were new."""
        now = self.clock()
        rows: dict[str, dict[str, Any]] = {}
        for index, item in enumerate(items):
            msgid = str(item.get("msgid") or "").strip()
            if not msgid or len(msgid) > MAX_ID:
                continue
            send_time = float(item.get("send_time") or now)
            skipped = now - send_time > max_age  # never handled: its text is not kept
            user = item.get("external_userid") or (item.get("event") or {}).get("external_userid")
            rows[msgid] = {
                "msgid": msgid,
                "open_kfid": open_kfid,
                "external_userid": str(user)[:MAX_ID] if user else None,
                "origin": int(item.get("origin") or 0),
                "send_time": send_time,
                "payload": "{}" if skipped else json.dumps(item, ensure_ascii=False),
                "status": "skipped" if skipped else "pending",
                "stored_at": now,
                "page_index": index,
            }
        if not rows:
            return []
        with self.engine.connect() as conn:
            known = set(
                conn.execute(select(INBOX.c.msgid).where(INBOX.c.msgid.in_(list(rows)))).scalars()
            )
        fresh = [row for msgid, row in rows.items() if msgid not in known]
        if not fresh:
            return []
        try:
            with self.engine.begin() as conn:
                conn.execute(INBOX.insert(), fresh)
            return [row["msgid"] for row in fresh]
        except IntegrityError:  # another worker stored some of them meanwhile: one by one
            added: list[str] = []
            for row in fresh:
                try:
                    with self.engine.begin() as conn:
                        conn.execute(INBOX.insert().values(**row))
                    added.append(row["msgid"])
                except IntegrityError:
                    pass
            return added

    def claim(self, open_kfid: str, limit: int = 100) -> list[Stored]:
        """The pending messages of ``open_kfid`` this worker won, oldest first (and those a
        dead worker claimed more than :data:`STALE_CLAIM_SECONDS` ago). Customers another
        worker is handling now are left to it, so that one customer's messages are handled
        in order."""
        now = self.clock()
        i = INBOX.c
        stale = now - STALE_CLAIM_SECONDS
        busy = (
            select(i.external_userid)
            .where(
                i.open_kfid == open_kfid,
                i.status == "processing",
                i.claimed_at >= stale,
                i.external_userid.is_not(None),
            )
            .scalar_subquery()
        )
        with self.engine.connect() as conn:
            candidates = conn.execute(
                select(i.msgid, i.payload, i.status, i.claimed_at)
                .where(
                    i.open_kfid == open_kfid,
                    (i.status == "pending") | ((i.status == "processing") & (i.claimed_at < stale)),
                    i.external_userid.is_(None) | i.external_userid.not_in(busy),
                )
                .order_by(i.send_time, i.stored_at, i.page_index)
                .limit(limit)
            ).all()
        if not candidates:
            return []
        claim = uuid.uuid4().hex  # one conditional update for the batch, then what it won
        pending = [r[0] for r in candidates if r[2] == "pending"]
        stale_ids = [(r[0], r[3]) for r in candidates if r[2] == "processing"]
        values = {"status": "processing", "claimed_at": now, "claimed_by": claim}
        with self.engine.begin() as conn:
            if pending:
                conn.execute(
                    update(INBOX)
                    .where(i.msgid.in_(pending), i.status == "pending")
                    .values(**values)
                )
            for msgid, claimed_at in stale_ids:
                conn.execute(
                    update(INBOX)
                    .where(i.msgid == msgid, i.status == "processing", i.claimed_at == claimed_at)
                    .values(**values)
                )
            won = set(conn.execute(select(i.msgid).where(i.claimed_by == claim)).scalars())
        return [Stored(str(r[0]), json.loads(r[1])) for r in candidates if r[0] in won]

    def finish(self, msgid: str, status: str = "done") -> None:
        """Mark the message handled; its payload (the customer's text) is dropped, the row
        stays (by msgid) so that a message pulled again is not handled twice."""
        with self.engine.begin() as conn:
            conn.execute(
                update(INBOX).where(INBOX.c.msgid == msgid).values(status=status, payload="{}")
            )

    # retention and erasure (bot privacy purge / erase)
    def purge_before(self, cutoff: float) -> dict[str, int]:
        """Delete the handled inbox rows, held messages and sessions older than ``cutoff``;
        how many per table (the bindings are kept: they are not conversations)."""
        i = INBOX.c
        handled = i.status.not_in(["pending", "processing"])
        with self.engine.begin() as conn:
            inbox = conn.execute(delete(INBOX).where(handled, i.stored_at < cutoff)).rowcount
            outbox = conn.execute(delete(OUTBOX).where(OUTBOX.c.created_at < cutoff)).rowcount
            sessions = conn.execute(delete(SESSIONS).where(SESSIONS.c.updated_at < cutoff)).rowcount
        return {
            "wecom_kf_inbox": int(inbox or 0),
            "wecom_kf_outbox": int(outbox or 0),
            "wecom_kf_sessions": int(sessions or 0),
        }

    def forget(self, conversation_ids: list[str], customer_id: str | None = None) -> dict[str, int]:
        """Delete what is kept of the users of these conversations (sessions, inbox, held
        messages) and of those bound to ``customer_id`` (and the bindings); per table."""
        s, b = SESSIONS.c, BINDINGS.c
        with self.engine.begin() as conn:
            users: set[str] = set()
            for start in range(0, len(conversation_ids), 500):
                chunk = conversation_ids[start : start + 500]
                of = select(s.external_userid).where(s.conversation_id.in_(chunk))
                users.update(str(u) for u in conn.execute(of).scalars())
            bindings = 0
            if customer_id is not None:
                bound = select(b.external_userid).where(b.customer_id == customer_id)
                users.update(str(u) for u in conn.execute(bound).scalars())
                unbind = delete(BINDINGS).where(b.customer_id == customer_id)
                bindings = int(conn.execute(unbind).rowcount or 0)
            rows = {"wecom_kf_inbox": 0, "wecom_kf_outbox": 0, "wecom_kf_sessions": 0}
            ordered = sorted(users)
            for start in range(0, len(ordered), 500):
                chunk = ordered[start : start + 500]
                for name, table in (
                    ("wecom_kf_inbox", INBOX),
                    ("wecom_kf_outbox", OUTBOX),
                    ("wecom_kf_sessions", SESSIONS),
                ):
                    query = delete(table).where(table.c.external_userid.in_(chunk))
                    rows[name] += int(conn.execute(query).rowcount or 0)
        return {**rows, "wecom_kf_bindings": bindings}

    def status(self, msgid: str) -> str | None:
        with self.engine.connect() as conn:
            value = conn.execute(select(INBOX.c.status).where(INBOX.c.msgid == msgid)).scalar()
        return str(value) if value is not None else None

    # sessions and the five-message budget
    def session(self, open_kfid: str, user: str) -> Session | None:
        s = SESSIONS.c
        with self.engine.connect() as conn:
            row = conn.execute(
                select(SESSIONS).where(s.open_kfid == open_kfid, s.external_userid == user)
            ).first()
        return _session(row) if row is not None else None

    def session_of(self, conversation_id: str) -> Session | None:
        """The session a conversation last wrote from."""
        s = SESSIONS.c
        with self.engine.connect() as conn:
            row = conn.execute(
                select(SESSIONS)
                .where(s.conversation_id == conversation_id)
                .order_by(s.last_customer_at.desc())
                .limit(1)
            ).first()
        return _session(row) if row is not None else None

    def customer_wrote(
        self, open_kfid: str, user: str, conversation_id: str, at: float, reset: bool = True
    ) -> Session:
        """The customer's session (made when new, its conversation id kept current); with
        ``reset`` (a newly stored message written at ``at``, not before the last one) the
        window starts again with the full budget. WeChat counts from when the customer
        wrote, so the channel resets when it stores a page, not when it handles it."""
        s = SESSIONS.c
        now = self.clock()
        where = (s.open_kfid == open_kfid, s.external_userid == user)
        if self.session(open_kfid, user) is None:
            try:
                with self.engine.begin() as conn:
                    conn.execute(
                        SESSIONS.insert().values(
                            open_kfid=open_kfid,
                            external_userid=user,
                            conversation_id=conversation_id,
                            state=None,
                            last_customer_at=at,
                            sent=0,
                            updated_at=now,
                        )
                    )
            except IntegrityError:
                pass  # another worker's message of the same customer
        with self.engine.begin() as conn:
            if reset:
                conn.execute(
                    update(SESSIONS)
                    .where(*where, s.last_customer_at <= at)
                    .values(last_customer_at=at, sent=0)
                )
            conn.execute(
                update(SESSIONS)
                .where(*where, s.conversation_id != conversation_id)
                .values(conversation_id=conversation_id, updated_at=now)
            )
        found = self.session(open_kfid, user)
        assert found is not None
        return found

    def has_budget(self, open_kfid: str, user: str, window: float, budget: int) -> bool:
        found = self.session(open_kfid, user)
        return (
            found is not None
            and found.sent < budget
            and found.last_customer_at >= self.clock() - window
        )

    def set_state(
        self, open_kfid: str, user: str, state: int | None, servicer: str | None = None
    ) -> None:
        s = SESSIONS.c
        with self.engine.begin() as conn:
            conn.execute(
                update(SESSIONS)
                .where(s.open_kfid == open_kfid, s.external_userid == user)
                .values(state=state, servicer_userid=servicer, updated_at=self.clock())
            )

    def take_budget(self, open_kfid: str, user: str, window: float, budget: int) -> bool:
        """One of the messages allowed after the customer's last message, if one is left
        (a conditional update: workers sending at once never exceed ``budget``)."""
        s = SESSIONS.c
        now = self.clock()
        with self.engine.begin() as conn:
            result: Any = conn.execute(
                update(SESSIONS)
                .where(
                    s.open_kfid == open_kfid,
                    s.external_userid == user,
                    s.sent < budget,
                    s.last_customer_at >= now - window,
                )
                .values(sent=s.sent + 1)
            )
            return bool(result.rowcount)

    def refund(self, open_kfid: str, user: str) -> None:
        """A message counted but not sent."""
        s = SESSIONS.c
        with self.engine.begin() as conn:
            conn.execute(
                update(SESSIONS)
                .where(s.open_kfid == open_kfid, s.external_userid == user, s.sent > 0)
                .values(sent=s.sent - 1)
            )

    def spend_all(self, open_kfid: str, user: str, budget: int) -> None:
        """WeChat says the budget is used up (95001): believe it."""
        s = SESSIONS.c
        with self.engine.begin() as conn:
            conn.execute(
                update(SESSIONS)
                .where(s.open_kfid == open_kfid, s.external_userid == user)
                .values(sent=budget)
            )

    # held messages
    def hold(self, open_kfid: str, user: str, body: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                OUTBOX.insert().values(
                    open_kfid=open_kfid,
                    external_userid=user,
                    body=json.dumps(body, ensure_ascii=False),
                    created_at=self.clock(),
                )
            )

    def held(self, open_kfid: str, user: str) -> list[dict[str, Any]]:
        o = OUTBOX.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(o.body)
                .where(o.open_kfid == open_kfid, o.external_userid == user)
                .order_by(o.id)
            ).all()
        return [json.loads(r[0]) for r in rows]

    def take_held(self, open_kfid: str, user: str) -> list[dict[str, Any]]:
        """The held messages, oldest first, removed; each one goes to one worker only."""
        o = OUTBOX.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(o.id, o.body)
                .where(o.open_kfid == open_kfid, o.external_userid == user)
                .order_by(o.id)
            ).all()
        taken: list[dict[str, Any]] = []
        for row_id, body in rows:
            with self.engine.begin() as conn:
                result: Any = conn.execute(delete(OUTBOX).where(o.id == row_id))
            if result.rowcount:
                taken.append(json.loads(body))
        return taken

    # bindings
    def bind(self, external_userid: str, customer_id: str) -> None:
        external_userid = _check_id(external_userid, "external_userid")
        customer_id = _check_id(customer_id, "customer id", 64)
        with self.engine.begin() as conn:
            conn.execute(delete(BINDINGS).where(BINDINGS.c.external_userid == external_userid))
            conn.execute(
                BINDINGS.insert().values(
                    external_userid=external_userid, customer_id=customer_id, bound_at=self.clock()
                )
            )

    def unbind(self, external_userid: str) -> bool:
        with self.engine.begin() as conn:
            result: Any = conn.execute(
                delete(BINDINGS).where(BINDINGS.c.external_userid == external_userid.strip())
            )
            return bool(result.rowcount)

    def bindings(self) -> list[tuple[str, str, float]]:
        b = BINDINGS.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(b.external_userid, b.customer_id, b.bound_at).order_by(b.external_userid)
            )
            return [(str(r[0]), str(r[1]), float(r[2])) for r in rows]

    def customer(self, external_userid: str) -> str | None:
        with self.engine.connect() as conn:
            value = conn.execute(
                select(BINDINGS.c.customer_id).where(BINDINGS.c.external_userid == external_userid)
            ).scalar()
        return str(value) if value is not None else None


def _session(row: Any) -> Session:
    return Session(
        str(row.open_kfid),
        str(row.external_userid),
        str(row.conversation_id),
        None if row.state is None else int(row.state),
        row.servicer_userid,
        float(row.last_customer_at or 0.0),
        int(row.sent or 0),
    )
