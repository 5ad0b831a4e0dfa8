"""The project's settings, read once: ``config.yml``, ``endpoints.yml``, ``handoff.yml`` and
the environment, as one frozen object of typed parts.

Each part is made by the module that owns it from the mapping read here (every file is
read once, by :mod:`bot.settings_file`):

======================  ==========================================  =========================
part                    from                                        made by
======================  ==========================================  =========================
``config``              ``config.yml`` pipeline, policies           :mod:`bot.config`
``server``              ``config.yml`` server, channels.app; env    :mod:`bot.server.settings`
``knowledge_base``      ``config.yml`` knowledge_base               :mod:`bot.kb.settings`
``handoff``             ``handoff.yml``; env                        :mod:`bot.handoff.config`
``endpoints``           ``endpoints.yml``; ``$BOT_REDIS_URL``       :class:`Endpoints`
======================  ==========================================  =========================

An error in a file is one line: ``file:line: what. Fix: how``. Env variable names and file
formats are those of the parts. Loaded by the server and the CLI (the top of the data flow);
the parts do not import this module.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from bot.errors import ConfigError
from bot.project import Project
from bot.redis import redis_url
from bot.settings_file import SettingsFile, read_settings_file

if TYPE_CHECKING:
    from bot.config import BotConfig
    from bot.handoff.config import HandoffConfig
    from bot.kb.settings import KBSettings
    from bot.server.settings import ServerSettings

T = TypeVar("T")

# The endpoints.yml sections bankbot reads; any other is kept in Endpoints.sections.
ENDPOINT_SECTIONS = ("action_endpoint", "tracker_store", "lock_store", "bank")


@dataclass(frozen=True)
class Endpoints:
    """``endpoints.yml`` (``--endpoints``, ``$BOT_ENDPOINTS``): each section as written, None
    when absent, and ``$BOT_REDIS_URL``."""

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
                raise file.error(f"{name} must be a mapping, got {type(section).__name__}",
                                 fix=f"write '{name}:' with its options indented below it")
            values[name] = section
        return cls(**values, redis_url=redis_url(env), sections=dict(file.data))


@dataclass(frozen=True)
class Settings:
    """Everything a project configures (see the module's table)."""

    project: Project
    config: BotConfig
    server: ServerSettings
    knowledge_base: KBSettings
    handoff: HandoffConfig
    endpoints: Endpoints
    # The files as read (e.g. config_file.data["channels"]["wechat"] for the WeChat channel).
    config_file: SettingsFile
    endpoints_file: SettingsFile
    handoff_file: SettingsFile

    @property
    def production(self) -> bool:
        return self.server.production

    @property
    def redis_url(self) -> str | None:
        return self.endpoints.redis_url

    @classmethod
    def load(cls, project: Project, env: Mapping[str, str] | None = None) -> Settings:
        """Read the project's files once and make every part (``env``: default the process
        environment)."""
        from bot.config import parse_config
        from bot.handoff import config as handoff_config
        from bot.kb.settings import KBSettings
        from bot.server.settings import settings_from_mapping

        env = os.environ if env is None else env
        config_file = read_settings_file(
            project.config_file, required=True, holds="language, pipeline, policies, ...",
            missing_fix="create it or pass --config FILE")
        endpoints_file = read_settings_file(
            project.endpoints_file, holds="action_endpoint, tracker_store, lock_store, ...")
        handoff_file = read_settings_file(project.root / handoff_config.FILE,
                                          holds="groups, routing, triggers, ...")
        raw = config_file.data
        return cls(
            project=project,
            config=_part(config_file, "docs/nlu-pipeline.md",
                         lambda: parse_config(raw, project.config_file, project.root)),
            server=_part(config_file, "docs/server.md", lambda: settings_from_mapping(
                raw, project.root, env, project.config_file)),
            knowledge_base=_part(config_file, "docs/knowledge-base.md",
                                 lambda: KBSettings.from_config(raw, project.root)),
            handoff=_part(handoff_file, "docs/handoff.md",
                          lambda: handoff_config.parse(handoff_file.data, env)),
            endpoints=Endpoints.from_file(endpoints_file, env),
            config_file=config_file,
            endpoints_file=endpoints_file,
            handoff_file=handoff_file,
        )


def _part(file: SettingsFile, doc: str, make: Callable[[], T]) -> T:
    """``make()``, its errors as one line naming ``file`` and the line of the key."""
    try:
        return make()
    except ConfigError as exc:
        raise file.error(str(exc), fix=f"correct that value ({doc})") from exc
    except (TypeError, ValueError) as exc:  # e.g. int("x") in a part's parser
        raise file.error(str(exc), fix=f"correct that value ({doc})") from exc
