"""Labelled sentiment data (``sentiment/train.yml``) and project lexicon files
(``sentiment/lexicon.yml``), read with line numbers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from bot.errors import TrainingDataError
from bot.nlu.sentiment.lexicon import CATEGORIES

LABELS = ("negative", "neutral", "positive")


@dataclass(frozen=True)
class SentimentExample:
    text: str
    label: str
    line: int = 0


def read_sentiment_file(path: Path) -> list[SentimentExample]:
    """Examples of a ``sentiment:`` YAML file (``- label: negative`` + ``examples: |``)."""
    try:
        top = yaml.compose(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise TrainingDataError(f"{path}: YAML syntax error: {exc}") from exc
    items = top.value if isinstance(top, yaml.MappingNode) else None
    section = next((v for k, v in items or [] if k.value == "sentiment"), None)
    if not isinstance(section, yaml.SequenceNode):
        raise TrainingDataError(f"{path}: expected a mapping with a 'sentiment:' list at the top")
    examples: list[SentimentExample] = []
    for item in section.value:
        fields = {k.value: v for k, v in item.value} if isinstance(item, yaml.MappingNode) else {}
        where = f"{path}:{item.start_mark.line + 1}"
        label_node, block = fields.get("label"), fields.get("examples")
        label = getattr(label_node, "value", None)
        if label not in LABELS:
            raise TrainingDataError(f"{where}: 'label' must be one of {', '.join(LABELS)}")
        if not isinstance(block, yaml.ScalarNode):
            raise TrainingDataError(f"{where}: 'examples' must be a '|' block of '- text' lines")
        first_line = block.start_mark.line + (1 if block.style == "|" else 0)
        for offset, raw in enumerate(str(block.value).splitlines()):
            line = raw.strip()
            if not line:
                continue
            if not line.startswith("- ") or not line[2:].strip():
                raise TrainingDataError(
                    f"{path}:{first_line + offset + 1}: expected '- text', got {line!r}"
                )
            examples.append(SentimentExample(line[2:].strip(), str(label), first_line + offset + 1))
    return examples


def read_lexicon_file(path: Path) -> dict[str, list[str]]:
    """The categories of a lexicon YAML file (each a list of words)."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise TrainingDataError(f"{path}: YAML syntax error: {exc}") from exc
    if not isinstance(raw, dict) or set(raw) - set(CATEGORIES):
        raise TrainingDataError(
            f"{path}: expected a mapping of {', '.join(CATEGORIES)} to lists of words"
        )
    lexicon: dict[str, list[str]] = {}
    for category, words in raw.items():
        if words is None:
            continue
        if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
            raise TrainingDataError(f"{path}: '{category}' must be a list of words")
        lexicon[category] = words
    return lexicon
