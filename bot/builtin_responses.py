"""The built-in responses: texts the engine and the handoff send when the project's domain
defines no response of that name. They live in YAML files under ``bot/resources/responses/``
(one per part: ``engine.yml``, ``handoff.yml``, ...), in the domain's response format, so a
bank changes a sentence by defining the same ``utter_`` name in its ``domain.yml``."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import yaml

Variations = list[dict[str, Any]]


@cache
def builtin_responses() -> dict[str, Variations]:
    """Every built-in response, read once from the packaged files (sorted by file name)."""
    found: dict[str, Variations] = {}
    folder = resources.files("bot") / "resources" / "responses"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".yml"):
            continue
        data = yaml.safe_load(entry.read_text(encoding="utf-8")) or {}
        if not isinstance(data, dict):
            raise ValueError(f"bot/resources/responses/{entry.name}: not a mapping of responses")
        for name, variations in data.items():
            if name in found:
                raise ValueError(f"bot/resources/responses/{entry.name}: {name} defined twice")
            if not isinstance(variations, list) or not all(isinstance(v, dict) for v in variations):
                raise ValueError(
                    f"bot/resources/responses/{entry.name}: {name} must list variations"
                )
            found[str(name)] = [dict(v) for v in variations]
    return found


def builtin_text(name: str) -> str:
    """The text of the built-in response ``name`` (its first variation), for code that has
    no domain at hand."""
    return str(builtin_responses()[name][0].get("text") or "")
