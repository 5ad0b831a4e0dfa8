"""``bot kb import FILE.tsv``: merge TSV rows into a YAML source file of a KB directory.

All or nothing: when any row has an error, nothing is written. A row whose id is already in
the target file replaces that entry; an id defined in another source file is an error.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from bot.kb.sources import (
    SOURCES_DIR,
    KBEntry,
    check_entries,
    dump_yaml_entries,
    question_key,
    read_source,
    read_tsv_source,
    read_yaml_source,
    source_files,
)
from bot.training.data import Problem, Source

DEFAULT_TARGET = "imported.yml"


@dataclass
class ImportResult:
    target: Path
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    written: bool = False

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "error"]


def import_tsv(tsv: Path, kb_dir: Path, into: str = DEFAULT_TARGET) -> ImportResult:
    target = kb_dir / SOURCES_DIR / into
    result = ImportResult(target)
    incoming = read_tsv_source(tsv)
    result.problems.extend(incoming.problems)
    # duplicates inside the TSV itself (ids: errors; questions, thin entries: warnings)
    result.problems.extend(check_entries(incoming.entries))
    target_entries: list[KBEntry] = []
    if target.is_file():
        current = read_yaml_source(target)
        if current.errors:
            result.problems.append(
                Problem(
                    "error",
                    f"{target} has errors",
                    "fix it first ('bot kb build' lists them)",
                    Source(str(target), 1),
                )
            )
        target_entries = current.entries
    others = [
        entry
        for path in source_files(kb_dir)
        if path.resolve() != target.resolve()
        for entry in read_source(path).entries
    ]
    elsewhere = {e.id: e for e in others}
    owner_of_question = {
        question_key(text): e for e in others for text in (e.question, *e.similar_questions)
    }
    merged = {e.id: e for e in target_entries}
    seen: set[str] = set()
    for entry in incoming.entries:
        if entry.id in seen:
            continue  # reported by check_entries
        seen.add(entry.id)
        other = elsewhere.get(entry.id)
        if other is not None:
            result.problems.append(
                Problem(
                    "error",
                    f"duplicate id '{entry.id}': already defined at {other.source}",
                    "choose another id, or edit the entry in that file",
                    entry.source,
                )
            )
            continue
        for text in (entry.question, *entry.similar_questions):
            owner = owner_of_question.get(question_key(text))
            if owner is not None and owner.id != entry.id:
                result.problems.append(
                    Problem(
                        "warning",
                        f"duplicate question '{text}': also in entry '{owner.id}' ({owner.source})",
                        "keep the question in the one entry it belongs to",
                        entry.source,
                    )
                )
        (result.updated if entry.id in merged else result.added).append(entry.id)
        merged[entry.id] = entry
    if result.errors:
        result.added.clear()
        result.updated.clear()
        return result
    target.parent.mkdir(parents=True, exist_ok=True)
    text = "# Written by 'bot kb import'; edit freely, later imports merge by id.\n"
    text += dump_yaml_entries(merged.values())
    fd, tmp = tempfile.mkstemp(prefix=f".{into}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    result.written = True
    return result
