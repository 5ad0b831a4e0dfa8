"""Reads Rasa 3.x NLU YAML (``nlu:`` key) keeping the file and line of every item.

Problems that concern one item (bad markup, an unknown key) are collected in
``TrainingData.problems`` so ``bot data validate`` can report them all at once; a file
that is not YAML at all raises :class:`TrainingDataError`.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.errors import TrainingDataError
from bot.project import yaml_error, yaml_error_line
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
# What a training data file may hold at the top (Rasa 3.x); each reader takes its own keys.
DATA_KEYS = ("version", "nlu", "stories", "rules", "responses")
_DOMAIN_KEYS = frozenset(
    {"intents", "entities", "slots", "actions", "forms", "session_config", "e2e_actions"}
)


def check_data_file(path: Path, display_name: str | None = None) -> list[Problem]:
    """The top level of one training data file: readable YAML, a mapping, only the keys of
    :data:`DATA_KEYS`, and at least one of them besides ``version``."""
    file = display_name or str(path)
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        return [
            Problem(
                "error", f"not UTF-8 text ({exc.reason})", "save the file as UTF-8", Source(file, 1)
            )
        ]
    except yaml.YAMLError as exc:
        line, message = yaml_error_line(exc)
        return [
            Problem(
                "error",
                f"invalid YAML: {message}",
                "correct the YAML syntax on that line (indentation, a missing ':', "
                "an unclosed bracket or quote)",
                Source(file, line),
            )
        ]
    known = ", ".join(DATA_KEYS)
    if root is None or (isinstance(root, ScalarNode) and not root.value.strip()):
        return [
            Problem(
                "warning",
                "the file is empty",
                "add 'nlu:', 'stories:' or 'rules:', or delete the file",
                Source(file, 1),
            )
        ]
    if not isinstance(root, MappingNode):
        return [
            Problem(
                "error",
                "the file is not a mapping of top-level keys",
                f"start it with one of {known}",
                Source(file, root.start_mark.line + 1),
            )
        ]
    problems: list[Problem] = []
    keys = [(k.value, k.start_mark.line + 1) for k, _ in root.value if isinstance(k, ScalarNode)]
    for key, line in keys:
        if key in DATA_KEYS:
            continue
        if key in _DOMAIN_KEYS:
            hint = f"move '{key}:' to the domain (domain.yml or a file of domain/)"
        else:
            close = difflib.get_close_matches(key, DATA_KEYS, n=1)
            hint = f"did you mean '{close[0]}'?" if close else f"a data file holds {known}"
        problems.append(
            Problem("error", f"unknown top-level key '{key}'", hint, Source(file, line))
        )
    if not problems and not {k for k, _ in keys} - {"version"}:
        problems.append(
            Problem(
                "error",
                "the file has none of nlu, stories, rules, responses",
                "add the data under one of those keys, or delete the file",
                Source(file, 1),
            )
        )
    return problems


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
            elif isinstance(item, MappingNode):
                # Rasa 3.x: ``- text: ...`` with optional ``metadata:`` (not used here)
                text = _mapping(item).get("text")
                value = text.value.strip() if isinstance(text, ScalarNode) else ""
                out.append((value, Source(file, item.start_mark.line + 1)))
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
        raise TrainingDataError(yaml_error(file, exc)) from exc
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
