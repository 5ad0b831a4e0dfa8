"""``handoff.yml``: skill groups, routing, priorities, triggers, queue and agent settings.

Every value has a default (a project without the file hands off to one group, 人工客服, open
around the clock). Loaded once at start-up; nothing here does I/O except :func:`read_file`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.errors import ConfigError
from bot.settings_file import SettingsFile, read_settings_file

FILE = "handoff.yml"
AGENT_SECRET_ENV = "BOT_AGENT_SECRET"
WEBHOOK_URL_ENV = "BOT_HANDOFF_WEBHOOK"
# Signs agent tokens when no secret is configured (development only; refused in production).
DEV_AGENT_SECRET = "bankbot-agent-development-secret-do-not-use"
_HOURS = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")


@dataclass(frozen=True)
class Hours:
    """Open from ``start`` to ``end`` (``end`` 24:00 = midnight) on ``days`` (1 = Monday)."""

    start: time = time(0, 0)
    end_minutes: int = 24 * 60
    days: frozenset[int] = frozenset(range(1, 8))

    def open_at(self, moment: datetime) -> bool:
        minutes = moment.hour * 60 + moment.minute
        start = self.start.hour * 60 + self.start.minute
        return moment.isoweekday() in self.days and start <= minutes < self.end_minutes


@dataclass(frozen=True)
class Group:
    name: str
    hours: Hours = field(default_factory=Hours)
    description: str = ""


@dataclass(frozen=True)
class Rule:
    """A business rule: when every given condition holds, hand off (to ``group``, with
    ``priority`` added), without further questions."""

    name: str
    intents: frozenset[str] = frozenset()
    keywords: tuple[str, ...] = ()
    min_age: int | None = None
    vip: bool | None = None
    group: str | None = None
    priority: int = 0


@dataclass(frozen=True)
class Priorities:
    complaint: int = 2
    elderly: int = 2
    vip: int = 1
    elderly_age: int = 60


@dataclass(frozen=True)
class Triggers:
    intents: frozenset[str] = frozenset({"request_human", "complain"})
    fallbacks_in_a_row: int = 2
    sentiment_threshold: float = 0.75  # mean P(negative) over the window
    sentiment_window: int = 3  # recent customer messages
    action_failed: bool = True


@dataclass(frozen=True)
class HandoffConfig:
    groups: tuple[Group, ...] = (Group("人工客服"),)
    default_group: str = "人工客服"
    intent_groups: Mapping[str, str] = field(default_factory=dict)
    entity_groups: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    category_groups: Mapping[str, str] = field(default_factory=dict)
    elderly_group: str | None = None
    priorities: Priorities = field(default_factory=Priorities)
    triggers: Triggers = field(default_factory=Triggers)
    rules: tuple[Rule, ...] = ()
    timezone: str = "Asia/Shanghai"
    max_wait_seconds: float = 300.0
    average_handle_seconds: float = 240.0
    auto_assign: bool = True
    reservation_seconds: float = 120.0  # an unaccepted reservation then goes back (0: never)
    default_capacity: int = 3
    resolutions: tuple[str, ...] = ("resolved", "follow_up", "transferred_offline", "no_reply")
    canned_replies: tuple[tuple[str, str], ...] = ()
    webhook_url: str | None = None
    webhook_secret: str | None = None
    agent_secret: str | None = None
    token_minutes: int = 480

    @property
    def group_names(self) -> list[str]:
        return [g.name for g in self.groups]

    def group(self, name: str) -> Group | None:
        return next((g for g in self.groups if g.name == name), None)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def is_open(self, group: str, now: float) -> bool:
        found = self.group(group)
        return found is None or found.hours.open_at(datetime.fromtimestamp(now, self.zone))

    @property
    def uses_dev_secret(self) -> bool:
        return not self.agent_secret or self.agent_secret == DEV_AGENT_SECRET

    @property
    def secret(self) -> str:
        return self.agent_secret or DEV_AGENT_SECRET


# --- loading -----------------------------------------------------------------------------


def _mapping(raw: Any, where: str) -> dict[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must be a mapping")
    return raw


def _hours(raw: Any, where: str) -> Hours:
    if raw is None:
        return Hours()
    if isinstance(raw, str):
        raw = {"time": raw}
    raw = _mapping(raw, where)
    spec = str(raw.get("time", "00:00-24:00")).replace(" ", "")
    match = _HOURS.match(spec)
    if not match:
        raise ConfigError(f"{where}.time must look like 08:30-21:00, got {spec!r}")
    h1, m1, h2, m2 = (int(x) for x in match.groups())
    if h1 > 23 or m1 > 59 or m2 > 59 or h2 * 60 + m2 > 24 * 60 or h2 * 60 + m2 <= h1 * 60 + m1:
        raise ConfigError(f"{where}.time {spec!r} is not a valid range within one day")
    days = raw.get("days", list(range(1, 8)))
    if not isinstance(days, list) or not all(isinstance(d, int) and 1 <= d <= 7 for d in days):
        raise ConfigError(f"{where}.days must be a list of 1 (Monday) … 7 (Sunday)")
    return Hours(time(h1, m1), h2 * 60 + m2, frozenset(days))


def _names(raw: Any, where: str, default: list[str]) -> frozenset[str]:
    """A list of names; a single name alone is a list of one."""
    if raw is None:
        raw = default
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list):
        raise ConfigError(f"handoff.yml: {where} must be a list of names")
    return frozenset(str(x) for x in raw)


def _str_map(raw: Any, where: str) -> dict[str, str]:
    return {str(k): str(v) for k, v in _mapping(raw, where).items()}


def parse(raw: Mapping[str, Any], env: Mapping[str, str] | None = None) -> HandoffConfig:
    env = os.environ if env is None else env
    groups_raw = raw.get("groups") or [{"name": "人工客服"}]
    if not isinstance(groups_raw, list):
        raise ConfigError("handoff.yml: 'groups' must be a list")
    groups = []
    for i, item in enumerate(groups_raw):
        item = {"name": item} if isinstance(item, str) else _mapping(item, f"groups[{i}]")
        name = str(item.get("name") or "").strip()
        if not name:
            raise ConfigError(f"handoff.yml: groups[{i}] has no name")
        groups.append(
            Group(
                name,
                _hours(item.get("hours"), f"groups[{i}].hours"),
                str(item.get("description", "")),
            )
        )
    names = {g.name for g in groups}
    if len(names) != len(groups):
        raise ConfigError("handoff.yml: group names must be unique")

    def known(group: str | None, where: str) -> str | None:
        if group is not None and group not in names:
            raise ConfigError(
                f"handoff.yml: {where} names group {group!r}, which is not in "
                f"'groups' ({', '.join(sorted(names))})"
            )
        return group

    routing = _mapping(raw.get("routing"), "routing")
    default_group = known(
        str(routing.get("default_group", groups[0].name)), "routing.default_group"
    )
    assert default_group is not None
    intent_groups = _str_map(routing.get("intents"), "routing.intents")
    category_groups = _str_map(routing.get("knowledge_categories"), "routing.knowledge_categories")
    entity_groups = {
        str(entity): _str_map(values, f"routing.entities.{entity}")
        for entity, values in _mapping(routing.get("entities"), "routing.entities").items()
    }
    for where, mapping in [
        ("routing.intents", intent_groups),
        ("routing.knowledge_categories", category_groups),
        *((f"routing.entities.{e}", m) for e, m in entity_groups.items()),
    ]:
        for group in mapping.values():
            known(group, where)
    elderly_group = known(routing.get("elderly_group"), "routing.elderly_group")

    pr = _mapping(raw.get("priorities"), "priorities")
    priorities = Priorities(
        int(pr.get("complaint", 2)),
        int(pr.get("elderly", 2)),
        int(pr.get("vip", 1)),
        int(pr.get("elderly_age", 60)),
    )

    tr = _mapping(raw.get("triggers"), "triggers")
    sentiment = _mapping(tr.get("sentiment"), "triggers.sentiment")
    threshold = float(sentiment.get("threshold", 0.75))
    if not 0 < threshold <= 1:
        raise ConfigError("handoff.yml: triggers.sentiment.threshold must be in (0, 1]")
    triggers = Triggers(
        _names(tr.get("intents"), "triggers.intents", ["request_human", "complain"]),
        int(tr.get("fallbacks_in_a_row", 2)),
        threshold,
        max(1, int(sentiment.get("window", 3))),
        bool(tr.get("action_failed", True)),
    )
    rules = []
    rules_raw = tr.get("rules") or []
    if not isinstance(rules_raw, list):
        raise ConfigError("handoff.yml: triggers.rules must be a list of rules")
    for i, item in enumerate(rules_raw):
        item = _mapping(item, f"triggers.rules[{i}]")
        keywords = item.get("keywords") or []
        if not isinstance(keywords, list):
            raise ConfigError(f"handoff.yml: triggers.rules[{i}].keywords must be a list")
        rule = Rule(
            str(item.get("name") or f"rule_{i + 1}"),
            _names(item.get("intents"), f"triggers.rules[{i}].intents", []),
            tuple(str(k) for k in keywords),
            int(item["min_age"]) if item.get("min_age") is not None else None,
            bool(item["vip"]) if item.get("vip") is not None else None,
            known(item.get("group"), f"triggers.rules[{i}].group"),
            int(item.get("priority", 0)),
        )
        if not (rule.intents or rule.keywords):
            raise ConfigError(f"handoff.yml: triggers.rules[{i}] needs 'intents' or 'keywords'")
        rules.append(rule)

    queue = _mapping(raw.get("queue"), "queue")
    agents = _mapping(raw.get("agents"), "agents")
    webhook = _mapping(raw.get("webhook"), "webhook")
    canned = []
    for i, item in enumerate(agents.get("canned_replies") or []):
        item = _mapping(item, f"agents.canned_replies[{i}]")
        canned.append((str(item.get("title", "")), str(item.get("text", ""))))
    resolutions = tuple(str(r) for r in agents.get("resolutions") or HandoffConfig.resolutions)
    timezone = str(raw.get("timezone", "Asia/Shanghai"))
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"handoff.yml: unknown timezone {timezone!r}") from None
    return HandoffConfig(
        groups=tuple(groups),
        default_group=default_group,
        intent_groups=intent_groups,
        entity_groups=entity_groups,
        category_groups=category_groups,
        elderly_group=elderly_group,
        priorities=priorities,
        triggers=triggers,
        rules=tuple(rules),
        timezone=timezone,
        max_wait_seconds=float(queue.get("max_wait_seconds", 300)),
        average_handle_seconds=float(queue.get("average_handle_seconds", 240)),
        auto_assign=bool(queue.get("auto_assign", True)),
        reservation_seconds=max(0.0, float(queue.get("reservation_seconds", 120))),
        default_capacity=max(1, int(agents.get("default_capacity", 3))),
        resolutions=resolutions,
        canned_replies=tuple(canned),
        webhook_url=env.get(WEBHOOK_URL_ENV) or webhook.get("url") or None,
        webhook_secret=webhook.get("secret") or None,
        agent_secret=env.get(AGENT_SECRET_ENV) or agents.get("secret") or None,
        token_minutes=int(agents.get("token_minutes", 480)),
    )


def read_file(project_root: Path) -> SettingsFile:
    """The project's ``handoff.yml`` as read (empty when it has none)."""
    return read_settings_file(project_root / FILE, holds="groups, routing, triggers, ...")


def from_file(file: SettingsFile, env: Mapping[str, str] | None = None) -> HandoffConfig:
    """The config of ``file``; an error is one line ``handoff.yml:line: what. Fix: how``."""
    try:
        return parse(file.data, env)
    except (ConfigError, TypeError, ValueError) as exc:  # e.g. float("long") of a value
        raise file.error(str(exc), fix="correct that value (docs/handoff.md)") from None


def load(project_root: Path, env: Mapping[str, str] | None = None) -> HandoffConfig:
    """``handoff.yml`` of ``project_root`` (the server gets it from
    :mod:`bot.server.project_settings`)."""
    return from_file(read_file(project_root), env)
