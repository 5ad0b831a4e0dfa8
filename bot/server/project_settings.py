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
``wechat``              ``config.yml`` channels.wechat; env         :mod:`bot.channels.wechat`
``endpoints``           ``endpoints.yml``; ``$BOT_REDIS_URL``       :mod:`bot.endpoints`
======================  ==========================================  =========================

An error in a file is one line: ``file:line: what. Fix: how``. Env variable names and file
formats are those of the parts. Loaded by ``bot run`` (and :func:`bot.server.app.
app_for_project`), the top of the data flow, which passes the parts down; the parts do not
import this module (it lives in :mod:`bot.server`, above every part, so no import cycle).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from bot.endpoints import Endpoints, read_endpoints_file
from bot.errors import ConfigError
from bot.project import Project
from bot.settings_file import SettingsFile, read_settings_file

if TYPE_CHECKING:
    from bot.channels.wechat.channel import WeChatSettings
    from bot.config import BotConfig
    from bot.handoff.config import HandoffConfig
    from bot.kb.settings import KBSettings
    from bot.server.settings import ServerSettings

T = TypeVar("T")


@dataclass(frozen=True)
class Settings:
    """Everything a project configures (see the module's table)."""

    project: Project
    config: BotConfig
    server: ServerSettings
    knowledge_base: KBSettings
    handoff: HandoffConfig
    wechat: WeChatSettings
    endpoints: Endpoints
    # The files as read.
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
        from bot.channels.wechat.channel import settings_from_mapping as wechat_settings
        from bot.channels.wechat.channel import wechat_section
        from bot.config import parse_config
        from bot.handoff import config as handoff_config
        from bot.kb.settings import KBSettings
        from bot.server.settings import settings_from_mapping

        env = os.environ if env is None else env
        config_file = read_settings_file(
            project.config_file,
            required=True,
            holds="language, pipeline, policies, ...",
            missing_fix="create it or pass --config FILE",
        )
        endpoints_file = read_endpoints_file(project)
        handoff_file = handoff_config.read_file(project.root)
        raw = config_file.data
        return cls(
            project=project,
            config=_part(
                config_file,
                "docs/nlu-pipeline.md",
                lambda: parse_config(raw, project.config_file, project.root),
            ),
            server=_part(
                config_file,
                "docs/server.md",
                lambda: settings_from_mapping(raw, project.root, env, project.config_file),
            ),
            knowledge_base=_part(
                config_file,
                "docs/knowledge-base.md",
                lambda: KBSettings.from_config(raw, project.root),
            ),
            handoff=handoff_config.from_file(handoff_file, env),
            wechat=_part(
                config_file,
                "docs/wechat.md",
                lambda: wechat_settings(wechat_section(raw), env, project.root),
            ),
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
