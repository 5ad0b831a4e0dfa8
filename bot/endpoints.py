"""``endpoints.yml``: the action server, tracker store and lock store (all optional), read
without loading the engine (the action server reads it too)."""

from __future__ import annotations

from typing import Any

import yaml

from bot.errors import ConfigError
from bot.project import Project, yaml_error


def read_endpoints(project: Project) -> dict[str, Any]:
    """The endpoints file as a mapping; ``{}`` when the project has none."""
    path = project.endpoints_file
    if not path.is_file():
        return {}
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(yaml_error(path, exc)) from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping (action_endpoint, tracker_store, ...)")
    return data
