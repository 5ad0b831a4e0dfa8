"""Rule-based entity extraction with spaCy on a blank ``zh`` pipeline.

Lookup tables, synonyms and annotated surface forms become ``EntityRuler`` phrase
patterns (with the canonical value as the pattern id); the NLU data's ``regex`` items
become a regex matcher component on the same pipeline. The blank ``zh`` pipeline segments
by character, so every regex match lines up with tokens. Overlaps keep the longest span.
A regex may mark the entity part with a named group ``(?P<value>...)``.

An entity's value is the matched text as written (``Berlin`` for ``Berlin``, as Rasa's), with
the normaliser's width and script changes (``１２３４`` gives ``1234``) but not its
lower-casing; a synonym (or an annotation's ``value``) gives its canonical value instead.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, ClassVar, Self

from bot.nlu.entity_merge import add_rule_based
from bot.nlu.interfaces import Component, Message, ensure_norm
from bot.training.data import TrainingData

_FACTORY = "bankbot_regex_entities"


def _spacy() -> Any:
    try:
        import spacy
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise ImportError("RegexEntityExtractor needs spaCy: pip install spacy") from exc
    return spacy


class _RegexMatcher:
    """spaCy pipeline component adding regex entities to ``doc.ents``."""

    def __init__(self, patterns: list[tuple[str, str]]) -> None:
        self.patterns = [(label, re.compile(p)) for label, p in patterns]

    def __call__(self, doc: Any) -> Any:
        from spacy.tokens import Span
        from spacy.util import filter_spans

        spans = list(doc.ents)
        text = doc.text  # built from the tokens on every read: once, not once per regex
        for label, regex in self.patterns:
            for match in regex.finditer(text):
                if "value" in regex.groupindex and match.group("value") is not None:
                    start, end = match.span("value")
                else:
                    start, end = match.span()
                if start == end:
                    continue
                span = doc.char_span(start, end, label=label, alignment_mode="expand")
                if span is not None:
                    spans.append(Span(doc, span.start, span.end, label=label))
        doc.ents = filter_spans(spans)
        return doc


def _register_factory() -> None:
    from spacy.language import Language

    if not Language.has_factory(_FACTORY):

        @Language.factory(_FACTORY, default_config={"patterns": []})
        def _make(nlp: Any, name: str, patterns: list[list[str]]) -> _RegexMatcher:
            return _RegexMatcher([(p[0], p[1]) for p in patterns])


def build_pipeline(
    phrase_patterns: list[dict[str, str]],
    regexes: list[tuple[str, str]],
    case_sensitive: bool = False,
) -> Any:
    spacy = _spacy()
    _register_factory()
    nlp = spacy.blank("zh")
    if phrase_patterns:
        attr = "ORTH" if case_sensitive else "LOWER"
        ruler = nlp.add_pipe("entity_ruler", config={"phrase_matcher_attr": attr})
        ruler.add_patterns(phrase_patterns)
    if regexes:
        nlp.add_pipe(_FACTORY, config={"patterns": [list(r) for r in regexes]})
    return nlp


class _Screen:
    """A cheap test that is true whenever the spaCy pipeline could find an entity in a text,
    so texts without any (most messages) skip it.

    A phrase pattern matches a run of tokens whose lower-case forms equal the pattern's. The
    tokens (characters, and whitespace runs the tokenizer keeps) are the text itself, so the
    pattern's lower-case token text without whitespace then occurs in the text's lower-case
    characters without whitespace. A regex entity needs a match of its regex in the text.
    Neither found: ``doc.ents`` would stay empty."""

    def __init__(
        self, nlp: Any, phrase_patterns: list[dict[str, Any]], regexes: list[tuple[str, str]]
    ) -> None:
        self.usable = all(isinstance(p.get("pattern"), str) for p in phrase_patterns)
        squashed = {
            _squash("".join(t.lower_ for t in nlp.make_doc(p["pattern"])))
            for p in phrase_patterns
            if self.usable
        }
        self.phrases = tuple(sorted(p for p in squashed if p))
        self.regexes = tuple(re.compile(pattern) for _, pattern in regexes)

    def may_match(self, text: str) -> bool:
        if not self.usable:
            return True
        if any(regex.search(text) for regex in self.regexes):
            return True
        if not self.phrases:
            return False
        low = _squash(text)
        return any(phrase in low for phrase in self.phrases)


def _squash(text: str) -> str:
    """Whitespace dropped, then each character lower-cased on its own (as a one-character
    token is; ``str.lower`` of a whole string treats a final sigma differently)."""
    text = "".join(text.split())
    return text.lower() if "\u03a3" not in text else "".join(c.lower() for c in text)


def _inside_word(text: str, start: int, end: int) -> bool:
    """True when a span starts or ends inside an ASCII word: between two ASCII letters or two
    digits (``card`` in ``discard``); ``xyk`` in ``xyk卡`` or ``xyk123`` is not inside one."""

    def joined(a: str, b: str) -> bool:
        if not (a.isascii() and b.isascii()):
            return False
        return (a.isalpha() and b.isalpha()) or (a.isdigit() and b.isdigit())

    before = start > 0 and joined(text[start - 1], text[start])
    after = end < len(text) and joined(text[end - 1], text[end])
    return before or after


class RegexEntityExtractor(Component):
    name = "RegexEntityExtractor"
    extracts_entities: ClassVar[bool] = True
    defaults: ClassVar[dict[str, Any]] = {
        "use_regexes": True,
        "use_lookup_tables": True,
        "use_synonyms": True,
        # Learn phrase patterns from annotated examples, for entities without a regex.
        "use_annotations": True,
        # Rasa's options: matching ignores case unless case_sensitive; a lookup, synonym or
        # annotation match must not start or end inside an ASCII word (card in discard).
        "case_sensitive": False,
        "use_word_boundaries": True,
    }

    def __init__(
        self,
        config: dict[str, Any],
        phrase_patterns: list[dict[str, str]] | None = None,
        regexes: list[tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(config)
        self.phrase_patterns = phrase_patterns or []
        self.regexes = regexes or []
        self._build()

    def _build(self) -> None:
        case_sensitive = bool(self.config["case_sensitive"])
        regexes = (
            self.regexes
            if case_sensitive
            else [
                (label, pattern if pattern.startswith("(?") else f"(?i){pattern}")
                for label, pattern in self.regexes
            ]
        )
        self._nlp = build_pipeline(self.phrase_patterns, regexes, case_sensitive)
        self._pipes = [proc for _, proc in self._nlp.pipeline]
        self._screen = _Screen(self._nlp, self.phrase_patterns, self.regexes)

    def train(self, data: TrainingData, messages: list[Message]) -> None:
        regexes: list[tuple[str, str]] = []
        if self.config["use_regexes"]:
            for item in data.regexes:
                regexes.extend((item.name, p) for p in item.patterns)
        regex_entities = {name for name, _ in regexes}
        synonym_map = data.synonym_map()
        # Which entity each canonical value belongs to, from the annotations.
        value_entity: dict[str, str] = {}
        for example in data.examples:
            for ann in example.entities:
                value_entity.setdefault(ann.value, ann.entity)
        patterns: dict[tuple[str, str], str] = {}

        lower = not self.config["case_sensitive"]

        def add(label: str, surface: str, value: str | None = None) -> None:
            surface = surface.strip().lower() if lower else surface.strip()
            if surface and label not in regex_entities:
                canonical = value or synonym_map.get(surface, surface)
                patterns.setdefault((label, surface), canonical)

        if self.config["use_lookup_tables"]:
            for table in data.lookups:
                for element in table.elements:
                    add(table.name, element)
        if self.config["use_synonyms"]:
            for syn in data.synonyms:
                label = value_entity.get(syn.value)
                if label:
                    for surface in (syn.value, *syn.examples):
                        if not surface.isascii() or surface != syn.value:
                            add(label, surface, syn.value)
        if self.config["use_annotations"]:
            for example in data.examples:
                for ann in example.entities:
                    add(ann.entity, ann.text, ann.value if ann.value != ann.text else None)
        self.phrase_patterns = [
            {"label": label, "pattern": surface, "id": value}
            for (label, surface), value in sorted(patterns.items())
        ]
        for _, pattern in regexes:
            re.compile(pattern)  # fail at training time, not per message
        self.regexes = regexes
        self._build()
        for message in messages:
            self.process(message)

    def extract(self, norm: str) -> list[tuple[str, str, int, int]]:
        """``(entity, value, start, end)`` over the normalised text."""
        if not norm or not self._screen.may_match(norm):
            return []
        doc = self._nlp.make_doc(norm)
        for proc in self._pipes:  # what nlp(norm) runs, without its per-call bookkeeping
            doc = proc(doc)
        bounded = bool(self.config["use_word_boundaries"])
        return [
            (ent.label_, ent.ent_id_ or ent.text, ent.start_char, ent.end_char)
            for ent in doc.ents
            # Word boundaries for the phrase patterns (they have an id); a regex says its
            # own boundaries (the shipped amount regex matches 5000 in 5000rmb).
            if not (bounded and ent.ent_id_ and _inside_word(norm, ent.start_char, ent.end_char))
        ]

    def process(self, message: Message) -> None:
        norm = ensure_norm(message)
        lower = not self.config["case_sensitive"]
        for label, value, start, end in self.extract(norm):
            o_start, o_end = message.original_span(start, end)
            matched = norm[start:end]
            if value == matched or (lower and value == matched.lower()):
                # No synonym: the value is the text as written (Rasa's), normalised but in
                # the customer's case; a synonym's canonical value is kept as given.
                value = message.written(start, end)
            add_rule_based(
                message,
                {
                    "entity": label,
                    "start": o_start,
                    "end": o_end,
                    "value": value,
                    "extractor": self.name,
                },
            )

    def persist(self, directory: Path) -> None:
        payload = {"phrase_patterns": self.phrase_patterns, "regexes": self.regexes}
        (directory / "rules.json").write_text(
            json.dumps(payload, ensure_ascii=False, indent=1), encoding="utf-8"
        )

    @classmethod
    def load(cls, directory: Path, config: dict[str, Any]) -> Self:
        payload = json.loads((directory / "rules.json").read_text(encoding="utf-8"))
        regexes = [(r[0], r[1]) for r in payload["regexes"]]
        return cls(config, payload["phrase_patterns"], regexes)
