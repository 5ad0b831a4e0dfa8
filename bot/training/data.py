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


RESPONSE_KEY_SEPARATOR = "/"


def base_intent(intent: str) -> str:
    """``chitchat/whoyouare`` → ``chitchat`` (a retrieval intent); other names unchanged."""
    return intent.split(RESPONSE_KEY_SEPARATOR, 1)[0]


@dataclass(frozen=True)
class Example:
    """One training utterance: plain text (markup removed), its intent and entities.

    ``intent`` is the name as written; for a retrieval intent that is the full
    ``chitchat/whoyouare`` key: intent classifiers learn ``base_intent`` (``chitchat``),
    the ResponseSelector the full key.
    """

    text: str
    intent: str
    entities: tuple[EntityAnnotation, ...] = ()
    source: Source | None = None

    @property
    def base_intent(self) -> str:
        return base_intent(self.intent)

    @property
    def response_key(self) -> str | None:
        """The full ``intent/response`` key of a retrieval intent example, else None."""
        return self.intent if RESPONSE_KEY_SEPARATOR in self.intent else None


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
        """The intents the classifiers learn: retrieval intents by their base name."""
        return sorted({e.base_intent for e in self.examples})

    @property
    def retrieval_intents(self) -> list[str]:
        """Base names of the intents written as ``name/response_key``."""
        return sorted({e.base_intent for e in self.examples if e.response_key})

    @property
    def response_keys(self) -> list[str]:
        return sorted({e.intent for e in self.examples if e.response_key})

    @property
    def entity_names(self) -> list[str]:
        return sorted({a.entity for e in self.examples for a in e.entities})

    def intent_counts(self) -> Counter[str]:
        return Counter(e.base_intent for e in self.examples)

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
