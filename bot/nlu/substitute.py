"""A Rasa component served by one of ours: same place in the pipeline, our implementation.

The substitute records one note saying what stands in for it (``bot train`` prints the
notes); training, processing, saving and loading go to the inner component.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Self

from bot.nlu.interfaces import Component, Message
from bot.training.data import TrainingData


class Substitute(Component):
    """Subclasses define ``inner(config)``: the class and config of the stand-in."""

    why: ClassVar[str] = ""

    def __init__(self, config: dict[str, Any], inner: Component | None = None) -> None:
        super().__init__(config)
        if inner is None:
            inner_type, inner_config = self.inner(self.config)
            inner = inner_type(inner_config)
        self.delegate = inner
        if getattr(inner, "extracts_entities", False):
            inner.name = self.name  # type: ignore[misc]  # entities say who extracted them
        self.note(f"{self.name}: {self.why or 'substituted'}; using {type(inner).__name__}")
        for line in inner.notes():
            self.note(line)

    @classmethod
    def inner(cls, config: dict[str, Any]) -> tuple[type[Component], dict[str, Any]]:
        raise NotImplementedError

    @property
    def extracts_entities(self) -> bool:
        return bool(getattr(self.delegate, "extracts_entities", False))

    def attach(self, pipeline: list[Component]) -> None:
        self.delegate.attach(pipeline)

    def train(self, data: TrainingData, messages: list[Message]) -> None:
        self.delegate.train(data, messages)

    def process(self, message: Message) -> None:
        self.delegate.process(message)

    def persist(self, directory: Path) -> None:
        self.delegate.persist(directory)

    @classmethod
    def load(cls, directory: Path, config: dict[str, Any]) -> Self:
        inner_type, inner_config = cls.inner({**cls.defaults, **config})
        return cls(config, inner_type.load(directory, inner_config))


def runtime(config: dict[str, Any]) -> dict[str, Any]:
    """The keys the pipeline injects (project root, language) to pass on to a stand-in."""
    return {k: config[k] for k in ("project_root",) if k in config}
