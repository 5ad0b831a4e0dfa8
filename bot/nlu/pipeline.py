"""The NLU pipeline: components built from config, trained in order, run per message."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.config import BotConfig
from bot.errors import ConfigError
from bot.nlu.interfaces import Component, Message
from bot.nlu.registry import component_class
from bot.training.data import TrainingData

# Keys injected at training time that describe this machine, not the model.
_RUNTIME_KEYS = {"project_root"}

ProgressCallback = Callable[[str, int, int], None]


def _folder(index: int, name: str) -> str:
    return f"{index}_{name}"


class NLUPipeline:
    def __init__(self, components: list[Component]) -> None:
        self.components = components
        for component in components:
            component.attach(components)

    @classmethod
    def from_config(cls, config: BotConfig, project_root: Path | None = None) -> NLUPipeline:
        components = []
        for spec in config.pipeline:
            component_type = component_class(spec.name, project_root)
            options = dict(spec.options)
            if project_root is not None:
                options["project_root"] = str(project_root)
            if "language" in component_type.defaults and "language" not in options:
                options["language"] = config.language
            try:
                components.append(component_type(options))
            except (ValueError, TypeError, KeyError) as exc:
                # A bad option value: one line, never a traceback.
                raise ConfigError(f"pipeline component '{spec.name}': {exc}") from None
        return cls(components)

    def notes(self) -> list[str]:
        """One line per substituted component or unhonoured option, without repeats."""
        seen: dict[str, None] = {}
        for component in self.components:
            for line in component.notes():
                seen.setdefault(line, None)
        return list(seen)

    def resolved_config(self) -> list[dict[str, Any]]:
        """Each component's name with every option, defaults filled in."""
        return [
            {"name": c.name, **{k: v for k, v in c.config.items() if k not in _RUNTIME_KEYS}}
            for c in self.components
        ]

    def train(self, data: TrainingData, progress: ProgressCallback | None = None) -> None:
        messages = [Message(example.text, norm=example.text) for example in data.examples]
        total = len(self.components)
        for i, component in enumerate(self.components):
            if progress:
                progress(component.name, i, total)
            component.train(data, messages)
        if progress:
            progress("done", total, total)

    def process(self, text: str) -> Message:
        message = Message(text, norm=text)  # a normaliser, when there is one, replaces norm
        for component in self.components:
            component.process(message)
        return message

    def parse(self, text: str) -> dict[str, Any]:
        return self.process(text).parse_result()

    def persist(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        for i, component in enumerate(self.components):
            sub = directory / _folder(i, component.name)
            sub.mkdir()
            component.persist(sub)
        (directory / "pipeline.json").write_text(
            json.dumps(self.resolved_config(), ensure_ascii=False, indent=2), encoding="utf-8"
        )

    @classmethod
    def load(cls, directory: Path) -> NLUPipeline:
        specs = json.loads((directory / "pipeline.json").read_text(encoding="utf-8"))
        components = []
        for i, spec in enumerate(specs):
            options = {k: v for k, v in spec.items() if k != "name"}
            component_type = component_class(spec["name"])
            components.append(component_type.load(directory / _folder(i, spec["name"]), options))
        return cls(components)
