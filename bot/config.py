"""Reads ``config.yml``: the NLU pipeline and the dialogue policies, each declared by name."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bot.errors import ConfigError


@dataclass(frozen=True)
class ComponentSpec:
    """One ``- name: X`` entry of ``pipeline:`` or ``policies:`` with its options."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, **self.options}


@dataclass(frozen=True)
class BotConfig:
    language: str
    pipeline: tuple[ComponentSpec, ...]
    policies: tuple[ComponentSpec, ...]
    assistant_id: str | None = None

    def pipeline_dicts(self) -> list[dict[str, Any]]:
        return [c.as_dict() for c in self.pipeline]


def _specs(raw: Any, key: str, path: Path) -> tuple[ComponentSpec, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(f"{path}: '{key}' must be a list of '- name: X' entries")
    specs = []
    for i, item in enumerate(raw, 1):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise ConfigError(
                f"{path}: entry {i} of '{key}' needs a 'name', e.g. '- name: JiebaTokenizer'"
            )
        options = {k: v for k, v in item.items() if k != "name"}
        specs.append(ComponentSpec(item["name"], options))
    return tuple(specs)


def parse_config(data: Any, path: Path) -> BotConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with 'language' and 'pipeline'")
    language = data.get("language", "zh")
    if not isinstance(language, str):
        raise ConfigError(f"{path}: 'language' must be a string such as 'zh'")
    pipeline = _specs(data.get("pipeline"), "pipeline", path)
    if not pipeline:
        raise ConfigError(f"{path}: 'pipeline' is empty; list the NLU components to run")
    assistant_id = data.get("assistant_id")
    return BotConfig(
        language=language,
        pipeline=pipeline,
        policies=_specs(data.get("policies"), "policies", path),
        assistant_id=str(assistant_id) if assistant_id is not None else None,
    )


def load_config(path: Path) -> BotConfig:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{path} does not exist") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from exc
    return parse_config(data, path)
