"""Reads ``domain.yml`` (Rasa 3.x). This release uses the intent and entity lists."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bot.errors import ConfigError


@dataclass(frozen=True)
class Domain:
    intents: tuple[str, ...] = ()
    entities: tuple[str, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict)


def _names(items: Any, key: str, path: Path) -> tuple[str, ...]:
    if items is None:
        return ()
    if not isinstance(items, list):
        raise ConfigError(f"{path}: '{key}' must be a list")
    names = []
    for item in items:
        if isinstance(item, str):
            names.append(item)
        elif isinstance(item, dict) and len(item) == 1:
            names.append(str(next(iter(item))))  # `- intent_name: {use_entities: ...}`
        else:
            raise ConfigError(f"{path}: cannot read {key} entry {item!r}; write '- name'")
    return tuple(names)


def load_domain(path: Path) -> Domain:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError as exc:
        raise ConfigError(f"{path} does not exist; create it with 'intents:' and 'entities:'") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with 'intents:' and 'entities:'")
    return Domain(
        intents=_names(data.get("intents"), "intents", path),
        entities=_names(data.get("entities"), "entities", path),
        raw=data,
    )
