"""The HTTP server: channels, service API and operator API (``bot run``).

Exports are resolved lazily so that ``bot.server.settings`` can be imported on its own
(``bot token``) without loading the whole app.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ServerSettings", "app_for_project", "create_app", "load_settings"]


def __getattr__(name: str) -> Any:
    if name in ("app_for_project", "create_app"):
        from bot.server import app

        return getattr(app, name)
    if name in ("ServerSettings", "load_settings"):
        from bot.server import settings

        return getattr(settings, name)
    raise AttributeError(name)
