"""``bot data validate``: schema and consistency checks with file, line and a fix.

Every training data file is checked once at the top (YAML syntax, known keys); files that
pass are read for NLU data and for stories and rules. NLU examples of ``chitchat/ask_name``
belong to the domain's (retrieval) intent ``chitchat``.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import Literal

from bot.domain import RETRIEVAL_DELIMITER, Domain, load_project_domain
from bot.errors import BotError
from bot.nlu.normalizer import normalise
from bot.project import Project
from bot.training.data import Example, Problem, Source, TrainingData
from bot.training.nlu_yaml import check_data_file, read_nlu_file
from bot.training.story_validation import configured_max_history, validate_stories


def _shown(project: Project, path: Path) -> str:
    return str(path.relative_to(project.root) if path.is_relative_to(project.root) else path)


def _load(project: Project) -> tuple[TrainingData, list[Problem], list[Path]]:
    """NLU data, problems, and the data files whose top level is readable."""
    data = TrainingData()
    problems: list[Problem] = []
    readable: list[Path] = []
    files = project.data_files()
    if not files:
        where = ", ".join(_shown(project, p) for p in project.training_paths()) or "data/"
        problems.append(
            Problem(
                "error",
                f"no training data files in {where}",
                "put YAML files with 'nlu:', 'stories:' or 'rules:' under "
                "data/, or pass --data PATH",
                Source(where, 1),
            )
        )
    for path in project.unread_data_files():
        problems.append(
            Problem(
                "warning",
                "Markdown/JSON training data (Rasa 1.x/2.x) is not read",
                "convert it to YAML ('rasa data convert' of Rasa 2)",
                Source(_shown(project, path), 1),
            )
        )
    for path in files:
        shown = _shown(project, path)
        found = check_data_file(path, shown)
        problems.extend(found)
        if any(p.level == "error" for p in found):
            continue
        readable.append(path)
        try:
            data.merge(read_nlu_file(path, shown))
        except BotError as exc:  # pragma: no cover - check_data_file found it first
            problems.append(Problem("error", str(exc), "correct the file", Source(shown, 1)))
    problems.extend(data.problems)
    return data, problems, readable


def base_intent(intent: str) -> str:
    """``chitchat`` for a retrieval intent's ``chitchat/ask_name``."""
    return intent.split(RETRIEVAL_DELIMITER, 1)[0]


def _domain_problem(project: Project, exc: BotError) -> Problem:
    """A domain error as a problem at the file and line its message starts with."""
    message = str(exc)
    match = re.match(r"(?P<file>[^\s:]+):(?P<line>\d+): (?P<rest>.*)", message)
    if match:
        file, line, message = match["file"], int(match["line"]), match["rest"]
    else:
        file, line = _shown(project, project.domain_file), 1
    what, _, fix = message.partition(". Fix: ")
    return Problem("error", what, fix or "fix the domain", Source(file, line))


# Extractors that learn entity spans from the annotations (besides RegexEntityExtractor's
# annotation patterns).
_LEARNED = ("DIETClassifier", "CRFEntityExtractor", "MitieEntityExtractor")


def entity_granularity(project: Project) -> str | None:
    """What the pipeline's learned entity extractors tag: ``"characters"`` when one of them
    tags characters (the CRF's and DIET substitute's default ``granularity``, and
    RegexEntityExtractor's annotation patterns), ``"tokens"``
    when they all tag tokens, None when the pipeline learns no entities (or its
    config.yml cannot be read: its own checks report that)."""
    from bot.config import load_config
    from bot.nlu.registry import component_class

    try:
        config = load_config(project.config_file, project.root)
    except BotError:
        return None
    found: set[str] = set()
    for spec in config.pipeline:
        try:
            cls = component_class(spec.name, project.root)
        except Exception:  # a custom component that does not import
            continue
        name = getattr(cls, "name", spec.name)
        options = {**getattr(cls, "defaults", {}), **spec.options}
        if name == "RegexEntityExtractor" and options.get("use_annotations"):
            # bankbot's annotation patterns: matched on characters, never inside a number
            # or a Latin word (use_word_boundaries), as the CRF's units
            found.add("characters")
            continue
        if name not in _LEARNED and spec.name not in _LEARNED:
            continue
        if not options.get("entity_recognition", True):
            continue
        found.add("characters" if options.get("granularity") == "characters" else "tokens")
    if "characters" in found:
        return "characters"
    return "tokens" if found else None


def check_alignment(data: TrainingData, project: Project) -> list[Problem]:
    """Annotated spans must start and end where the pipeline's entity extractor can tag.

    A CRF on characters (the default of CRFEntityExtractor and the DIETClassifier substitute)
    tags each Chinese character and each run of digits or Latin letters: ``[今天]天气`` is
    fine, ``尾号12[34]`` (inside a number) is an error. With only token-based extractors
    (``granularity: tokens``, MITIE) a span inside a jieba word is a warning, as Rasa warns
    about a misaligned annotation at training. A pipeline that learns no entities is not
    checked."""
    from bot.nlu.crf_extractor import units
    from bot.nlu.interfaces import Message
    from bot.nlu.tokenizer import JiebaTokenizer, dictionary_words

    granularity = entity_granularity(project)
    if granularity is None or not any(e.entities for e in data.examples):
        return []
    tokenizer = JiebaTokenizer(
        {}, dictionary_words(data, project.root / "nlu_data" / "userdict.txt")
    )
    level: Literal["error", "warning"] = "error" if granularity == "characters" else "warning"
    hint = (
        "annotate whole numbers and Latin words (the entity extractor tags each Chinese "
        "character and each run of digits or letters)"
        if granularity == "characters"
        else "annotate whole words, or add the entity text to nlu_data/userdict.txt"
    )
    problems = []
    for example in data.examples:
        if not example.entities:
            continue
        norm, offsets, _ = normalise(example.text)
        message = Message(example.text, norm=norm, offsets=offsets)
        message.tokens = tokenizer.tokenize(norm)
        spans = units(message, granularity)
        starts = {offsets[u.start] for u in spans}
        ends = {offsets[u.end - 1] + 1 for u in spans}
        for ann in example.entities:
            if ann.start not in starts or ann.end not in ends:
                words = [
                    example.text[offsets[t.start] : offsets[t.end - 1] + 1]
                    for t in message.tokens
                    if offsets[t.start] < ann.end and offsets[t.end - 1] + 1 > ann.start
                ]
                problems.append(
                    Problem(
                        level,
                        f"annotation [{ann.text}]({ann.entity}) does not line up with the "
                        f"words {' / '.join(words)}",
                        hint,
                        example.source,
                    )
                )
    return problems


def check_duplicates(examples: list[Example]) -> list[Problem]:
    seen: dict[str, Example] = {}
    problems = []
    for example in examples:
        key = normalise(example.text)[0]
        first = seen.get(key)
        if first is None:
            seen[key] = example
            continue
        if first.intent != example.intent:
            problems.append(
                Problem(
                    "error",
                    f"'{example.text}' is an example of '{example.intent}' and also of "
                    f"'{first.intent}' ({first.source})",
                    "keep it under the one intent it means and delete the other",
                    example.source,
                )
            )
        else:
            problems.append(
                Problem(
                    "warning",
                    f"'{example.text}' duplicates {first.source} (same intent)",
                    "delete one of the two lines",
                    example.source,
                )
            )
    return problems


def validate_project(project: Project, min_examples: int = 10) -> list[Problem]:
    data, problems, readable = _load(project)
    try:
        domain: Domain = load_project_domain(project)
    except BotError as exc:
        return [*problems, _domain_problem(project, exc)]

    first_source: dict[str, Source | None] = {}
    counts: dict[str, int] = defaultdict(int)
    domain_intents: dict[str, int] = defaultdict(int)
    for example in data.examples:
        counts[example.intent] += 1
        domain_intents[base_intent(example.intent)] += 1
        first_source.setdefault(example.intent, example.source)
        if not normalise(example.text)[0]:
            problems.append(
                Problem(
                    "error",
                    "example is empty after normalisation",
                    "write some text or delete the line",
                    example.source,
                )
            )
        for ann in example.entities:
            if ann.entity not in domain.entities:
                problems.append(
                    Problem(
                        "error",
                        f"entity '{ann.entity}' is not declared in domain.yml",
                        f"add '- {ann.entity}' under 'entities:' in domain.yml or fix the name",
                        example.source,
                    )
                )
    undeclared: set[str] = set()
    for intent, source in first_source.items():
        base = base_intent(intent)
        if base not in domain.intents and base not in undeclared:
            undeclared.add(base)
            problems.append(
                Problem(
                    "error",
                    f"intent '{base}' is not declared in domain.yml",
                    f"add '- {base}' under 'intents:' in domain.yml or fix the name",
                    source,
                )
            )
        n = counts[intent]
        if n < 2:
            problems.append(
                Problem(
                    "error",
                    f"intent '{intent}' has only {n} example",
                    "write at least 2 (better 10 or more) examples",
                    source,
                )
            )
        elif n < min_examples:
            problems.append(
                Problem(
                    "warning",
                    f"intent '{intent}' has only {n} examples",
                    f"write at least {min_examples} varied examples",
                    source,
                )
            )
    for intent in domain.intents:
        if intent not in domain_intents:
            problems.append(
                Problem(
                    "warning",
                    f"intent '{intent}' of domain.yml has no NLU examples",
                    "add examples under data/ (or nlu_data/) or remove it from domain.yml "
                    "(fine if only buttons send it)",
                    Source("domain.yml", 1),
                )
            )
    for regex in data.regexes:
        for pattern in regex.patterns:
            try:
                re.compile(pattern)
            except re.error as exc:
                problems.append(
                    Problem(
                        "error",
                        f"regex '{regex.name}' pattern {pattern!r} is invalid: {exc}",
                        "correct the Python regular expression",
                        regex.source,
                    )
                )
        if regex.name not in domain.entities:
            problems.append(
                Problem(
                    "warning",
                    f"regex '{regex.name}' is not an entity of domain.yml, "
                    "so it extracts nothing the domain knows",
                    "name the regex after the entity it extracts",
                    regex.source,
                )
            )
    for table in data.lookups:
        if table.name not in domain.entities:
            problems.append(
                Problem(
                    "warning",
                    f"lookup table '{table.name}' is not an entity of domain.yml",
                    "name the lookup table after the entity it lists",
                    table.source,
                )
            )
    for intent, source in first_source.items():
        if RETRIEVAL_DELIMITER in intent and f"utter_{intent}" not in domain.responses:
            problems.append(
                Problem(
                    "warning",
                    f"the examples of '{intent}' have no response "
                    f"'utter_{intent}', so utter_{base_intent(intent)} cannot answer them",
                    f"add 'utter_{intent}:' with '- text: ...' under 'responses:' (in the "
                    "domain or a data file)",
                    source,
                )
            )
    surface_value: dict[str, tuple[str, Source | None]] = {}
    for syn in data.synonyms:
        for surface in syn.examples:
            previous = surface_value.get(surface.lower())
            if previous and previous[0] != syn.value:
                problems.append(
                    Problem(
                        "error",
                        f"synonym '{surface}' maps to '{syn.value}' and to "
                        f"'{previous[0]}' ({previous[1]})",
                        "keep the surface form under one synonym only",
                        syn.source,
                    )
                )
            surface_value[surface.lower()] = (syn.value, syn.source)
    problems.extend(check_duplicates(data.examples))
    problems.extend(check_alignment(data, project))
    if readable:
        problems.extend(
            validate_stories(
                project.root,
                domain,
                readable,
                set(domain_intents),
                configured_max_history(project.config_file),
            )
        )
    return problems
