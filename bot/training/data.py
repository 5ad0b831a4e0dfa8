"""Plain data classes for NLU training data. No I/O here."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class Source:
    """Where something was written: a file and a 1-based line."""

    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class EntityAnnotation:
    entity: str
    value: str
    start: int
    end: int
    text: str
    role: str | None = None
    group: str | None = None


@dataclass(frozen=True)
class Example:
    """One training utterance: plain text (markup removed), its intent and entities."""

    text: str
    intent: str
    entities: tuple[EntityAnnotation, ...] = ()
    source: Source | None = None


@dataclass(frozen=True)
class Synonym:
    value: str
    examples: tuple[str, ...]
    source: Source | None = None


@dataclass(frozen=True)
class RegexPattern:
    name: str
    patterns: tuple[str, ...]
    source: Source | None = None


@dataclass(frozen=True)
class LookupTable:
    name: str
    elements: tuple[str, ...]
    source: Source | None = None


@dataclass(frozen=True)
class Problem:
    """A validation finding. ``hint`` says how to fix it."""

    level: Literal["error", "warning"]
    message: str
    hint: str
    source: Source | None = None

    def __str__(self) -> str:
        where = f"{self.source}: " if self.source else ""
        return f"{where}{self.level}: {self.message}. Fix: {self.hint}"


@dataclass
class TrainingData:
    examples: list[Example] = field(default_factory=list)
    synonyms: list[Synonym] = field(default_factory=list)
    regexes: list[RegexPattern] = field(default_factory=list)
    lookups: list[LookupTable] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def merge(self, other: TrainingData) -> None:
        self.examples.extend(other.examples)
        self.synonyms.extend(other.synonyms)
        self.regexes.extend(other.regexes)
        self.lookups.extend(other.lookups)
        self.problems.extend(other.problems)

    @property
    def intents(self) -> list[str]:
        return sorted({e.intent for e in self.examples})

    @property
    def entity_names(self) -> list[str]:
        return sorted({a.entity for e in self.examples for a in e.entities})

    def intent_counts(self) -> Counter[str]:
        return Counter(e.intent for e in self.examples)

    def synonym_map(self) -> dict[str, str]:
        """Surface form (lower-cased) → canonical value; the value maps to itself."""
        mapping: dict[str, str] = {}
        for syn in self.synonyms:
            mapping[syn.value.lower()] = syn.value
            for surface in syn.examples:
                mapping[surface.lower()] = syn.value
        for ex in self.examples:
            for ann in ex.entities:
                if ann.value != ann.text:
                    mapping.setdefault(ann.text.lower(), ann.value)
        return mapping

    def subset(self, indices: list[int]) -> TrainingData:
        """The same resources with only the examples at ``indices`` (for cross-validation)."""
        return TrainingData(
            examples=[self.examples[i] for i in indices],
            synonyms=list(self.synonyms),
            regexes=list(self.regexes),
            lookups=list(self.lookups),
        )
