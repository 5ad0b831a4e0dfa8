"""The ``wecom_kf:`` section of ``credentials.yml`` (env vars ``BOT_WECOM_KF_*`` win).

```yaml
wecom_kf:
  corpid: ww0123456789abcdef          # BOT_WECOM_KF_CORPID
  secret: ...                         # the 微信客服 secret; BOT_WECOM_KF_SECRET
  token: ...                          # callback Token; BOT_WECOM_KF_TOKEN
  encoding_aes_key: ...               # callback EncodingAESKey (43 chars); BOT_WECOM_KF_AES_KEY
  handoff:                            # per handoff group; unlisted groups: console
    cards: {mode: servicer, servicer_userid: zhangsan}   # 1 -> 3, to that servicer
    wealth: {mode: servicer, queue: true}                # 1 -> 2, WeCom's own queue
```
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.channels.wechat.crypto import WeChatCrypto, WeChatCryptoError
from bot.errors import ConfigError

SECTION = "wecom_kf"
ENV = {
    "corpid": "BOT_WECOM_KF_CORPID",
    "secret": "BOT_WECOM_KF_SECRET",
    "token": "BOT_WECOM_KF_TOKEN",
    "encoding_aes_key": "BOT_WECOM_KF_AES_KEY",
    "api_base": "BOT_WECOM_KF_API_BASE",
    "db": "BOT_WECOM_KF_DB",
}
MODES = ("console", "servicer")
DAY = 86_400.0


@dataclass(frozen=True)
class HandoffMode:
    """How a handoff of one group is served: ``console`` (our agent console; the WeCom
    session stays with the bot, state 1) or ``servicer`` (transferred to a WeCom servicer:
    state 3 with ``servicer_userid``, else state 2, WeCom's queue)."""

    mode: str = "console"
    servicer_userid: str | None = None

    @property
    def target_state(self) -> int:
        return 3 if self.servicer_userid else 2


@dataclass(frozen=True)
class KfSettings:
    corpid: str
    secret: str
    token: str
    encoding_aes_key: str
    api_base: str = "https://qyapi.weixin.qq.com"
    db: str | None = None  # SQLAlchemy URL; default: the tracker store's database
    handoff: dict[str, HandoffMode] = field(default_factory=dict)
    sync_limit: int = 1000  # messages per kf/sync_msg page (WeCom's maximum)
    max_age_seconds: float = 3 * DAY  # older messages and events are stored, not answered
    window_seconds: float = 2 * DAY  # WeChat: replies within 48 h of the customer's message
    budget: int = 5  # WeChat: at most 5 messages in that window
    enter_payload: str = "/greet"  # what a customer entering the session "sends"
    http_timeout: float = 5.0
    max_body_bytes: int = 16 * 1024
    project_root: Path | None = None

    def mode_for(self, group: str) -> HandoffMode:
        return self.handoff.get(group) or HandoffMode()


def _string(section: Mapping[str, Any], env: Mapping[str, str], key: str) -> str | None:
    value: Any = env.get(ENV[key]) if key in ENV else None
    value = value or section.get(key)
    if value is None:
        return None
    if not isinstance(value, str | int):
        raise ConfigError(f"{SECTION}.{key} must be a text, got {value!r}")
    return str(value).strip() or None


def _number(section: Mapping[str, Any], key: str, default: float, minimum: float) -> float:
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise ConfigError(
            f"{SECTION}.{key} must be a number >= {minimum:g}, got {value!r}. "
            f"Fix: write a number such as {default:g}"
        )
    return float(value)


def _modes(raw: Any) -> dict[str, HandoffMode]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError(
            f"{SECTION}.handoff must map handoff groups to their mode. "
            "Fix: write 'cards: {mode: servicer, servicer_userid: zhangsan}' under it"
        )
    modes: dict[str, HandoffMode] = {}
    for group, value in raw.items():
        where = f"{SECTION}.handoff.{group}"
        if isinstance(value, str):
            value = {"mode": value}
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where} must be a mapping. Fix: write '{{mode: console}}'")
        unknown = set(value) - {"mode", "servicer_userid", "queue"}
        if unknown:
            raise ConfigError(
                f"{where} has unknown keys {', '.join(sorted(map(str, unknown)))}. "
                "Fix: use mode, servicer_userid or queue"
            )
        mode = value.get("mode", "console")
        if mode not in MODES:
            raise ConfigError(
                f"{where}.mode must be console or servicer, got {mode!r}. Fix: write one of them"
            )
        servicer = value.get("servicer_userid")
        queue = value.get("queue", False)
        if not isinstance(queue, bool):
            raise ConfigError(f"{where}.queue must be true or false, got {queue!r}")
        if mode == "console" and (servicer or queue):
            raise ConfigError(
                f"{where}.servicer_userid and queue are for mode servicer. "
                "Fix: set mode: servicer or remove them"
            )
        if mode == "servicer":
            if bool(servicer) == bool(queue):
                raise ConfigError(
                    f"{where} needs either servicer_userid (state 3) or queue: true (state 2). "
                    "Fix: give exactly one of them"
                )
            if servicer is not None and (not isinstance(servicer, str) or len(servicer) > 64):
                raise ConfigError(f"{where}.servicer_userid must be a WeCom userid (text)")
        modes[str(group)] = HandoffMode(str(mode), str(servicer) if servicer else None)
    return modes


def settings_from_mapping(
    section: Mapping[str, Any] | None,
    env: Mapping[str, str] | None = None,
    root: Path | None = None,
) -> KfSettings:
    """The ``wecom_kf`` section; ``BOT_WECOM_KF_*`` env vars win. Errors name the key
    (``wecom_kf.handoff.cards.mode``) so that the caller can add the file and line."""
    env = os.environ if env is None else env
    section = section or {}
    if not isinstance(section, Mapping):
        raise ConfigError(f"{SECTION} must be a mapping. Fix: indent its keys under it")
    values = {key: _string(section, env, key) for key in ENV}
    missing = [k for k in ("corpid", "secret", "token", "encoding_aes_key") if not values[k]]
    if missing:
        raise ConfigError(
            f"{SECTION}.{missing[0]} is missing. Fix: set "
            + ", ".join(f"{SECTION}.{k} (or {ENV[k]})" for k in missing)
        )
    settings = KfSettings(
        corpid=str(values["corpid"]),
        secret=str(values["secret"]),
        token=str(values["token"]),
        encoding_aes_key=str(values["encoding_aes_key"]),
        api_base=values["api_base"] or KfSettings.api_base,
        db=values["db"],
        handoff=_modes(section.get("handoff")),
        sync_limit=int(_number(section, "sync_limit", 1000, 1)),
        max_age_seconds=_number(section, "max_age_seconds", 3 * DAY, 1),
        window_seconds=_number(section, "window_seconds", 2 * DAY, 1),
        budget=int(_number(section, "budget", 5, 1)),
        enter_payload=str(section.get("enter_payload") or "/greet"),
        http_timeout=_number(section, "http_timeout", 5.0, 0.1),
        max_body_bytes=int(_number(section, "max_body_bytes", 16 * 1024, 1024)),
        project_root=root,
    )
    if settings.sync_limit > 1000:
        raise ConfigError(f"{SECTION}.sync_limit must be at most 1000 (WeCom's maximum)")
    try:
        WeChatCrypto(settings.token, settings.encoding_aes_key, settings.corpid)
    except WeChatCryptoError as exc:
        raise ConfigError(
            f"{SECTION}.encoding_aes_key: {exc}. Fix: copy it from the WeCom admin console"
        ) from None
    return settings
