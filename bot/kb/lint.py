"""Checks on KB entries shared by ``bot kb import`` and ``bot kb lint``.

Each finding is a :class:`~bot.training.data.Problem` (``file:line: level: message. Fix:
hint``) tagged with the check that found it and the entry ids involved:

| check | level | what |
|---|---|---|
| ``duplicate_id`` | error | an id defined twice |
| ``duplicate_question`` | warning | the same normalised question in two entries |
| ``repeated_question`` | warning | a question listed twice in one entry |
| ``collision`` | warning | a question of one entry too close to one of another entry |
| ``long_answer`` | warning | an answer longer than a chat bubble |
| ``few_similar`` | warning | fewer similar questions than ``min_similar`` |

Readers and the importer add their own checks (``source``, ``row``, ``duplicate_row``,
``empty_answer``, ``missing_category``, ``skipped_row``, …) with the same shape.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from bot.kb.collisions import fold, near_duplicates
from bot.kb.sources import KBEntry, read_source, source_files
from bot.training.data import Problem, Source

Level = Literal["error", "warning"]

#: what each check means, for the summary table
CHECKS: dict[str, str] = {
    "source": "unreadable or invalid source",
    "header": "header / column mapping",
    "row": "bad cell in a row",
    "skipped_row": "row skipped",
    "duplicate_row": "exact duplicate row",
    "duplicate_id": "id defined twice",
    "duplicate_question": "same question in two entries",
    "repeated_question": "question repeated in one entry",
    "collision": "questions of two entries too close",
    "empty_answer": "empty answer",
    "long_answer": "answer too long for a chat bubble",
    "missing_category": "missing category",
    "few_similar": "few similar questions",
    "target": "target file",
}


@dataclass(frozen=True)
class Finding:
    check: str
    problem: Problem
    ids: tuple[str, ...] = ()

    @property
    def level(self) -> str:
        return self.problem.level

    def __str__(self) -> str:
        return str(self.problem)

    def to_json(self) -> dict[str, Any]:
        source = self.problem.source
        return {
            "check": self.check,
            "level": self.problem.level,
            "file": source.file if source else None,
            "line": source.line if source else None,
            "message": self.problem.message,
            "hint": self.problem.hint,
            "ids": list(self.ids),
        }


def finding(
    check: str,
    level: Level,
    message: str,
    hint: str,
    where: Source | None,
    ids: Iterable[str] = (),
) -> Finding:
    return Finding(check, Problem(level, message, hint, where), tuple(ids))


@dataclass(frozen=True)
class LintSettings:
    similarity: float = 0.9  # collision threshold (char n-gram TF-IDF cosine)
    max_answer_chars: int = 500  # a chat bubble
    min_similar: int = 3


def _at(entry: KBEntry) -> str:
    return str(entry.source) if entry.source else "?"


def check_entries(
    entries: Sequence[KBEntry],
    settings: LintSettings | None = None,
    focus: set[str] | None = None,
) -> list[Finding]:
    """Every check on ``entries``. With ``focus``, only findings involving one of those ids
    (the other entries still count as neighbours and duplicates)."""
    settings = settings or LintSettings()
    out: list[Finding] = []
    by_id: dict[str, KBEntry] = {}
    by_key: dict[str, KBEntry] = {}
    unique: list[KBEntry] = []
    folds: dict[str, str] = {}
    for entry in entries:
        first = by_id.get(entry.id)
        if first is not None:
            out.append(
                finding(
                    "duplicate_id",
                    "error",
                    f"duplicate id '{entry.id}' (first defined at {_at(first)})",
                    "rename one of the entries or merge them",
                    entry.source,
                    (entry.id,),
                )
            )
            continue
        by_id[entry.id] = entry
        unique.append(entry)
        own: set[str] = set()
        for text in (entry.question, *entry.similar_questions):
            key = folds.get(text)
            if key is None:
                key = folds[text] = fold(text)
            if not key:
                continue
            if key in own:
                out.append(
                    finding(
                        "repeated_question",
                        "warning",
                        f"'{text}' is listed twice in entry '{entry.id}'",
                        "remove the repeat",
                        entry.source,
                        (entry.id,),
                    )
                )
                continue
            own.add(key)
            other = by_key.get(key)
            if other is not None:
                out.append(
                    finding(
                        "duplicate_question",
                        "warning",
                        f"duplicate question '{text}' in '{entry.id}' and '{other.id}' "
                        f"({_at(other)})",
                        "keep the question in the one entry it belongs to",
                        entry.source,
                        (entry.id, other.id),
                    )
                )
            else:
                by_key[key] = entry
        length = len(entry.answer)
        if length > settings.max_answer_chars:
            out.append(
                finding(
                    "long_answer",
                    "warning",
                    f"the answer of '{entry.id}' has {length} characters (limit "
                    f"{settings.max_answer_chars}): too long for one chat bubble",
                    "keep the first paragraph as the answer and move the details to a page "
                    "(links:) or to follow-up entries offered as buttons",
                    entry.source,
                    (entry.id,),
                )
            )
        if len(entry.similar_questions) < settings.min_similar:
            out.append(
                finding(
                    "few_similar",
                    "warning",
                    f"entry '{entry.id}' has {len(entry.similar_questions)} similar question(s)",
                    f"add at least {settings.min_similar} paraphrases customers really use",
                    entry.source,
                    (entry.id,),
                )
            )
    out.extend(check_collisions(unique, settings.similarity, folds))
    if focus is not None:
        out = [f for f in out if any(i in focus for i in f.ids)]
    return out


def check_collisions(
    entries: Sequence[KBEntry], threshold: float = 0.9, folds: dict[str, str] | None = None
) -> list[Finding]:
    """One finding per pair of entries whose questions are too close (the closest texts).
    ``folds``: text → :func:`~bot.kb.collisions.fold`, when already computed."""
    folds = {} if folds is None else folds
    texts: list[str] = []
    owners: list[int] = []
    for number, entry in enumerate(entries):
        for text in (entry.question, *entry.similar_questions):
            texts.append(text)
            owners.append(number)
    best: dict[tuple[int, int], tuple[float, int, int]] = {}
    folded = [folds[t] if t in folds else fold(t) for t in texts]
    for pair in near_duplicates(texts, owners, threshold, folded=folded):
        a, b = owners[pair.i], owners[pair.j]
        i, j = pair.i, pair.j
        if a > b:
            a, b, i, j = b, a, j, i
        if (a, b) not in best or pair.score > best[(a, b)][0]:
            best[(a, b)] = (pair.score, i, j)
    out = []
    for (a, b), (score, i, j) in sorted(best.items()):
        first, second = entries[a], entries[b]
        out.append(
            finding(
                "collision",
                "warning",
                f"'{texts[j]}' ({second.id}) is {score:.2f} similar to '{texts[i]}' "
                f"({first.id}, {_at(first)})",
                "a customer asking this may get either answer: reword one, move the question "
                "to the entry it belongs to, or merge the two entries",
                second.source,
                (second.id, first.id),
            )
        )
    return out


# --------------------------------------------------------------------------- bot kb lint


@dataclass
class LintReport:
    kb_dir: Path
    files: list[Path] = field(default_factory=list)
    entries: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.level == "warning"]

    def to_json(self) -> dict[str, Any]:
        return {
            "kb_dir": str(self.kb_dir),
            "files": [str(p) for p in self.files],
            "entries": self.entries,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "summary": summary(self.findings),
            "problems": [f.to_json() for f in self.findings],
        }


def lint_kb(kb_dir: Path, settings: LintSettings | None = None) -> LintReport:
    """Read every source of ``KB_DIR/sources/`` (YAML and TSV) and run every check."""
    report = LintReport(kb_dir)
    entries: list[KBEntry] = []
    for path in source_files(kb_dir):
        part = read_source(path, _display(path))
        report.files.append(path)
        entries.extend(part.entries)
        report.findings.extend(Finding("source", p) for p in part.problems)
    if not report.files:
        report.findings.append(
            finding(
                "source",
                "error",
                f"no source files in {kb_dir / 'sources'}",
                "add *.yml or *.tsv entries there, or import a FAQ with 'bot kb import'",
                Source(str(kb_dir / "sources"), 1),
            )
        )
    report.findings.extend(check_entries(entries, settings))
    report.entries = len({e.id for e in entries})
    return report


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def summary(findings: Iterable[Finding]) -> dict[str, dict[str, Any]]:
    """``{check: {"level", "count", "what"}}`` in the order of :data:`CHECKS`."""
    counts: dict[tuple[str, str], int] = {}
    for f in findings:
        counts[(f.check, f.level)] = counts.get((f.check, f.level), 0) + 1
    order = list(CHECKS)
    out: dict[str, dict[str, Any]] = {}
    for (check, level), count in sorted(
        counts.items(),
        key=lambda kv: (order.index(kv[0][0]) if kv[0][0] in order else len(order), kv[0][1]),
    ):
        name = check if check not in out else f"{check} ({level})"
        out[name] = {"level": level, "count": count, "what": CHECKS.get(check, check)}
    return out


def render(
    findings: Sequence[Finding],
    title: str,
    totals: Sequence[tuple[str, str]] = (),
    limit: int = 100,
    out: Any = None,
    err: Any = None,
) -> None:
    """One line per finding (at most ``limit`` per check; 0: all) on ``err`` and a rich
    summary table on ``out``."""
    import sys

    from rich.console import Console
    from rich.table import Table

    err = err or sys.stderr
    shown: dict[str, int] = {}
    hidden = 0
    for f in findings:
        shown[f.check] = shown.get(f.check, 0) + 1
        if limit and shown[f.check] > limit:
            hidden += 1
            continue
        print(f, file=err)
    if hidden:
        print(f"… {hidden} more line(s) not shown (--show 0 lists all, --json for CI)", file=err)
    console = Console(file=out or sys.stdout, width=100, highlight=False, soft_wrap=False)
    table = Table(title=title, title_justify="left")
    table.add_column("check")
    table.add_column("level")
    table.add_column("count", justify="right")
    table.add_column("what")
    for label, value in totals:
        table.add_row(label, "", value, "")
    for name, item in summary(findings).items():
        table.add_row(name, item["level"], str(item["count"]), item["what"])
    console.print(table)


def dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, indent=1)
