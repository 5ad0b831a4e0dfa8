"""``endpoints.yml`` (``--endpoints``, ``$BOT_ENDPOINTS``): the action server, tracker store,
lock store and core-banking gateway (all optional), read without loading the engine (the
action server reads it too), and ``$BOT_REDIS_URL``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.project import Project
from bot.redis import redis_url
from bot.settings_file import SettingsFile, read_settings_file

# The endpoints.yml sections bankbot reads; any other is kept in Endpoints.sections.
ENDPOINT_SECTIONS = ("action_endpoint", "tracker_store", "lock_store", "bank")
HOLDS = "action_endpoint, tracker_store, lock_store, ..."


@dataclass(frozen=True)
class Endpoints:
    """``endpoints.yml``: each section as written, None when absent, and ``$BOT_REDIS_URL``."""

    action_endpoint: Mapping[str, Any] | None = None
    tracker_store: Mapping[str, Any] | None = None
    lock_store: Mapping[str, Any] | None = None
    bank: Mapping[str, Any] | None = None
    redis_url: str | None = None
    sections: Mapping[str, Any] = field(default_factory=dict)  # the whole file

    @classmethod
    def from_file(cls, file: SettingsFile, env: Mapping[str, str] | None = None) -> Endpoints:
        values: dict[str, Any] = {}
        for name in ENDPOINT_SECTIONS:
            section = file.data.get(name)
            if section is not None and not isinstance(section, dict):
                raise file.error(
                    f"{name} must be a mapping, got {type(section).__name__}",
                    fix=f"write '{name}:' with its options indented below it",
                )
            values[name] = section
        return cls(**values, redis_url=redis_url(env), sections=dict(file.data))


def read_endpoints_file(project: Project) -> SettingsFile:
    """The project's endpoints file as read (empty when it has none)."""
    return read_settings_file(project.endpoints_file, holds=HOLDS)


def load_endpoints(project: Project, env: Mapping[str, str] | None = None) -> Endpoints:
    """The project's :class:`Endpoints` (``env``: default the process environment)."""
    return Endpoints.from_file(read_endpoints_file(project), env)


def read_endpoints(project: Project) -> dict[str, Any]:
    """The endpoints file as a mapping; ``{}`` when the project has none."""
    return read_endpoints_file(project).data
