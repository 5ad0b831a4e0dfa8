"""``/webhooks/wechat/webhook``: the WeChat Official Account (公众号) channel.

- ``GET``: URL verification (``signature`` over token/timestamp/nonce → ``echostr``).
- ``POST``: the signature is checked on every request (a mismatch is a 403, logged, nothing
  processed), and so are its ``timestamp`` (within ``timestamp_window`` seconds) and ``nonce``
  (used once: :mod:`bot.channels.wechat.replay`); plain and safe mode (``encrypt_type=aes``,
  ``msg_signature``, AES-256-CBC).
- Text messages, ``subscribe`` (the greeting, ``subscribe_payload``) and ``CLICK`` events
  (``EventKey`` is the message, e.g. an intent payload).
- ``MsgId`` deduplication (events: ``FromUserName`` + ``CreateTime`` + ``Event``): a retry is
  answered with the first reply, or ``success`` when the reply goes through the
  customer-service API; the turn runs once.
- The 5-second rule: the turn runs at most ``reply_timeout`` seconds for a passive reply;
  when slower the answer is ``success`` and the replies are sent later through
  ``/cgi-bin/message/custom/send`` with the shared, refreshed access token.
- A reply over WeChat's 2,048-byte text limit is answered ``success`` and sent through the
  customer-service API as several messages in order (split at sentence/line ends).
- A bound OpenID (``bot wechat bind``) is a verified customer (conversation
  ``customer:<id>``, one history with the app channel); otherwise ``wechat:<openid>``.

Settings: ``channels.wechat`` in ``config.yml`` and ``BOT_WECHAT_*`` (see ``docs/wechat.md``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import time
import xml.etree.ElementTree as ET
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sanic import Blueprint, Request
from sanic.response import HTTPResponse, text

from bot.builtin_responses import builtin_text
from bot.channels.base import ChannelError, MessageRefused, OnNewMessage
from bot.channels.identity import Customer
from bot.channels.inputs import clean
from bot.channels.wechat.api import TEXT_LIMIT, RedisTokenStore, WeChatApi, split_text
from bot.channels.wechat.crypto import WeChatCrypto, WeChatCryptoError, check_signature
from bot.channels.wechat.replay import ReplayGuard, digest
from bot.channels.wechat.store import BindingStore
from bot.core.actions.responses import response_event
from bot.core.lock_store import LockTimeoutError
from bot.core.messages import UserMessage
from bot.domain import Domain
from bot.errors import ConfigError
from bot.project import Project
from bot.redis import redis_client, redis_url
from bot.settings_file import read_mapping

logger = logging.getLogger(__name__)

CHANNEL = "wechat"
SUCCESS = "success"
XML_TYPE = "application/xml; charset=utf-8"
UNSUPPORTED = "\x00unsupported"  # incoming_text's marker of a message that is not text
ENV = {
    "token": "BOT_WECHAT_TOKEN",
    "aes_key": "BOT_WECHAT_AES_KEY",
    "appid": "BOT_WECHAT_APPID",
    "secret": "BOT_WECHAT_SECRET",
    "api_base": "BOT_WECHAT_API_BASE",
    "bindings_db": "BOT_WECHAT_BINDINGS_DB",
}


@dataclass(frozen=True)
class WeChatSettings:
    token: str | None = None
    aes_key: str | None = None  # EncodingAESKey (43 characters); needed for safe mode
    appid: str | None = None
    secret: str | None = None  # AppSecret, for the access token of the customer-service API
    api_base: str = "https://api.weixin.qq.com"
    reply_timeout: float = 4.0  # seconds a turn may take for a passive reply
    dedupe_seconds: float = 300.0
    dedupe_size: int = 10_000
    subscribe_payload: str = "/greet"
    max_body_bytes: int = 16 * 1024
    http_timeout: float = 5.0
    bindings_db: str | None = None  # SQLAlchemy URL; default: the tracker store's database
    project_root: Path | None = None
    timestamp_window: float = 300.0  # seconds a signed request's timestamp may be off

    @property
    def enabled(self) -> bool:
        return bool(self.token)

    @property
    def safe_mode_ready(self) -> bool:
        return bool(self.aes_key and self.appid)


def _float(section: Mapping[str, Any], key: str, default: float, minimum: float = 0) -> float:
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise ConfigError(f"channels.wechat.{key} must be a number >= {minimum:g}, got {value!r}")
    return float(value)


def settings_from_mapping(
    section: Mapping[str, Any], env: Mapping[str, str] | None = None, root: Path | None = None
) -> WeChatSettings:
    """``channels.wechat`` of ``config.yml``; ``BOT_WECHAT_*`` env vars win."""
    env = env if env is not None else os.environ
    if not isinstance(section, Mapping):
        raise ConfigError("channels.wechat must be a mapping")

    def string(key: str) -> str | None:
        value = env.get(ENV[key]) if key in ENV else None
        value = value or section.get(key)
        return str(value).strip() or None if value is not None else None

    settings = WeChatSettings(
        token=string("token"),
        aes_key=string("aes_key"),
        appid=string("appid"),
        secret=string("secret"),
        api_base=string("api_base") or WeChatSettings.api_base,
        reply_timeout=_float(section, "reply_timeout", 4.0, 0.01),
        dedupe_seconds=_float(section, "dedupe_seconds", 300.0, 1),
        dedupe_size=int(_float(section, "dedupe_size", 10_000, 1)),
        subscribe_payload=str(section.get("subscribe_payload") or "/greet"),
        max_body_bytes=int(_float(section, "max_body_bytes", 16 * 1024, 1024)),
        http_timeout=_float(section, "http_timeout", 5.0, 0.1),
        bindings_db=string("bindings_db"),
        project_root=root,
        timestamp_window=_float(section, "timestamp_window", 300.0, 1),
    )
    if settings.aes_key:
        WeChatCrypto(settings.token or "", settings.aes_key, settings.appid or "")  # validates
    return settings


def wechat_section(config: Mapping[str, Any]) -> Mapping[str, Any]:
    """``channels.wechat`` of a ``config.yml`` mapping, ``{}`` when absent."""
    channels = config.get("channels")
    return (channels or {}).get("wechat") or {} if isinstance(channels, dict) else {}


def load_wechat_settings(
    project_dir: str | Path | None = None, env: Mapping[str, str] | None = None
) -> WeChatSettings:
    """From the project (``$BOT_PROJECT`` or the working directory, as ``bot run`` sets it);
    outside a project only the environment counts. The server takes the ``wechat`` part of
    :class:`bot.server.project_settings.Settings` instead."""
    try:
        project: Project | None = Project.find(project_dir)
    except ConfigError:
        if project_dir:
            raise
        project = None
    section: Any = {}
    if project is not None:
        section = wechat_section(
            read_mapping(
                project.config_file, required=True, holds="language, pipeline, channels, ..."
            )
        )
    return settings_from_mapping(section, env, project.root if project else None)


def bindings_url(settings: WeChatSettings) -> str:
    if settings.bindings_db:
        return settings.bindings_db
    root = settings.project_root or Path.cwd()
    return f"sqlite:///{root / 'data' / 'wechat.db'}"


def binding_store_for(settings: WeChatSettings, tracker_store: Any) -> BindingStore:
    """``bindings_db`` when set; else the SQL tracker store's own database; else
    ``<project>/data/wechat.db``."""
    engine = getattr(tracker_store, "engine", None)
    if not settings.bindings_db and engine is not None:
        return BindingStore(engine)
    return BindingStore.from_url(bindings_url(settings))


# -- XML ------------------------------------------------------------------------------------

NO_DOCTYPE = "XML with a DOCTYPE or entities is refused"


class _NoDoctype(ET.TreeBuilder):
    def doctype(self, name: str, pubid: str | None, system: str | None) -> None:
        raise ChannelError(400, NO_DOCTYPE)


def parse_xml(body: bytes) -> dict[str, str]:
    """The children of ``<xml>`` as strings; a 400 for anything else (no DTDs or entities)."""
    if not body.strip():
        raise ChannelError(400, "request body is empty; WeChat sends an XML message")
    if b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():
        raise ChannelError(400, NO_DOCTYPE)
    try:  # the parser refuses a DOCTYPE too: in UTF-16, say, the bytes above do not match
        parser = ET.XMLParser(target=_NoDoctype())
        parser.feed(body)
        root = parser.close()
    except ET.ParseError as exc:
        raise ChannelError(400, f"request body is not valid XML: {exc}") from None
    except LookupError as exc:  # <?xml encoding="x-foo"?>: Python has no such codec
        raise ChannelError(400, f"request body declares an unknown encoding: {exc}") from None
    except (RecursionError, ValueError):
        raise ChannelError(400, "request body is not valid XML") from None
    if root.tag != "xml":
        raise ChannelError(400, f"expected an <xml> document, got <{root.tag}>")
    return {child.tag: clean(child.text or "") for child in root}


def _cdata(value: str) -> str:
    return "<![CDATA[" + value.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def text_reply_xml(to_user: str, from_user: str, content: str, now: int | None = None) -> str:
    return (
        f"<xml><ToUserName>{_cdata(to_user)}</ToUserName>"
        f"<FromUserName>{_cdata(from_user)}</FromUserName>"
        f"<CreateTime>{now if now is not None else int(time.time())}</CreateTime>"
        f"<MsgType><![CDATA[text]]></MsgType><Content>{_cdata(content)}</Content></xml>"
    )


def render_messages(
    messages: list[dict[str, Any]], choose_hint: str | None = None
) -> tuple[str, list[str]]:
    """The bot messages as one text (buttons as numbered lines, then ``choose_hint``, by
    default the built-in ``utter_choose_by_number``) and the button payloads in order, so
    that a reply of just the number presses the button."""
    parts: list[str] = []
    payloads: list[str] = []
    for message in messages:
        lines = [str(message["text"])] if message.get("text") else []
        if message.get("image"):
            lines.append(str(message["image"]))
        for button in message.get("buttons") or []:
            payloads.append(str(button.get("payload") or button.get("title") or ""))
            lines.append(f"{len(payloads)}. {button.get('title') or button.get('payload')}")
        if lines:
            parts.append("\n".join(lines))
    if payloads:
        parts.append(builtin_text("utter_choose_by_number") if choose_hint is None else choose_hint)
    return "\n\n".join(parts), payloads


# -- the channel ----------------------------------------------------------------------------


@dataclass
class _Seen:
    at: float
    task: asyncio.Task[str | None] | None = None
    reply: str | None = None  # the passive reply's content; None: answered "success"
    decided: bool = False


@dataclass
class WeChatChannel:
    on_new_message: OnNewMessage
    settings: WeChatSettings
    bindings: BindingStore | None = None
    domain: Domain = field(default_factory=Domain)  # the project's responses (wording)
    api: WeChatApi | None = None
    crypto: WeChatCrypto | None = None
    clock: Any = time.monotonic
    seen: OrderedDict[str, _Seen] = field(default_factory=OrderedDict)
    buttons: OrderedDict[str, list[str]] = field(default_factory=OrderedDict)
    background: set[asyncio.Task[None]] = field(default_factory=set)
    # Several workers: a MsgId is claimed in Redis ($BOT_REDIS_URL) so that WeChat's retry,
    # landing on another worker, runs no second turn.
    claims: RedisClaims | None = None
    # Signed requests are fresh and used once; wall time (tests freeze it for fixed vectors).
    wall_clock: Any = time.time
    replay: ReplayGuard | None = None

    def __post_init__(self) -> None:
        s = self.settings
        if self.replay is None:
            self.replay = ReplayGuard(s.timestamp_window, clock=lambda: self.wall_clock())
        if s.safe_mode_ready and self.crypto is None:
            assert s.token and s.aes_key and s.appid
            self.crypto = WeChatCrypto(s.token, s.aes_key, s.appid)
        if self.api is None and s.appid and s.secret:
            self.api = WeChatApi(s.api_base, s.appid, s.secret, timeout=s.http_timeout)

    def say(self, response: str) -> str:
        """The text of a response (the project's domain's, else the built-in one)."""
        event = response_event(response, self.domain, channel=CHANNEL)
        return str(event.get("text") or "") if event else ""

    # signatures
    def verify(self, request: Request) -> None:
        args = request.args
        timestamp, nonce = args.get("timestamp", ""), args.get("nonce", "")
        if not check_signature(args.get("signature"), self.settings.token or "", timestamp, nonce):
            logger.warning(
                "WeChat %s with a bad signature from %s refused", request.method, request.ip
            )
            raise ChannelError(
                403, "signature mismatch: the request was not signed with this channel's token"
            )

    async def check_fresh(self, request: Request) -> None:
        """After :meth:`verify`: a 403 for a stale timestamp or a nonce that signed another
        request (a replay); the same request again is WeChat's retry and passes."""
        assert self.replay is not None
        args = request.args
        timestamp, nonce = str(args.get("timestamp", "")), str(args.get("nonce", ""))
        try:
            await self.replay.check(
                timestamp,
                nonce,
                digest(request.method, request.body, str(args.get("echostr", ""))),
            )
        except ChannelError:
            logger.warning(
                "WeChat %s from %s refused: stale timestamp or replayed nonce",
                request.method,
                request.ip,
            )
            raise

    def decrypt(self, request: Request, fields: dict[str, str]) -> dict[str, str]:
        if request.args.get("encrypt_type", "raw").lower() != "aes":
            return fields
        if self.crypto is None:
            raise ChannelError(
                400, "safe-mode message, but channels.wechat aes_key and appid are not configured"
            )
        encrypted = fields.get("Encrypt", "")
        args = request.args
        if not encrypted or not check_signature(
            args.get("msg_signature"),
            self.crypto.token,
            args.get("timestamp", ""),
            args.get("nonce", ""),
            encrypted,
        ):
            logger.warning(
                "WeChat safe-mode message with a bad msg_signature from %s refused", request.ip
            )
            raise ChannelError(403, "msg_signature mismatch")
        try:
            return parse_xml(self.crypto.decrypt(encrypted).encode("utf-8"))
        except WeChatCryptoError as exc:
            logger.warning("WeChat safe-mode message not decrypted: %s", exc)
            raise ChannelError(400, f"cannot decrypt the message: {exc}") from None

    def respond(
        self, request: Request, content: str | None, fields: dict[str, str]
    ) -> HTTPResponse:
        if content is None:
            return text(SUCCESS)
        reply = text_reply_xml(
            fields.get("FromUserName", ""), fields.get("ToUserName", ""), content
        )
        if self.crypto is None or request.args.get("encrypt_type", "").lower() != "aes":
            return text(reply, content_type=XML_TYPE)
        encrypted = self.crypto.encrypt(reply)
        timestamp, nonce = str(int(time.time())), str(secrets.randbelow(10**9))
        signed = self.crypto.msg_signature(timestamp, nonce, encrypted)
        return text(
            f"<xml><Encrypt>{_cdata(encrypted)}</Encrypt>"
            f"<MsgSignature>{_cdata(signed)}</MsgSignature>"
            f"<TimeStamp>{timestamp}</TimeStamp><Nonce>{_cdata(nonce)}</Nonce></xml>",
            content_type=XML_TYPE,
        )

    # the message
    def incoming_text(self, fields: dict[str, str]) -> str | None:
        """The text the bot handles, ``None`` for what is ignored (``success``), or the
        ``UNSUPPORTED`` marker for unsupported message types."""
        kind = fields.get("MsgType", "").lower()
        if kind == "text":
            return fields.get("Content", "").strip() or None
        if kind == "voice" and fields.get("Recognition", "").strip():
            return fields["Recognition"].strip()
        if kind == "event":
            event = fields.get("Event", "").lower()
            if event == "subscribe":
                return self.settings.subscribe_payload
            if event == "click":
                return fields.get("EventKey", "").strip() or None
            return None  # unsubscribe, SCAN, VIEW, LOCATION...
        return UNSUPPORTED

    def dedupe_key(self, fields: dict[str, str]) -> str:
        if fields.get("MsgId"):
            return f"msg:{fields['MsgId']}"
        return (
            f"event:{fields.get('FromUserName', '')}:{fields.get('CreateTime', '')}:"
            f"{fields.get('Event', '')}"
        )

    def _remember(self, key: str) -> _Seen | None:
        now = self.clock()
        while self.seen:
            oldest = next(iter(self.seen.values()))
            if (
                now - oldest.at <= self.settings.dedupe_seconds
                and len(self.seen) < self.settings.dedupe_size
            ):
                break
            self.seen.popitem(last=False)
        previous = self.seen.get(key)
        if previous is None:
            self.seen[key] = _Seen(now)
        return previous

    async def user_message(self, openid: str, text_: str, fields: dict[str, str]) -> UserMessage:
        customer_id = await self.bindings.lookup(openid) if self.bindings else None
        pressed = self.buttons.get(openid)
        if pressed and text_.isdecimal() and 1 <= int(text_) <= len(pressed):  # not '²'
            text_ = pressed[int(text_) - 1]
        metadata = {"wechat_msg_id": fields["MsgId"]} if fields.get("MsgId") else {}
        if customer_id:
            return UserMessage(
                text_,
                Customer(customer_id).conversation_id,
                CHANNEL,
                metadata,
                customer_id,
                fields.get("MsgId") or None,
            )
        return UserMessage(
            text_, f"wechat:{openid}", CHANNEL, metadata, message_id=fields.get("MsgId") or None
        )

    async def turn(self, openid: str, text_: str, fields: dict[str, str]) -> str | None:
        try:
            message = await self.user_message(openid, text_, fields)
            messages = await self.on_new_message(message)
        except MessageRefused as exc:
            if exc.status != 429:
                raise
            return self.say("utter_busy")
        except LockTimeoutError:
            return self.say("utter_busy")
        content, payloads = render_messages(messages, self.say("utter_choose_by_number"))
        self.buttons.pop(openid, None)
        if payloads:
            self.buttons[openid] = payloads
            while len(self.buttons) > self.settings.dedupe_size:
                self.buttons.popitem(last=False)
        return content or None

    async def handle(self, request: Request) -> HTTPResponse:
        self.verify(request)
        if len(request.body) > self.settings.max_body_bytes:
            raise ChannelError(
                413, f"request body is larger than {self.settings.max_body_bytes:,} bytes"
            )
        await self.check_fresh(request)
        fields = self.decrypt(request, parse_xml(request.body))
        openid = fields.get("FromUserName", "").strip()
        if not openid or len(openid) > 64 or not openid.isprintable():
            raise ChannelError(400, "FromUserName (the OpenID) is missing or invalid")
        incoming = self.incoming_text(fields)
        if incoming is None:
            return text(SUCCESS)
        if incoming == UNSUPPORTED:
            return self.respond(request, self.say("utter_text_only"), fields)
        key = self.dedupe_key(fields)
        previous = self._remember(key)
        if previous is not None:  # a retry: never a second turn
            logger.info("WeChat retry of %s answered without a new turn", key)
            return self.respond(request, previous.reply if previous.decided else None, fields)
        if self.claims is not None and not await self.claims.claim(key):
            logger.info("WeChat retry of %s: another worker runs its turn", key)
            return text(SUCCESS)
        entry = self.seen[key]
        task = asyncio.create_task(self.turn(openid, incoming, fields))
        entry.task = task
        try:
            content = await asyncio.wait_for(asyncio.shield(task), self.settings.reply_timeout)
        except TimeoutError:
            entry.decided = True
            self._send_later(openid, task)
            return text(SUCCESS)
        except Exception:
            self.seen.pop(key, None)  # let WeChat's retry try again (on any worker)
            if self.claims is not None:
                await self.claims.release(key)
            raise
        if content is not None and len(content.encode("utf-8")) > TEXT_LIMIT:
            if self.api is not None:  # all parts in order through the customer-service API
                entry.decided = True
                self._send_later(openid, task)
                return text(SUCCESS)
            logger.warning(
                "WeChat reply to %s is longer than %d bytes and channels.wechat "
                "appid/secret are not set: only its first part is sent",
                openid,
                TEXT_LIMIT,
            )
            content = split_text(content)[0]
        entry.reply, entry.decided = content, True
        return self.respond(request, content, fields)

    def _send_later(self, openid: str, task: asyncio.Task[str | None]) -> None:
        async def send() -> None:
            try:
                content = await task
            except Exception:
                logger.exception("WeChat turn for %s failed after the passive window", openid)
                return
            if not content:
                return
            if self.api is None:
                logger.error(
                    "WeChat turn for %s was too slow for a passive reply and "
                    "channels.wechat appid/secret are not set: the reply is lost",
                    openid,
                )
                return
            try:
                await self.api.send_text(openid, content)  # split over TEXT_LIMIT, in order
            except Exception as exc:  # network or API error: logged, nothing else to do
                logger.error("WeChat customer-service message to %s failed: %s", openid, exc)

        background = asyncio.create_task(send())
        self.background.add(background)
        background.add_done_callback(self.background.discard)

    async def push(self, conversation_id: str, content: str) -> None:
        """A message outside a turn (a human agent's reply) through the customer-service API:
        to ``wechat:<openid>``, or to the OpenID bound to ``customer:<id>``."""
        if self.api is None:
            raise RuntimeError("channels.wechat appid/secret are not set: cannot push messages")
        openid: str | None = None
        if conversation_id.startswith(f"{CHANNEL}:"):
            openid = conversation_id.removeprefix(f"{CHANNEL}:")
        elif conversation_id.startswith("customer:") and self.bindings is not None:
            openid = await asyncio.to_thread(
                self.bindings.openid_of, conversation_id.removeprefix("customer:")
            )
        if not openid:
            raise RuntimeError(f"no WeChat OpenID for {conversation_id}")
        await self.api.send_text(openid, content)

    async def drain(self) -> None:
        """Wait for the replies still being sent through the customer-service API."""
        while self.background:
            await asyncio.gather(*list(self.background), return_exceptions=True)

    async def close(self) -> None:
        await self.drain()
        if self.claims is not None:
            await self.claims.close()
        if self.api is not None:
            await self.api.close()


class RedisClaims:
    """First-come claims of message keys shared by every worker (``SET NX`` with a TTL)."""

    PREFIX = "bankbot:wechat:msg:"

    def __init__(self, url: str, seconds: float) -> None:
        self.redis = redis_client(url, timeout=2.0, retries=None, decode_responses=False)
        self.seconds = max(1, round(seconds))

    async def claim(self, key: str) -> bool:
        try:
            return bool(await self.redis.set(self.PREFIX + key, "1", nx=True, ex=self.seconds))
        except Exception as exc:  # Redis down: this worker's own dedupe still holds
            logger.error("Redis dedupe unavailable (%s); deduplicating per worker", exc)
            return True

    async def release(self, key: str) -> None:
        """Forget a claim whose turn failed, so that WeChat's retry runs it."""
        try:
            await self.redis.delete(self.PREFIX + key)
        except Exception as exc:  # the claim expires after dedupe_seconds
            logger.error("Redis dedupe unavailable (%s); claim of %s kept", exc, key)

    async def close(self) -> None:
        await self.redis.aclose()


def wechat_blueprint(
    on_new_message: OnNewMessage,
    settings: WeChatSettings | None = None,
    bindings: BindingStore | None = None,
    *,
    tracker_store: Any = None,
    domain: Domain | None = None,
) -> Blueprint:
    """The channel; its routes exist only when a token is configured (otherwise the path is a
    plain 404 and a warning-free info line is logged). The :class:`WeChatChannel` is
    ``bp.ctx.channel`` (``None`` when disabled). Without ``bindings`` they are kept in
    ``tracker_store``'s database when it is SQL (:func:`binding_store_for`)."""
    settings = settings or load_wechat_settings()
    bp = Blueprint("channel_wechat", url_prefix=f"/webhooks/{CHANNEL}")
    bp.ctx.channel = None
    if not settings.enabled:
        logger.info(
            "WeChat channel disabled: set channels.wechat.token in config.yml or "
            "BOT_WECHAT_TOKEN to enable /webhooks/wechat/webhook"
        )
        return bp
    if bindings is None:
        bindings = binding_store_for(settings, tracker_store)
    channel = WeChatChannel(on_new_message, settings, bindings, domain or Domain())
    url = redis_url()
    if url:
        channel.claims = RedisClaims(url, settings.dedupe_seconds)
        assert channel.replay is not None
        channel.replay.redis = channel.claims.redis  # nonces shared by every worker
        if channel.api is not None and settings.appid:  # one access token for all workers
            wait = 2 * settings.http_timeout + 5  # a fetch may take two calls
            channel.api.shared = RedisTokenStore(
                channel.claims.redis, settings.appid, lock_seconds=wait, wait_seconds=wait
            )
    bp.ctx.channel = channel

    @bp.get("/webhook")
    async def verify(request: Request) -> HTTPResponse:
        channel.verify(request)
        await channel.check_fresh(request)
        return text(request.args.get("echostr", ""))

    @bp.post("/webhook")
    async def webhook(request: Request) -> HTTPResponse:
        return await channel.handle(request)

    @bp.before_server_stop
    async def finish(app: Any) -> None:
        await channel.close()

    return bp
