"""Maps extracted entity values to canonical values (``工资卡`` → ``debit_card``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Self

from bot.nlu.interfaces import Component, Message
from bot.training.data import TrainingData


class EntitySynonymMapper(Component):
    name = "EntitySynonymMapper"

    def __init__(self, config: dict[str, Any], synonyms: dict[str, str] | None = None) -> None:
        super().__init__(config)
        self.synonyms = synonyms or {}

    def train(self, data: TrainingData, messages: list[Message]) -> None:
        self.synonyms = data.synonym_map()
        for message in messages:
            self.process(message)

    def process(self, message: Message) -> None:
        for entity in message.entities:
            value = entity.get("value")
            if isinstance(value, str):
                canonical = self.synonyms.get(value.lower())
                if canonical is not None and canonical != value:
                    entity["value"] = canonical
                    entity.setdefault("processors", []).append(self.name)

    def persist(self, directory: Path) -> None:
        (directory / "synonyms.json").write_text(
            json.dumps(self.synonyms, ensure_ascii=False, indent=1), encoding="utf-8"
        )

    @classmethod
    def load(cls, directory: Path, config: dict[str, Any]) -> Self:
        synonyms = json.loads((directory / "synonyms.json").read_text(encoding="utf-8"))
        return cls(config, synonyms)
