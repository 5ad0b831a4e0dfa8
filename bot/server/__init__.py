"""The HTTP server: channels, service API and operator API (``bot run``)."""

from bot.server.app import app_for_project, create_app
from bot.server.settings import ServerSettings, load_settings

__all__ = ["ServerSettings", "app_for_project", "create_app", "load_settings"]
