"""The bank-domain synonym and abbreviation dictionary used for query and document expansion.

Groups of words that mean the same thing to a retail-bank customer (信用卡 / 贷记卡 / xyk,
网银 / 网上银行, 密码锁了 / 密码被锁, …). The dictionary shipped with bankbot is
``bot/kb/resources/synonyms.yml``; a knowledge base extends it with ``KB_DIR/synonyms.yml`` in the
same format (groups that share a word are merged). Format::

    version: "1"
    synonyms:
      - [信用卡, 贷记卡, xyk]      # the first word is the group's canonical word
      - [挂失, 报失, 冻结卡片]

Words are normalised like any text (lower case, half-width, Simplified). Every word becomes a
jieba word and a text holding one is expanded with the canonical word (see
:class:`bot.kb.text.TextAnalyzer`).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from bot.errors import BotError
from bot.kb.text import normalise_text

BUILTIN_FILE = Path(__file__).resolve().parent / "resources" / "synonyms.yml"
KB_FILE = "synonyms.yml"


class SynonymError(BotError):
    """A synonym file is malformed."""


def read_groups(path: Path) -> list[list[str]]:
    """The groups of one synonym file (normalised words; empty ones dropped)."""
    try:
        data: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise SynonymError(f"{path}: cannot read the synonym file: {exc}") from exc
    groups = data.get("synonyms") if isinstance(data, dict) else None
    if not isinstance(groups, list):
        raise SynonymError(f"{path}: needs 'synonyms:', a list of word lists")
    out: list[list[str]] = []
    for number, group in enumerate(groups, 1):
        if not isinstance(group, list) or not all(isinstance(w, str | int) for w in group):
            raise SynonymError(f"{path}: synonyms item {number} must be a list of words")
        words = list(dict.fromkeys(normalise_text(str(w)) for w in group if str(w).strip()))
        if len(words) >= 2:
            out.append(words)
    return out


def synonym_files(kb_dir: Path | None) -> list[Path]:
    """The shipped dictionary and, when present, the knowledge base's own."""
    files = [BUILTIN_FILE]
    if kb_dir is not None and (kb_dir / KB_FILE).is_file():
        files.append(kb_dir / KB_FILE)
    return files


def synonym_map(groups: Iterable[list[str]]) -> dict[str, str]:
    """word → canonical word; groups sharing a word are merged (the canonical word is the
    first word of the earliest group)."""
    parent: dict[str, str] = {}

    def find(word: str) -> str:
        root = word
        while parent[root] != root:
            root = parent[root]
        parent[word] = root
        return root

    order: dict[str, int] = {}
    for group in groups:
        for word in group:
            if word not in parent:
                parent[word] = word
                order[word] = len(order)
        first = find(group[0])
        for word in group[1:]:
            other = find(word)
            if other != first:
                keep, drop = sorted((first, other), key=order.__getitem__)
                parent[drop] = keep
                first = keep
    return {word: find(word) for word in parent}


def load_synonyms(kb_dir: Path | None) -> dict[str, str]:
    groups: list[list[str]] = []
    for path in synonym_files(kb_dir):
        groups.extend(read_groups(path))
    return synonym_map(groups)
