"""Which Rasa-style input channels the server mounts: ``credentials.yml`` read as Rasa reads it.

Without a credentials.yml the channels are today's: REST, app, WeChat (when configured), and
no socket.io. With one, its top-level keys choose the Rasa channels:

- ``rest:`` → ``POST /webhooks/rest/webhook`` (absent: not mounted, as in Rasa);
- ``socketio: {user_message_evt, bot_message_evt, session_persistence, ...}`` → socket.io;
- ``my_package.MyChannel: {...}`` → a custom channel: a class with ``name()``,
  ``from_credentials(credentials)`` and ``blueprint(on_new_message)``, mounted at
  ``/webhooks/<name>/``;
- ``wecom_kf: {corpid, secret, token, encoding_aes_key, handoff}`` → the WeChat customer
  service channel at ``/webhooks/wecom_kf/webhook`` (docs/wecom-kf.md);
- ``rasa:`` (Rasa X / Enterprise), other Rasa channels (``telegram``, ``slack``, ...) and
  classes that cannot be imported: one clear log line each, then ignored.

Our own channels do not depend on credentials.yml: the app channel (signed customer identity),
WeChat (``channels.wechat`` in config.yml), the web chat page and the agent console follow the
project's own settings, so a credentials.yml with only ``rest`` and ``socketio`` leaves them
as they are (``app:``, ``wechat:``, ``webchat:`` keys there are noted and ignored).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.channels.base import ChannelError, MessageRefused, OnNewMessage
from bot.channels.inputs import MAX_SENDER_CHARS, RESERVED_PREFIX, check_anonymous
from bot.channels.wecom_kf.channel import CHANNEL as WECOM_KF
from bot.channels.wecom_kf.channel import WeComKfChannel
from bot.channels.wecom_kf.config import KfSettings
from bot.channels.wecom_kf.config import settings_from_mapping as wecom_kf_settings
from bot.core.messages import UserMessage
from bot.errors import ConfigError
from bot.handoff.records import Handoff
from bot.handoff.service import HandoffService
from bot.handoff.tables import OPEN
from bot.server.errors import ApiError
from bot.server.turns import TurnRunner
from bot.settings_file import read_settings_file

logger = logging.getLogger(__name__)

OURS = frozenset({"app", "wechat", "webchat"})  # configured in config.yml, not here
RASA_X = "rasa"
RASA_ONLY = frozenset(
    {
        "facebook",
        "slack",
        "telegram",
        "mattermost",
        "rocketchat",
        "botframework",
        "callback",
        "twilio",
        "twilio_voice",
        "webexteams",
        "hangouts",
        "cisco_webex",
        "console",
        "audiocodes",
        "genesys",
        "vonage",
        "browser_audio",
    }
)


@dataclass(frozen=True)
class Credentials:
    """credentials.yml as far as bankbot serves it."""

    path: Path
    rest: bool = False
    socketio: dict[str, Any] | None = None
    custom: dict[str, dict[str, Any]] = field(default_factory=dict)
    wecom_kf: KfSettings | None = None


def read_credentials(path: Path) -> Credentials | None:
    """The channels ``path`` asks for; None when there is no such file (today's channels)."""
    if not path.is_file():
        return None
    file = read_settings_file(path, holds="channel names and their settings")
    raw = file.data
    wecom_kf: KfSettings | None = None
    rest = False
    socketio: dict[str, Any] | None = None
    custom: dict[str, dict[str, Any]] = {}
    for key, value in raw.items():
        name = str(key)
        if value is not None and not isinstance(value, dict):
            raise ConfigError(f"{path}: '{name}' must be a mapping (or empty)")
        settings = dict(value or {})
        if name == "rest":
            rest = True
        elif name == "socketio":
            socketio = settings
        elif name == WECOM_KF:
            try:
                wecom_kf = wecom_kf_settings(settings, root=path.parent)
            except ConfigError as exc:
                raise file.error(str(exc), fix="correct that value (docs/wecom-kf.md)") from None
        elif name in OURS:
            logger.info(
                "%s: '%s' is configured by channels.%s in config.yml (and its env "
                "vars), not by credentials.yml; left as it is",
                path,
                name,
                name,
            )
        elif name == RASA_X:
            logger.warning(
                "%s: 'rasa' is the Rasa X / Rasa Enterprise channel, which bankbot "
                "does not have; ignored (the REST channel and the HTTP API serve "
                "the same integrations)",
                path,
            )
        elif "." in name:
            custom[name] = settings
        else:
            known = "rest, socketio, or a custom channel's module.Class"
            why = "a Rasa channel bankbot does not provide" if name in RASA_ONLY else "unknown"
            logger.warning(
                "%s: channel '%s' is %s; ignored (bankbot serves %s)", path, name, why, known
            )
    return Credentials(path, rest, socketio, custom, wecom_kf)


def turn_handler(runner: TurnRunner) -> OnNewMessage:
    """``on_new_message`` for our channels (REST, app, WeChat), which identify the sender
    themselves: one turn by ``runner`` (its rate limit, length limit and retried message ids),
    its refusals as :class:`MessageRefused`."""

    async def on_new_message(message: UserMessage) -> list[dict[str, Any]]:
        try:
            return await runner.run(message)
        except ChannelError as exc:
            raise MessageRefused(exc.status, exc.message, exc.headers.get("Retry-After")) from None

    return on_new_message


def anonymous_handler(runner: TurnRunner) -> OnNewMessage:
    """``on_new_message`` for the channels of credentials.yml: the server's rules, refusals
    as :class:`MessageRefused`. A message without a verified ``customer_id`` is anonymous and
    may not use a reserved conversation id; a channel that verified the customer must use
    ``customer:<id>``."""

    async def on_new_message(message: UserMessage) -> list[dict[str, Any]]:
        try:
            if len(message.sender_id) > MAX_SENDER_CHARS or not message.sender_id.strip():
                raise ApiError(400, f"sender id must be 1-{MAX_SENDER_CHARS} characters")
            if message.customer_id is None:
                check_anonymous(message.sender_id)
            elif message.sender_id != f"{RESERVED_PREFIX}{message.customer_id}":
                raise ApiError(
                    400, f"a verified customer's conversation is '{RESERVED_PREFIX}<customer id>'"
                )
            return await runner.run(message)
        except ChannelError as exc:
            raise MessageRefused(exc.status, exc.message, exc.headers.get("Retry-After")) from None

    return on_new_message


def refuse_session(session_id: str) -> str | None:
    """Why an anonymous session id may not be used (None: it may)."""
    try:
        check_anonymous(session_id)
    except ChannelError as exc:
        return exc.message
    return None


def load_custom_channel(dotted: str, credentials: dict[str, Any]) -> Any | None:
    """An instance of the custom channel class ``module.Class``, or None (logged once)."""
    module_name, _, class_name = dotted.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        logger.warning(
            "credentials.yml: custom channel '%s' cannot be loaded (%s); ignored. A "
            "bankbot channel is a class with name(), from_credentials() and "
            "blueprint(on_new_message) (docs/server.md)",
            dotted,
            exc,
        )
        return None
    if not all(callable(getattr(cls, a, None)) for a in ("name", "blueprint")):
        logger.warning(
            "credentials.yml: '%s' is not a channel (it needs name() and "
            "blueprint(on_new_message)); ignored",
            dotted,
        )
        return None
    from_credentials = getattr(cls, "from_credentials", None)
    try:
        return from_credentials(credentials) if callable(from_credentials) else cls()
    except Exception as exc:
        logger.warning(
            "credentials.yml: custom channel '%s' refused its settings (%s); ignored", dotted, exc
        )
        return None


def wecom_kf_hooks(channel: WeComKfChannel, handoff: HandoffService) -> None:
    """Plug the WeChat customer service channel into the handoff: agents' console replies
    go out through ``kf/send_msg``; a handoff of a group in ``servicer`` mode moves the WeCom
    session to a servicer (1 → 3) or WeCom's queue (1 → 2) and our queue records it as
    active with agent ``wecom:<servicer>`` (``wecom:queue``); a session ended at WeCom (state
    4) closes the open handoff."""
    handoff.senders[WECOM_KF] = channel.push
    metrics = handoff.on_queued
    store = handoff.store
    ctx = handoff.ctx

    async def to_servicer(queued: Handoff) -> None:
        mode = channel.settings.mode_for(queued.group)
        if mode.mode != "servicer":
            return
        try:
            state = await channel.transfer(queued.conversation_id, mode)
        except Exception as exc:  # the console keeps it
            logger.error("WeCom kf transfer of %s failed: %r", queued.conversation_id, exc)
            return
        agent = f"wecom:{mode.servicer_userid or 'queue'}"
        values = {"status": "active", "agent": agent, "accepted_at": ctx.clock()}
        moved = await asyncio.to_thread(store.handoffs.transition, queued.id, ["waiting"], values)
        if moved is None:
            logger.warning("handoff %s changed before its WeCom transfer was recorded", queued.id)
            return
        await asyncio.to_thread(
            store.audit.record,
            agent,
            "accept",
            queued.conversation_id,
            queued.id,
            {"wecom_kf_state": state},
        )
        await handoff.bus.publish("queue", "queue", {"group": queued.group})

    def on_queued(queued: Handoff) -> None:
        if metrics is not None:
            metrics(queued)
        if queued.channel == WECOM_KF:  # the channel's task: drained before its client closes
            channel.spawn(to_servicer(queued))

    async def session_ended(conversation_id: str) -> None:
        found = await asyncio.to_thread(store.handoffs.latest, conversation_id, OPEN)
        if found is None:
            return
        resolution = handoff.config.resolutions[0]
        closed = await asyncio.to_thread(
            store.handoffs.close, found.id, None, resolution, ctx.clock()
        )
        if closed is None:
            return
        await asyncio.to_thread(
            store.audit.record, WECOM_KF, "close", conversation_id, found.id, {"state": 4}
        )
        await ctx.resume(conversation_id)
        await handoff.bus.publish(
            f"conversation:{conversation_id}",
            "queue",
            {"status": "closed", "position": 0, "eta_seconds": 0},
        )
        if closed.agent:
            await handoff.bus.publish(
                f"agent:{closed.agent}", "closed", {"conversation_id": conversation_id}
            )
        await handoff.bus.publish("queue", "queue", {})

    handoff.on_queued = on_queued
    channel.on_session_end = session_ended
