"""Contracts of the NLU pipeline. No I/O and no heavy imports here.

Every stage has one signature: a component is built from its resolved config, trained on
the training data plus the examples as processed by the stages before it, then processes
one :class:`Message` at a time in place. It saves itself to a folder and loads from one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self

from bot.folding import fold_width_char
from bot.training.data import TrainingData


@dataclass(frozen=True)
class Token:
    """A token of the normalised text; ``start``/``end`` index ``Message.norm``."""

    text: str
    start: int
    end: int


@dataclass
class Message:
    """One utterance travelling through the pipeline.

    ``norm`` is the normalised text the models see; ``offsets[i]`` is the index in ``text``
    of ``norm[i]`` (with one extra entry for the end), so spans map back to the original.
    """

    text: str
    norm: str = ""
    offsets: list[int] = field(default_factory=list)
    tokens: list[Token] = field(default_factory=list)
    features: list[Any] = field(default_factory=list)
    intent: dict[str, Any] | None = None
    intent_ranking: list[dict[str, Any]] = field(default_factory=list)
    entities: list[dict[str, Any]] = field(default_factory=list)
    truncated: bool = False
    # Further keys of the parse result added by components (e.g. "sentiment").
    extras: dict[str, Any] = field(default_factory=dict)
    # Entities an extractor found but left out of ``entities`` because another extractor
    # had them (bot.nlu.entity_merge); not in the parse result, read by the per-extractor
    # evaluation.
    shadowed: list[dict[str, Any]] = field(default_factory=list)

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """Map a ``[start, end)`` span of ``norm`` to the original ``text``."""
        if not self.offsets:
            return start, end
        o_start = self.offsets[start]
        o_end = self.offsets[end - 1] + 1 if end > start else o_start
        return o_start, o_end

    def written(self, start: int, end: int) -> str:
        """``norm[start:end]`` with each letter in the case the customer wrote it: the
        normaliser's other changes (full-width to ASCII, Traditional to Simplified, one space
        for a run of whitespace) stay, lower-casing is undone (``Berlin``, not ``berlin``)."""
        span = self.norm[start:end]
        if not self.offsets:
            return span
        chars = []
        for i, ch in enumerate(span, start):
            original = self.text[self.offsets[i]] if self.offsets[i] < len(self.text) else ch
            original = fold_width_char(original)  # a full-width form of ASCII
            chars.append(original if original != ch and original.lower() == ch else ch)
        return "".join(chars)

    def parse_result(self) -> dict[str, Any]:
        """The ``/model/parse`` JSON of docs/rasa-compat.md."""
        result: dict[str, Any] = {
            "text": self.text,
            "intent": self.intent or {"name": None, "confidence": 0.0},
            "intent_ranking": self.intent_ranking,
            "entities": self.entities,
        }
        result.update(self.extras)
        if self.truncated:
            result["truncated"] = True
        return result


class Component(ABC):
    """A pipeline stage declared by ``name`` in config.yml with typed ``defaults``."""

    name: ClassVar[str]
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = {**self.defaults, **config}
        self._notes: list[str] = []

    def note(self, line: str) -> None:
        """Record one line for ``bot train`` to print: a substitution or an unhonoured option."""
        notes = self.__dict__.setdefault("_notes", [])  # also when __init__ was overridden
        if line not in notes:
            notes.append(line)

    def notes(self) -> list[str]:
        """Substitutions and options this component cannot honour, one line each."""
        return list(self.__dict__.get("_notes", []))

    def attach(self, pipeline: list[Component]) -> None:  # noqa: B027
        """Called once the whole pipeline is built (or loaded), before training or use: a
        component that needs an earlier one (SpacyTokenizer needs SpacyNLP) finds it here."""

    def train(self, data: TrainingData, messages: list[Message]) -> None:
        """Learn from ``data``; ``messages[i]`` is ``data.examples[i]`` after earlier stages.

        On return every message must have been processed by this stage, so the next stage
        trains on it (the default learns nothing and just processes).
        """
        for message in messages:
            self.process(message)

    @abstractmethod
    def process(self, message: Message) -> None:
        """Add this stage's output to ``message``."""

    def persist(self, directory: Path) -> None:  # noqa: B027
        """Save learned state into ``directory`` (created by the caller)."""

    @classmethod
    def load(cls, directory: Path, config: dict[str, Any]) -> Self:
        """Rebuild a trained component from ``directory`` and its resolved config."""
        return cls(config)


class UnknownComponentError(LookupError):
    pass


def ensure_norm(message: Message) -> str:
    """``message.norm``, set to the text itself when no normaliser ran (a pipeline without
    ChineseTextNormalizer): every tokenizer and featurizer reads ``norm``."""
    if not message.norm and message.text and not message.offsets:
        message.norm = message.text
    return message.norm
