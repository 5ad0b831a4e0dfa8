"""``/webhooks/wecom_kf/webhook``: the WeChat customer service (微信客服, WeCom kf) channel.

- ``GET``: URL verification: ``msg_signature`` over token, timestamp, nonce and the encrypted
  ``echostr``; the answer is ``echostr`` decrypted (AES-256-CBC, receive id = corpid).
- ``POST``: the ``kf_msg_or_event`` callback (signed and encrypted the same way; a forged
  signature is a 403, a body that does not decrypt a 400). It carries only a ``Token`` and
  the ``OpenKfId``: the answer is ``success`` at once and the messages are pulled in the
  background with ``kf/sync_msg`` from the stored cursor, page after page while
  ``has_more``. Each page is stored (by ``msgid``: once, whichever worker pulls it) before
  the cursor moves; stored messages are then claimed one worker each and handled.
- Customer text (and a click on a ``msgmenu`` item: its ``menu_id`` is the button's payload)
  runs one turn; the replies go out with ``kf/send_msg``: texts merged, buttons as a
  ``msgmenu``. WeChat allows five messages within 48 hours of the customer's last message:
  past that the rest is held and sent, merged into one, when the customer writes again.
- ``enter_session`` runs ``enter_payload`` (the greeting) and answers with
  ``kf/send_msg_on_event`` (its ``welcome_code``; not counted in the five).
- Session states: the bot takes a new session (0 → 1). On handoff the server's hooks either
  keep it (our console; agents' replies go through :meth:`WeComKfChannel.push`) or move it
  to a WeCom servicer (:meth:`WeComKfChannel.transfer`: 1 → 3, or 1 → 2 WeCom's queue);
  while it is with WeCom's servicers the bot does not answer. A session that ends (a
  ``session_status_change`` ending it, or state 4 found) calls ``on_session_end``.
- Messages and events older than ``max_age_seconds`` (3 days) are stored, not answered.
- A bound external_userid (:meth:`KfStore.bind`) is a verified customer (conversation
  ``customer:<id>``, one history with the app); otherwise ``wecom_kf:<external_userid>``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, text

from bot.channels.base import ChannelError, MessageRefused, OnNewMessage
from bot.channels.identity import Customer
from bot.channels.inputs import clean
from bot.channels.wechat.api import RedisTokenStore, split_text
from bot.channels.wechat.channel import parse_xml
from bot.channels.wechat.crypto import WeChatCrypto, WeChatCryptoError, check_signature
from bot.channels.wecom_kf.api import (
    BOT,
    COUNT_LIMIT,
    ENDED,
    NEW,
    QUEUED,
    SERVICER,
    STATE_NOT_ALLOWED,
    SYNC_TOKEN_INVALID,
    KfApiError,
    WeComKfApi,
)
from bot.channels.wecom_kf.config import HandoffMode, KfSettings
from bot.channels.wecom_kf.store import MAX_ID, KfStore, Session, Stored
from bot.core.actions.responses import response_event
from bot.core.lock_store import LockTimeoutError
from bot.core.messages import UserMessage
from bot.domain import Domain
from bot.redis import redis_url

logger = logging.getLogger(__name__)

CHANNEL = "wecom_kf"
PREFIX = f"{CHANNEL}:"
SUCCESS = "success"
CUSTOMER, SYSTEM, SERVICER_ORIGIN = 3, 4, 5  # ``origin`` of a sync_msg item
MENU_ITEMS = 10  # items of one msgmenu
MENU_ID_BYTES = 128
HEAD_BYTES = 1024  # msgmenu head_content
MAX_PAGES = 100  # sync_msg pages per callback (the next callback goes on)
CONCURRENCY = 16  # customers handled at once by one worker (each customer's messages in order)
ENDED_CHANGE = 3  # session_status_change change_type: the servicer ended the session

SessionEnded = Callable[[str], Awaitable[None]]


def text_body(content: str) -> dict[str, Any]:
    return {"msgtype": "text", "text": {"content": content}}


def _menu_item(button: dict[str, Any]) -> dict[str, Any]:
    title = str(button.get("title") or button.get("payload") or "")
    payload = str(button.get("payload") or title)
    if payload.startswith(("https://", "http://")):
        return {"type": "view", "view": {"url": payload, "content": title}}
    click: dict[str, Any] = {"content": title}
    if len(payload.encode("utf-8")) <= MENU_ID_BYTES:
        click["id"] = payload  # comes back as the text's menu_id
    return {"type": "click", "click": click}


def render(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The turn's bot messages as few ``kf/send_msg`` bodies (each one counts against the five
    messages): texts in a row merged into one (blank line between), a message with buttons
    as a ``msgmenu`` whose head is that text and the texts before it; texts over 2,048
    bytes in several parts."""
    bodies: list[dict[str, Any]] = []
    texts: list[str] = []
    for message in messages:
        lines = [str(message["text"])] if message.get("text") else []
        if message.get("image"):
            lines.append(str(message["image"]))
        if lines:
            texts.append("\n".join(lines))
        buttons = [b for b in message.get("buttons") or [] if isinstance(b, dict)]
        if buttons:
            head = split_text("\n\n".join(texts), HEAD_BYTES) if texts else [""]
            texts = []
            bodies.extend(text_body(part) for part in head[:-1])
            menu: dict[str, Any] = {"list": [_menu_item(b) for b in buttons[:MENU_ITEMS]]}
            if head[-1]:
                menu["head_content"] = head[-1]
            bodies.append({"msgtype": "msgmenu", "msgmenu": menu})
    if texts:
        bodies.extend(text_body(part) for part in split_text("\n\n".join(texts)))
    return bodies


def body_text(body: dict[str, Any]) -> str:
    """What a held message said, as text (a held menu's buttons are stale: their titles)."""
    if body.get("msgtype") == "msgmenu":
        menu = body.get("msgmenu") or {}
        titles = [
            str((item.get(item.get("type")) or {}).get("content") or "")
            for item in menu.get("list") or []
        ]
        return "\n".join(p for p in [str(menu.get("head_content") or ""), *titles] if p)
    return str((body.get("text") or {}).get("content") or "")


def _user(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value if value and len(value) <= MAX_ID and value.isprintable() else None


def _number(value: Any, default: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return default
    try:
        number = float(value)
    except ValueError:
        return default
    return number if number == number and abs(number) < 1e12 else default  # no NaN, no inf


def normal_item(item: Any, now: float) -> dict[str, Any] | None:
    """A sync_msg item with the fields the channel reads in their types (``msgid`` text,
    ``origin`` and ``send_time`` numbers, ``text`` and ``event`` mappings), or None when it has
    no usable msgid: one odd item never stops the pull."""
    if not isinstance(item, dict):
        return None
    msgid = item.get("msgid")
    if not isinstance(msgid, str | int) or isinstance(msgid, bool) or not str(msgid).strip():
        return None
    normal = dict(item)
    normal["msgid"] = str(msgid).strip()
    normal["origin"] = int(_number(item.get("origin"), 0))
    normal["send_time"] = _number(item.get("send_time"), now)
    for key in ("text", "event"):
        if not isinstance(normal.get(key), dict):
            normal.pop(key, None)
    return normal


def store_for(settings: KfSettings, tracker_store: Any = None) -> KfStore:
    """``db`` when set; else the SQL tracker store's database; else ``data/wecom_kf.db``."""
    engine = getattr(tracker_store, "engine", None)
    if not settings.db and engine is not None:
        return KfStore(engine)
    if settings.db:
        return KfStore.from_url(settings.db)
    root = settings.project_root or Path.cwd()
    return KfStore.from_url(f"sqlite:///{root / 'data' / 'wecom_kf.db'}")


@dataclass
class WeComKfChannel:
    on_new_message: OnNewMessage
    settings: KfSettings
    store: KfStore
    domain: Domain = field(default_factory=Domain)
    api: WeComKfApi | None = None
    crypto: WeChatCrypto | None = None
    clock: Callable[[], float] = time.time
    # the server's hook: a session ended at WeCom (state 4) → close the handoff
    on_session_end: SessionEnded | None = None
    background: set[asyncio.Task[Any]] = field(default_factory=set)
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    _again: dict[str, str | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        s = self.settings
        if self.crypto is None:
            self.crypto = WeChatCrypto(s.token, s.encoding_aes_key, s.corpid)
        if self.api is None:
            self.api = WeComKfApi(s.api_base, s.corpid, s.secret, timeout=s.http_timeout)

    @property
    def kf(self) -> WeComKfApi:
        assert self.api is not None
        return self.api

    def say(self, name: str) -> str:
        event = response_event(name, self.domain, channel=CHANNEL)
        return str(event.get("text") or "") if event else ""

    async def _db(self, fn: Callable[..., Any], *args: Any) -> Any:
        """A store call: inline on SQLite (WAL: microseconds; a thread hop costs more), on a
        thread otherwise (a network database)."""
        if self.store.inline:
            return fn(*args)
        return await asyncio.to_thread(fn, *args)

    # the callback
    def _check(self, request: Request, encrypted: str) -> None:
        assert self.crypto is not None
        args = request.args
        if not encrypted or not check_signature(
            args.get("msg_signature"),
            self.crypto.token,
            args.get("timestamp", ""),
            args.get("nonce", ""),
            encrypted,
        ):
            logger.warning(
                "WeCom kf %s with a bad msg_signature from %s refused", request.method, request.ip
            )
            raise ChannelError(
                403, "msg_signature mismatch: the request was not signed with this channel's token"
            )

    def _decrypt(self, encrypted: str) -> str:
        assert self.crypto is not None
        try:
            return self.crypto.decrypt(encrypted)
        except WeChatCryptoError as exc:
            logger.warning("WeCom kf message not decrypted: %s", exc)
            raise ChannelError(400, f"cannot decrypt the message: {exc}") from None

    def verify_url(self, request: Request) -> str:
        echostr = request.args.get("echostr", "")
        if not echostr:
            raise ChannelError(400, "echostr is missing: WeCom verifies the URL with one")
        self._check(request, echostr)
        return self._decrypt(echostr)

    async def handle(self, request: Request) -> HTTPResponse:
        if len(request.body) > self.settings.max_body_bytes:
            raise ChannelError(
                413, f"request body is larger than {self.settings.max_body_bytes:,} bytes"
            )
        encrypted = parse_xml(request.body).get("Encrypt", "")
        if not encrypted:
            raise ChannelError(400, "no <Encrypt> in the body: WeCom callbacks are encrypted")
        self._check(request, encrypted)
        fields = parse_xml(self._decrypt(encrypted).encode("utf-8"))
        if fields.get("MsgType") != "event" or fields.get("Event") != "kf_msg_or_event":
            logger.info(
                "WeCom kf callback %s/%s ignored", fields.get("MsgType"), fields.get("Event")
            )
            return text(SUCCESS)
        open_kfid = _user(fields.get("OpenKfId"))
        if open_kfid is None:
            raise ChannelError(400, "OpenKfId is missing or invalid")
        self.spawn(self.sync(open_kfid, fields.get("Token") or None))
        return text(SUCCESS)

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        async def logged() -> None:
            try:
                await coro
            except Exception:
                logger.exception("WeCom kf background work failed")

        task = asyncio.ensure_future(logged())
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    # pulling and handling
    async def sync(self, open_kfid: str, token: str | None) -> int:
        """Pull what is new for ``open_kfid`` and handle it; how many messages this worker
        handled. A callback arriving meanwhile makes the running sync go round once more."""
        lock = self._locks.setdefault(open_kfid, asyncio.Lock())
        if lock.locked():
            self._again[open_kfid] = token
            return 0
        handled = 0
        async with lock:
            while True:
                await self.pull(open_kfid, token)
                handled += await self.process(open_kfid)
                if open_kfid not in self._again:
                    return handled
                token = self._again.pop(open_kfid)

    async def pull(self, open_kfid: str, token: str | None) -> int:
        """``kf/sync_msg`` from the stored cursor while ``has_more``; each page stored before
        the cursor moves past it. How many new messages were stored."""
        cursor: str | None = await self._db(self.store.cursor, open_kfid)
        stored = 0
        for _ in range(MAX_PAGES):
            try:
                data = await self.kf.sync_msg(open_kfid, token, cursor, self.settings.sync_limit)
            except KfApiError as exc:
                if exc.errcode != SYNC_TOKEN_INVALID or token is None:
                    logger.error("WeCom kf sync_msg for %s failed: %s", open_kfid, exc)
                    return stored
                logger.info("WeCom kf callback token expired; pulling without it")
                token = None  # valid 10 minutes; without it sync_msg is limited harder
                continue
            except Exception as exc:  # the next callback (or a retry of this one) goes on
                logger.error("WeCom kf sync_msg for %s failed: %s", open_kfid, exc)
                return stored
            raw = data.get("msg_list")
            now = self.clock()
            items = [
                n for i in (raw if isinstance(raw, list) else []) if (n := normal_item(i, now))
            ]
            added: list[str] = await self._db(
                self.store.store, open_kfid, items, self.settings.max_age_seconds
            )
            stored += len(added)
            fresh = set(added)
            await self.customers_wrote(open_kfid, [i for i in items if i.get("msgid") in fresh])
            after = str(data.get("next_cursor") or "") or None
            if after and after != cursor:
                if not await self._db(self.store.advance, open_kfid, cursor, after):
                    logger.info("WeCom kf cursor of %s moved by another worker", open_kfid)
                    return stored
                cursor = after
            if not data.get("has_more"):
                break
        return stored

    async def customers_wrote(self, open_kfid: str, items: list[dict[str, Any]]) -> None:
        """Each customer's latest newly stored message restarts their five-message window
        (WeChat counts from when the customer wrote, not from when we handle it)."""
        latest: dict[str, float] = {}
        for item in items:
            user = _user(item.get("external_userid"))
            if user is not None and int(item.get("origin") or 0) == CUSTOMER:
                at = float(item.get("send_time") or 0)
                latest[user] = max(at, latest.get(user, at))
        for user, at in latest.items():
            conversation, _ = await self.identity(user)
            await self._db(self.store.customer_wrote, open_kfid, user, conversation, at)

    async def process(self, open_kfid: str) -> int:
        """Handle the stored messages this worker claims: each customer's in order, several
        customers at a time (at most :data:`CONCURRENCY`)."""
        handled = 0
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one_customer(items: list[Stored]) -> None:
            async with gate:
                for stored in items:
                    status = "done"
                    try:
                        await self.handle_item(open_kfid, stored.item)
                    except Exception:
                        logger.exception("WeCom kf message %s not handled", stored.msgid)
                        status = "failed"
                    await self._db(self.store.finish, stored.msgid, status)

        while True:
            batch: list[Stored] = await self._db(self.store.claim, open_kfid)
            if not batch:
                return handled
            by_customer: dict[str, list[Stored]] = {}
            for stored in batch:
                item = stored.item
                user = item.get("external_userid") or (item.get("event") or {}).get(
                    "external_userid"
                )
                by_customer.setdefault(str(user), []).append(stored)
            await asyncio.gather(*(one_customer(items) for items in by_customer.values()))
            handled += len(batch)

    async def handle_item(self, open_kfid: str, item: dict[str, Any]) -> None:
        if item.get("msgtype") == "event":
            await self.on_event(open_kfid, item)
            return
        if int(item.get("origin") or 0) != CUSTOMER:
            return  # a servicer's message in WeCom, or a system one
        user = _user(item.get("external_userid"))
        if user is None:
            logger.warning("WeCom kf message %s without a valid external_userid", item.get("msgid"))
            return
        conversation, customer_id = await self.identity(user)
        at = float(item.get("send_time") or self.clock())
        session: Session | None = await self._db(self.store.session, open_kfid, user)
        if session is None or session.conversation_id != conversation:
            session = await self._db(
                self.store.customer_wrote, open_kfid, user, conversation, at, False
            )
        state = await self.take_session(session)
        if state in (QUEUED, SERVICER):
            logger.info(
                "WeCom kf session of %s is with WeCom's servicers; no bot turn", conversation
            )
            return
        await self.flush_held(open_kfid, user)
        incoming = self.incoming_text(item)
        if incoming is None:
            await self.reply(open_kfid, user, [{"text": self.say("utter_text_only")}])
            return
        message = UserMessage(
            incoming,
            conversation,
            CHANNEL,
            {"wecom_kf_msgid": str(item.get("msgid") or ""), "open_kfid": open_kfid},
            customer_id,
            str(item.get("msgid") or "") or None,
        )
        await self.reply(open_kfid, user, await self.turn(message))

    @staticmethod
    def incoming_text(item: dict[str, Any]) -> str | None:
        """The text of a customer's text message (a menu click: the button's payload, its
        ``menu_id``); None for other kinds (image, voice, ...)."""
        if item.get("msgtype") != "text":
            return None
        body = item.get("text") or {}
        menu_id = clean(str(body.get("menu_id") or "")).strip()
        content = clean(str(body.get("content") or "")).strip()
        return menu_id or content or None

    async def identity(self, user: str) -> tuple[str, str | None]:
        """(conversation id, verified customer id) of an external_userid."""
        customer_id: str | None = await self._db(self.store.customer, user)
        if customer_id:
            return Customer(customer_id).conversation_id, customer_id
        return f"{PREFIX}{user}", None

    async def turn(self, message: UserMessage) -> list[dict[str, Any]]:
        try:
            return await self.on_new_message(message)
        except MessageRefused as exc:
            if exc.status == 429:
                return [{"text": self.say("utter_busy")}]
            logger.warning("WeCom kf message of %s refused: %s", message.sender_id, exc.message)
            return []
        except LockTimeoutError:
            return [{"text": self.say("utter_busy")}]

    async def on_event(self, open_kfid: str, item: dict[str, Any]) -> None:
        event = item.get("event") or {}
        kind = event.get("event_type")
        user = _user(event.get("external_userid"))
        if kind == "msg_send_fail":
            logger.warning(
                "WeCom kf message %s to %s failed (fail_type %s)",
                event.get("fail_msgid"),
                user,
                event.get("fail_type"),
            )
            return
        if user is None or kind not in ("enter_session", "session_status_change"):
            return  # servicer_status_change, recalls, ...
        conversation, customer_id = await self.identity(user)
        if kind == "enter_session":
            code = str(event.get("welcome_code") or "")
            if not code:
                return
            message = UserMessage(
                self.settings.enter_payload,
                conversation,
                CHANNEL,
                {"wecom_kf_msgid": str(item.get("msgid") or ""), "open_kfid": open_kfid},
                customer_id,
                str(item.get("msgid") or "") or None,
            )
            bodies = render(await self.turn(message))
            if bodies:  # one message per welcome code
                merged = "\n\n".join(body_text(b) for b in bodies[:-1])
                last = dict(bodies[-1])
                if merged and last.get("msgtype") == "msgmenu":
                    menu = dict(last["msgmenu"])
                    menu["head_content"] = "\n\n".join(
                        p for p in (merged, menu.get("head_content")) if p
                    )
                    last["msgmenu"] = menu
                elif merged:
                    last = text_body(split_text(f"{merged}\n\n{body_text(last)}")[0])
                try:
                    await self.kf.send_on_event(code, last)
                except Exception as exc:  # the code lives 20 s; nothing else to do
                    logger.error("WeCom kf welcome to %s failed: %s", conversation, exc)
            return
        change = int(_number(event.get("change_type"), 0))
        session: Session | None = await self._db(self.store.session, open_kfid, user)
        if session is None:
            await self._db(self.store.customer_wrote, open_kfid, user, conversation, 0.0)
        if change == ENDED_CHANGE:
            await self._db(self.store.set_state, open_kfid, user, ENDED, None)
            await self.session_ended(session.conversation_id if session else conversation)
        else:  # taken from the pool, transferred, or an ended session taken up again
            servicer = _user(event.get("new_servicer_userid"))
            await self._db(self.store.set_state, open_kfid, user, SERVICER, servicer)

    async def session_ended(self, conversation_id: str) -> None:
        logger.info("WeCom kf session of %s ended", conversation_id)
        if self.on_session_end is not None:
            await self.on_session_end(conversation_id)

    # session states
    async def take_session(self, session: Session) -> int:
        """The session's state, a new (or ended) one taken by the bot (0 → 1)."""
        if session.state in (BOT, QUEUED, SERVICER):
            return session.state
        return await self.refresh_state(session.open_kfid, session.external_userid)

    async def refresh_state(self, open_kfid: str, user: str) -> int:
        """The session's state at WeCom; a new one taken by the bot (0 → 1); an ended one
        (4) ends the conversation's handoff."""
        try:
            state, servicer = await self.kf.service_state(open_kfid, user)
            if state == NEW:
                try:
                    await self.kf.trans(open_kfid, user, BOT)
                    state, servicer = BOT, None
                except KfApiError:  # taken meanwhile (another worker, a servicer)
                    state, servicer = await self.kf.service_state(open_kfid, user)
        except Exception as exc:  # try sending anyway; a 95018 comes back here
            logger.error("WeCom kf service_state of %s failed: %s", user, exc)
            return BOT
        before: Session | None = await self._db(self.store.session, open_kfid, user)
        await self._db(self.store.set_state, open_kfid, user, state, servicer)
        if state == ENDED and before is not None and before.state != ENDED:
            await self.session_ended(before.conversation_id)
        return state

    async def transfer(self, conversation_id: str, mode: HandoffMode) -> int:
        """Hand the conversation's session to a WeCom servicer (3) or WeCom's queue (2)."""
        session: Session | None = await self._db(self.store.session_of, conversation_id)
        if session is None:
            raise LookupError(f"no WeCom kf session for {conversation_id}")
        state = mode.target_state
        await self.kf.trans(session.open_kfid, session.external_userid, state, mode.servicer_userid)
        await self._db(
            self.store.set_state,
            session.open_kfid,
            session.external_userid,
            state,
            mode.servicer_userid,
        )
        logger.info("WeCom kf session of %s transferred (state %d)", conversation_id, state)
        return state

    # sending
    async def reply(self, open_kfid: str, user: str, messages: list[dict[str, Any]]) -> None:
        for body in render(messages):
            await self.deliver(open_kfid, user, body)

    async def deliver(self, open_kfid: str, user: str, body: dict[str, Any]) -> str:
        """Send one message within the five-message budget: ``sent``, ``held`` (budget used
        up, or the session cannot take it now: sent when the customer writes again) or
        ``dropped`` (the session is with a WeCom servicer)."""
        if not await self._db(
            self.store.take_budget,
            open_kfid,
            user,
            self.settings.window_seconds,
            self.settings.budget,
        ):
            await self._db(self.store.hold, open_kfid, user, body)
            logger.info("WeCom kf message to %s held: five messages in 48 h used up", user)
            return "held"
        for attempt in (1, 2):
            try:
                await self.kf.send_msg(open_kfid, user, body)
                return "sent"
            except KfApiError as exc:
                if exc.errcode == COUNT_LIMIT:
                    await self._db(self.store.spend_all, open_kfid, user, self.settings.budget)
                    await self._db(self.store.hold, open_kfid, user, body)
                    return "held"
                if exc.errcode != STATE_NOT_ALLOWED:
                    await self._db(self.store.refund, open_kfid, user)
                    raise
                state = await self.refresh_state(open_kfid, user) if attempt == 1 else None
                if state == BOT:
                    continue
                await self._db(self.store.refund, open_kfid, user)
                if state in (QUEUED, SERVICER):
                    logger.warning("WeCom kf message to %s dropped: with a servicer", user)
                    return "dropped"
                await self._db(self.store.hold, open_kfid, user, body)
                return "held"
            except Exception:
                await self._db(self.store.refund, open_kfid, user)
                raise
        return "held"

    async def flush_held(self, open_kfid: str, user: str) -> None:
        """The messages held for this customer, merged into one (after a header)."""
        s = self.settings
        if not await self._db(self.store.has_budget, open_kfid, user, s.window_seconds, s.budget):
            return
        held = await self._db(self.store.take_held, open_kfid, user)
        header = self.say("utter_wecom_kf_held")
        # a merged message held again (WeChat refused it) gets one header, not two
        texts = [t.removeprefix(f"{header}\n\n") for t in map(body_text, held) if t]
        if not texts:
            return
        merged = "\n\n".join(p for p in (header, *texts) if p)
        for part in split_text(merged):
            await self.deliver(open_kfid, user, text_body(part))

    async def push(self, conversation_id: str, content: str) -> None:
        """A message outside a turn (a human agent's reply) to the conversation's session."""
        await self.push_messages(conversation_id, [{"text": content}])

    async def push_messages(self, conversation_id: str, messages: list[dict[str, Any]]) -> None:
        """Bot messages in REST shape (buttons as a msgmenu) outside a turn: the HTTP API's
        ``output_channel=wecom_kf``."""
        session: Session | None = await self._db(self.store.session_of, conversation_id)
        if session is None:
            raise RuntimeError(f"no WeCom kf session for {conversation_id}")
        # one of the channel's tasks, so that close() waits for it before closing the client
        task = asyncio.ensure_future(
            self.reply(session.open_kfid, session.external_userid, messages)
        )
        self.background.add(task)
        task.add_done_callback(self.background.discard)
        await asyncio.shield(task)

    async def drain(self) -> None:
        while self.background:
            await asyncio.gather(*list(self.background), return_exceptions=True)

    async def close(self) -> None:
        await self.drain()
        if self.api is not None:
            await self.api.close()


def wecom_kf_blueprint(
    on_new_message: OnNewMessage,
    settings: KfSettings,
    *,
    tracker_store: Any = None,
    domain: Domain | None = None,
    store: KfStore | None = None,
) -> Blueprint:
    """The channel at ``/webhooks/wecom_kf/webhook``; the :class:`WeComKfChannel` is
    ``bp.ctx.channel``. With ``$BOT_REDIS_URL`` the workers share one access token."""
    bp = Blueprint("channel_wecom_kf", url_prefix=f"/webhooks/{CHANNEL}")
    channel = WeComKfChannel(
        on_new_message, settings, store or store_for(settings, tracker_store), domain or Domain()
    )
    url = redis_url()
    if url:
        wait = 2 * settings.http_timeout + 5
        channel.kf.shared = RedisTokenStore.from_url(
            url,
            settings.corpid,
            prefix="bankbot:wecom_kf:token:",
            lock_seconds=wait,
            wait_seconds=wait,
        )
    bp.ctx.channel = channel

    @bp.get("/webhook")
    async def verify(request: Request) -> HTTPResponse:
        return text(channel.verify_url(request))

    @bp.post("/webhook")
    async def webhook(request: Request) -> HTTPResponse:
        return await channel.handle(request)

    @bp.before_server_stop
    async def finish(app: Any) -> None:
        await channel.close()

    return bp
