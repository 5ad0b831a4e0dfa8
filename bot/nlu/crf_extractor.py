"""Rasa's CRFEntityExtractor: a linear-chain CRF (CRFsuite) learns entities from the
annotated examples (``[上海](address)``, ``[北京]{"entity": "city", "role": "from"}``).

Units. ``granularity: characters`` (the default) splits every token holding Chinese into
its characters and keeps other tokens (``1234``, ``L20261101001``, English words) whole:
an entity may start or end inside a jieba word (``尾号[1234]`` is one jieba word
``尾号1234`` in some contexts, ``[上周]申请`` …), which whole tokens cannot express.
Each unit also sees the word it belongs to and its position there (B/I/E/S), so jieba's
segmentation still helps. ``granularity: tokens`` tags the tokenizer's tokens as Rasa does.

Features per unit (a window of previous / current / next as Rasa's ``features`` option):
``low``, ``title``, ``upper``, ``digit``, ``prefix5/2``, ``suffix5/3/2``, ``bias``,
``pattern`` (the regexes and lookup tables of the NLU data matching the unit), plus for
characters ``word``/``word_pos``/``shape``. Tags are BILOU (``BILOU_flag``).
Roles and groups get a CRF each (as Rasa), fed with the entity tags; the parse result
then has ``role``/``group`` and their confidences. ``confidence_entity`` is the mean
marginal probability of the entity's tags.
"""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Self

from bot.nlu.entity_merge import add_learned
from bot.nlu.interfaces import Component, Message, Token, ensure_norm
from bot.nlu.lexical_featurizer import FUNCTIONS
from bot.nlu.regex_featurizer import training_patterns
from bot.training.data import EntityAnnotation, TrainingData

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f]")
_RUN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff\U00020000-\U0002fa1f]|[^\W_]+|[^\w\s]|_", re.U)
_COMMAS = {",", "，", "、"}

DEFAULT_FEATURES = [
    ["low", "title", "upper"],
    [
        "bias",
        "low",
        "prefix5",
        "prefix2",
        "suffix5",
        "suffix3",
        "suffix2",
        "upper",
        "title",
        "digit",
        "pattern",
    ],
    ["low", "title", "upper"],
]
_CHAR_FEATURES = ("word", "word_pos", "shape")

# Rasa feature names this CRF does not compute: they need a trained spaCy tagger or dense
# features from another component.
_SKIPPED = frozenset({"pos", "pos2", "text_dense_features"})
_KNOWN = frozenset(FUNCTIONS) | {"bias", "pattern", "entity"} | _SKIPPED


def _crfsuite() -> Any:
    try:
        import pycrfsuite
    except ImportError as exc:
        raise ImportError(
            "CRFEntityExtractor needs CRFsuite: pip install 'sklearn-crfsuite>=0.5,<0.6'"
        ) from exc
    return pycrfsuite


def _shape(text: str) -> str:
    if _CJK.match(text):
        return "C"
    if text.isdigit():
        return f"9{min(len(text), 6)}"
    if text.isalpha():
        return "a" if text.islower() else "A"
    return "p" if not text.isalnum() else "x"


@dataclass(frozen=True)
class Unit:
    """What the CRF tags: a token or a character of one, with its word."""

    text: str
    start: int
    end: int
    word: str
    word_pos: str


def units(message: Message, granularity: str) -> list[Unit]:
    text = ensure_norm(message)
    tokens = message.tokens or [
        Token(m.group(), m.start(), m.end()) for m in re.finditer(r"\S+", text)
    ]
    out: list[Unit] = []
    for token in tokens:
        low = token.text.lower()
        if granularity == "tokens" or not _CJK.search(token.text):
            pieces = (
                [(token.text, token.start, token.end)]
                if granularity == "tokens"
                else [
                    (m.group(), token.start + m.start(), token.start + m.end())
                    for m in _RUN.finditer(token.text)
                ]
            )
        else:
            pieces = [
                (m.group(), token.start + m.start(), token.start + m.end())
                for m in _RUN.finditer(token.text)
            ]
        for i, (piece, start, end) in enumerate(pieces):
            if len(pieces) == 1:
                pos = "S"
            else:
                pos = "B" if i == 0 else "E" if i == len(pieces) - 1 else "I"
            out.append(Unit(piece, start, end, low, pos))
    return out


def bilou(labels: list[str | None], flag: bool) -> list[str]:
    """Per-unit labels (None outside) → BILOU tags (or bare labels without the flag)."""
    tags: list[str] = []
    for i, label in enumerate(labels):
        if label is None:
            tags.append("O")
            continue
        if not flag:
            tags.append(label)
            continue
        first = i == 0 or labels[i - 1] != label
        last = i == len(labels) - 1 or labels[i + 1] != label
        prefix = "U" if first and last else "B" if first else "L" if last else "I"
        tags.append(f"{prefix}-{label}")
    return tags


def spans(
    tags: list[str], flag: bool, breaks: set[int] | None = None
) -> list[tuple[str, int, int]]:
    """``(label, first unit, last unit + 1)`` of the tag sequence. ``breaks`` are units
    (commas) that end an entity, for ``split_entities_by_comma``."""
    out: list[tuple[str, int, int]] = []
    current: tuple[str, int] | None = None
    for i, tag in enumerate([*tags, "O"]):
        prefix, label = (tag[0], tag[2:]) if flag and tag != "O" else ("I", tag)
        if tag == "O" or (breaks and i in breaks):
            label = "O"
        if current is not None and (label != current[0] or prefix in ("B", "U")):
            out.append((current[0], current[1], i))
            current = None
        if label != "O":
            if current is None:
                current = (label, i)
            if prefix in ("L", "U"):
                out.append((current[0], current[1], i + 1))
                current = None
    return out


class CRFEntityExtractor(Component):
    name = "CRFEntityExtractor"
    extracts_entities: ClassVar[bool] = True
    defaults: ClassVar[dict[str, Any]] = {
        "BILOU_flag": True,
        "split_entities_by_comma": True,
        "features": DEFAULT_FEATURES,
        "max_iterations": 50,
        "L1_c": 0.1,
        "L2_c": 0.1,
        "featurizers": [],
        "granularity": "characters",  # bankbot: characters | tokens (Rasa's behaviour)
    }

    def __init__(
        self,
        config: dict[str, Any],
        models: dict[str, bytes] | None = None,
        patterns: list[tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(config)
        if self.config["granularity"] not in ("characters", "tokens"):
            raise ValueError("option 'granularity' must be 'characters' or 'tokens'")
        window = self.config["features"]
        if not isinstance(window, list) or len(window) % 2 == 0:
            raise ValueError("option 'features' must be an odd-length list of lists")
        names = {n for w in window for n in w}
        unknown = names - _KNOWN
        if unknown:
            raise ValueError(f"unknown feature(s) {sorted(unknown)} in option 'features'")
        if names & _SKIPPED:
            self.note(
                f"{self.name}: features {sorted(names & _SKIPPED)} are skipped (they need "
                "a trained spaCy tagger or dense features)"
            )
        if self.config["featurizers"]:
            self.note(
                f"{self.name}: 'featurizers' (dense features from other components) is "
                "not used; the CRF uses its own lexical features"
            )
        self.patterns = patterns or []
        self._regexes = [(n, re.compile(p)) for n, p in self.patterns]
        self.models = models or {}
        self._taggers: dict[str, Any] = {}
        self._load_taggers()

    # -- features ------------------------------------------------------------------
    def _load_taggers(self) -> None:
        if not self.models:
            return
        pycrfsuite = _crfsuite()
        self._taggers = {}
        for key, blob in self.models.items():
            tagger = pycrfsuite.Tagger()
            tagger.open_inmemory(blob)
            self._taggers[key] = tagger

    def _pattern_hits(self, text: str, seq: list[Unit]) -> list[list[str]]:
        hits: list[list[str]] = [[] for _ in seq]
        for name, regex in self._regexes:
            for match in regex.finditer(text):
                if "value" in regex.groupindex and match.group("value") is not None:
                    s, e = match.span("value")
                else:
                    s, e = match.span()
                for i, unit in enumerate(seq):
                    if unit.start < e and s < unit.end:
                        hits[i].append(name)
        return hits

    def features(self, message: Message, seq: list[Unit]) -> list[dict[str, Any]]:
        window: list[list[str]] = self.config["features"]
        half = len(window) // 2
        hits = self._pattern_hits(message.norm, seq)
        chars = self.config["granularity"] == "characters"
        rows: list[dict[str, Any]] = []
        for i in range(len(seq)):
            row: dict[str, Any] = {}
            for w, names in enumerate(window):
                j = i + w - half
                if not 0 <= j < len(seq):
                    if w - half:
                        row[f"{w - half}:edge"] = 1.0
                    continue
                text = seq[j].text
                for name in names:
                    key = f"{w - half}:{name}"
                    if name == "bias":
                        row[key] = 1.0
                    elif name == "pattern":
                        for p in hits[j]:
                            row[f"{key}:{p}"] = 1.0
                    elif name in FUNCTIONS:
                        value = FUNCTIONS[name](text)
                        if isinstance(value, bool):
                            if value:
                                row[key] = 1.0
                        else:
                            row[key] = value
            if chars:
                unit = seq[i]
                row["word"] = unit.word
                row["word_pos"] = unit.word_pos
                row["shape"] = _shape(unit.text)
                prev_text = seq[i - 1].text.lower() if i else "<s>"
                next_text = seq[i + 1].text.lower() if i + 1 < len(seq) else "</s>"
                row["bi-1"] = prev_text + unit.text.lower()
                row["bi+1"] = unit.text.lower() + next_text
                row["shape-1"] = _shape(prev_text) if i else "<s>"
                row["shape+1"] = _shape(next_text) if i + 1 < len(seq) else "</s>"
            rows.append(row)
        return rows

    # -- training ------------------------------------------------------------------
    @staticmethod
    def _unit_labels(
        message: Message, seq: list[Unit], annotations: tuple[EntityAnnotation, ...], attr: str
    ) -> list[str | None]:
        labels: list[str | None] = [None] * len(seq)
        for ann in annotations:
            label = getattr(ann, attr)
            if label is None:
                continue
            for i, unit in enumerate(seq):
                start, end = message.original_span(unit.start, unit.end)
                if start < ann.end and ann.start < end:
                    labels[i] = str(label)
        return labels

    def train(self, data: TrainingData, messages: list[Message]) -> None:
        self.patterns = training_patterns(
            data, use_regexes=True, use_lookup_tables=True, word_boundaries=False
        )
        self._regexes = [(n, re.compile(p)) for n, p in self.patterns]
        flag = bool(self.config["BILOU_flag"])
        sequences = []
        for example, message in zip(data.examples, messages, strict=True):
            seq = units(message, self.config["granularity"])
            if not seq:
                continue
            rows = self.features(message, seq)
            tags = {
                attr: bilou(self._unit_labels(message, seq, example.entities, attr), flag)
                for attr in ("entity", "role", "group")
            }
            sequences.append((rows, tags))
        self.models = {}
        if any(t != "O" for _, tags in sequences for t in tags["entity"]):
            self.models["entity"] = self._fit([(r, t["entity"]) for r, t in sequences])
            for attr in ("role", "group"):
                if any(t != "O" for _, tags in sequences for t in tags[attr]):
                    rows_with_entity = [
                        (self._with_entity(r, t["entity"]), t[attr]) for r, t in sequences
                    ]
                    self.models[attr] = self._fit(rows_with_entity)
        self._load_taggers()
        for message in messages:
            self.process(message)

    @staticmethod
    def _with_entity(rows: list[dict[str, Any]], tags: list[str]) -> list[dict[str, Any]]:
        return [{**row, "entity": tag} for row, tag in zip(rows, tags, strict=True)]

    def _fit(self, sequences: list[tuple[list[dict[str, Any]], list[str]]]) -> bytes:
        pycrfsuite = _crfsuite()
        trainer = pycrfsuite.Trainer(verbose=False)
        for rows, tags in sequences:
            trainer.append(rows, tags)
        trainer.set_params(
            {
                "c1": float(self.config["L1_c"]),
                "c2": float(self.config["L2_c"]),
                "max_iterations": int(self.config["max_iterations"]),
                "feature.possible_transitions": True,
            }
        )
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "crf.model"
            trainer.train(str(path))
            return path.read_bytes()

    # -- inference -----------------------------------------------------------------
    def _split(self, seq: list[Unit], label: str, first: int, last: int) -> list[tuple[int, int]]:
        """Rasa's ``split_entities_by_comma`` (true, false, or per entity)."""
        split = self.config["split_entities_by_comma"]
        if isinstance(split, dict):
            split = split.get(label, True)
        if not split:
            return [(first, last)]
        pieces: list[tuple[int, int]] = []
        begin = first
        for i in range(first, last + 1):
            if i == last or seq[i].text in _COMMAS:
                if i > begin:
                    pieces.append((begin, i))
                begin = i + 1
        return pieces

    def predict(self, message: Message) -> list[dict[str, Any]]:
        """The entities of ``message`` (character offsets into ``message.text``)."""
        tagger = self._taggers.get("entity")
        if tagger is None:
            return []
        seq = units(message, self.config["granularity"])
        if not seq:
            return []
        rows = self.features(message, seq)
        tags = tagger.tag(rows)
        marginals = [tagger.marginal(tag, i) for i, tag in enumerate(tags)]
        flag = bool(self.config["BILOU_flag"])
        found = []
        pieces = [
            (label, a, b)
            for label, first, last in spans(tags, flag, set())
            for a, b in self._split(seq, label, first, last)
        ]
        for label, first, last in pieces:
            start, end = message.original_span(seq[first].start, seq[last - 1].end)
            entity: dict[str, Any] = {
                "entity": label,
                "start": start,
                "end": end,
                "value": message.text[start:end],
                "confidence_entity": round(sum(marginals[first:last]) / (last - first), 6),
                "extractor": self.name,
            }
            found.append((entity, first, last))
        for attr in ("role", "group"):
            sub = self._taggers.get(attr)
            if sub is None or not found:
                continue
            sub_tags = sub.tag(self._with_entity(rows, tags))
            for entity, first, last in found:
                labels = [t if not flag or t == "O" else t[2:] for t in sub_tags[first:last]]
                named = [x for x in labels if x != "O"]
                if named:
                    best = max(set(named), key=named.count)
                    probs = [sub.marginal(t, i) for i, t in enumerate(sub_tags[first:last], first)]
                    entity[attr] = best
                    entity[f"confidence_{attr}"] = round(sum(probs) / len(probs), 6)
        return [e for e, _, _ in found]

    def process(self, message: Message) -> None:
        for entity in self.predict(message):
            add_learned(message, entity)

    def persist(self, directory: Path) -> None:
        import json

        for key, blob in self.models.items():
            (directory / f"{key}.crfsuite").write_bytes(blob)
        (directory / "patterns.json").write_text(
            json.dumps(self.patterns, ensure_ascii=False), encoding="utf-8"
        )

    @classmethod
    def load(cls, directory: Path, config: dict[str, Any]) -> Self:
        import json

        models = {p.stem: p.read_bytes() for p in directory.glob("*.crfsuite")}
        raw = json.loads((directory / "patterns.json").read_text(encoding="utf-8"))
        return cls(config, models, [(p[0], p[1]) for p in raw])
