"""Reads Rasa 3.x NLU YAML (``nlu:`` key) keeping the file and line of every item.

Problems that concern one item (bad markup, an unknown key) are collected in
``TrainingData.problems`` so ``bot data validate`` can report them all at once; a file
that is not YAML at all raises :class:`TrainingDataError`.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.errors import TrainingDataError
from bot.training.data import (
    Example,
    LookupTable,
    Problem,
    RegexPattern,
    Source,
    Synonym,
    TrainingData,
)
from bot.training.markup import MarkupError, parse_markup

_KINDS = ("intent", "synonym", "regex", "lookup")


def _mapping(node: MappingNode) -> dict[str, Node]:
    return {k.value: v for k, v in node.value if isinstance(k, ScalarNode)}


def _example_lines(node: Node, file: str) -> list[tuple[str, Source]]:
    """The ``- text`` lines of an ``examples:`` block with their source lines."""
    out: list[tuple[str, Source]] = []
    if isinstance(node, ScalarNode):
        # A block scalar's content starts on the line after the ``|`` indicator.
        first = node.start_mark.line + (2 if node.style in ("|", ">") else 1)
        for offset, raw in enumerate(node.value.split("\n")):
            line = raw.strip()
            if not line:
                continue
            if line.startswith("- "):
                line = line[2:].strip()
            elif line == "-":
                line = ""
            out.append((line, Source(file, first + offset)))
    elif isinstance(node, SequenceNode):
        for item in node.value:
            if isinstance(item, ScalarNode):
                out.append((item.value.strip(), Source(file, item.start_mark.line + 1)))
    return out


def read_nlu_file(path: Path, display_name: str | None = None) -> TrainingData:
    file = display_name or str(path)
    data = TrainingData()
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise TrainingDataError(f"{file}: not UTF-8 text ({exc.reason})") from exc
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        raise TrainingDataError(f"{file}: invalid YAML: {exc}") from exc
    if root is None:
        return data
    if not isinstance(root, MappingNode):
        raise TrainingDataError(f"{file}: expected a mapping with an 'nlu:' list at the top")
    top = _mapping(root)
    nlu = top.get("nlu")
    if nlu is None:
        return data  # a stories/rules/domain file: nothing for NLU
    if not isinstance(nlu, SequenceNode):
        raise TrainingDataError(f"{file}: 'nlu:' must be a list of '- intent: name' items")
    for item in nlu.value:
        src = Source(file, item.start_mark.line + 1)
        if not isinstance(item, MappingNode):
            data.problems.append(
                Problem("error", "an nlu item is not a mapping", "write '- intent: name'", src)
            )
            continue
        fields = _mapping(item)
        kinds = [k for k in _KINDS if k in fields]
        if len(kinds) != 1:
            data.problems.append(
                Problem(
                    "error",
                    f"nlu item has keys {sorted(fields)}",
                    "each item needs exactly one of intent, synonym, regex or lookup",
                    src,
                )
            )
            continue
        kind = kinds[0]
        name_node = fields[kind]
        name = name_node.value.strip() if isinstance(name_node, ScalarNode) else ""
        if not name:
            data.problems.append(
                Problem("error", f"'{kind}' has no name", f"write '- {kind}: a_name'", src)
            )
            continue
        examples_node = fields.get("examples")
        lines = _example_lines(examples_node, file) if examples_node is not None else []
        if kind == "intent":
            if not lines:
                data.problems.append(
                    Problem(
                        "error",
                        f"intent '{name}' has no examples",
                        "add 'examples: |' with '- text' lines, or remove the intent",
                        src,
                    )
                )
            for line, line_src in lines:
                if not line:
                    data.problems.append(
                        Problem("error", "empty example", "remove the bare '-' line", line_src)
                    )
                    continue
                try:
                    plain, entities = parse_markup(line)
                except MarkupError as exc:
                    data.problems.append(
                        Problem(
                            "error",
                            str(exc),
                            "annotate as [text](entity) or "
                            '[text]{"entity": "name", "value": "canonical"}',
                            line_src,
                        )
                    )
                    continue
                data.examples.append(Example(plain, name, entities, line_src))
        else:
            values = tuple(line for line, _ in lines if line)
            if not values:
                data.problems.append(
                    Problem(
                        "error",
                        f"{kind} '{name}' has no examples",
                        "add 'examples: |' with '- text' lines",
                        src,
                    )
                )
                continue
            if kind == "synonym":
                data.synonyms.append(Synonym(name, values, src))
            elif kind == "regex":
                data.regexes.append(RegexPattern(name, values, src))
            else:
                data.lookups.append(LookupTable(name, values, src))
    return data


def load_nlu_files(paths: list[Path], root: Path | None = None) -> TrainingData:
    """All NLU items of ``paths``; file names are shown relative to ``root``."""
    data = TrainingData()
    for path in paths:
        shown = str(path.relative_to(root)) if root and path.is_relative_to(root) else str(path)
        data.merge(read_nlu_file(path, shown))
    return data
