"""``bot kb import FILE``: turn a bank's FAQ file (.xlsx, .csv, .tsv, .json, .md) into a
reviewable YAML source of a KB directory, and report what to fix.

- Rows become entries (:mod:`bot.kb.import_formats` reads and maps the columns); an entry
  without an id gets a stable one from its category and question (:func:`stable_id`).
- All or nothing: when any row has an error, nothing is written (``skip_invalid`` skips those
  rows instead and says so). An id defined in another source file is an error.
- Merge by id into the target (``sources/<name>.yml``): a row whose id is already there
  replaces that entry (*updated*, or *unchanged* when equal), the target's other entries are
  kept (``replace`` drops them). A target not written by ``bot kb import`` is a trainer's file
  and is only written with ``force``.
- The checks of :mod:`bot.kb.lint` run on the result together with the other sources
  (duplicates, near-duplicate questions across entries, long answers, thin entries); only
  findings about the imported entries are reported.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from bot.kb.collisions import fold
from bot.kb.import_formats import (
    CHANNEL_SEPARATORS,
    MAX_ROWS,
    SIMILAR_SEPARATORS,
    Cell,
    Record,
    read_faq_file,
)
from bot.kb.lint import Finding, LintSettings, check_entries, finding
from bot.kb.sources import (
    SOURCES_DIR,
    KBEntry,
    dump_yaml_entries,
    read_source,
    read_yaml_source,
    source_files,
)
from bot.kb.text import normalise_text
from bot.training.data import Problem, Source

DEFAULT_TARGET = "imported.yml"  # for .tsv files (as before); other files: <name>.yml
DEFAULT_CATEGORY = "未分类"
MARKER = "# Written by 'bot kb import'"
HEADER_COMMENT = MARKER + "; edit freely, later imports merge by id.\n"
ID_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")  # as in bot.kb.sources
_DATE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?$")


@dataclass(frozen=True)
class ImportOptions:
    into: str | None = None  # file under sources/ (default: see target_name)
    columns: dict[str, str] = field(default_factory=dict)  # field → header name or number
    sheet: str | None = None
    default_category: str = DEFAULT_CATEGORY
    force: bool = False  # write into a file not written by 'bot kb import'
    replace: bool = False  # the target gets only this file's entries
    skip_invalid: bool = False  # skip rows with errors instead of importing nothing
    dry_run: bool = False
    max_rows: int = MAX_ROWS
    lint: LintSettings = field(default_factory=LintSettings)


@dataclass
class ImportResult:
    source: Path
    target: Path
    kind: str = ""
    rows: int = 0
    blank: int = 0
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: int = 0
    generated_ids: int = 0
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    written: bool = False

    @property
    def problems(self) -> list[Problem]:
        return [f.problem for f in self.findings]

    @property
    def errors(self) -> list[Problem]:
        return [f.problem for f in self.findings if f.level == "error"]

    def totals(self) -> list[tuple[str, str]]:
        rows = [
            ("rows read", str(self.rows)),
            ("blank rows", str(self.blank)),
            ("rows skipped or in error", str(self.skipped)),
            ("new entries", str(len(self.added))),
            ("updated", str(len(self.updated))),
            ("unchanged", str(len(self.unchanged))),
        ]
        if self.kept:
            rows.append(("kept from target", str(len(self.kept))))
        if self.removed:
            rows.append(("removed (--replace)", str(len(self.removed))))
        rows.append(("generated ids", str(self.generated_ids)))
        return rows

    def to_json(self) -> dict[str, object]:
        from bot.kb.lint import summary

        return {
            "source": str(self.source),
            "target": str(self.target),
            "written": self.written,
            "rows": self.rows,
            "blank": self.blank,
            "skipped": self.skipped,
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "kept": len(self.kept),
            "removed": self.removed,
            "generated_ids": self.generated_ids,
            "notes": self.notes,
            "errors": len(self.errors),
            "summary": summary(self.findings),
            "problems": [f.to_json() for f in self.findings],
        }


def stable_id(category: str, question: str) -> str:
    """An ASCII id from the folded category and question: the question's ASCII words (if
    any) and 10 hex digits of a SHA-1, e.g. ``etc_1f0c5e2a9b`` or ``faq_3b9d0c41aa``. The
    same text always gives the same id, so re-importing an edited file updates entries."""
    key = f"{fold(category)}\x1f{fold(question)}"
    digest = hashlib.sha1(key.encode("utf-8")).hexdigest()[:10]
    slug = re.sub(r"[^a-z0-9]+", "_", normalise_text(question)).strip("_")[:24].strip("_")
    return f"{slug}_{digest}" if slug else f"faq_{digest}"


def target_name(path: Path) -> str:
    """Default ``--into``: ``imported.yml`` for TSV (as before), else ``<file name>.yml``."""
    if path.suffix.lower() == ".tsv":
        return DEFAULT_TARGET
    stem = re.sub(r"[^\w.\-]+", "_", path.stem).strip("._")
    return f"{stem}.yml" if stem else DEFAULT_TARGET


def import_tsv(tsv: Path, kb_dir: Path, into: str = DEFAULT_TARGET) -> ImportResult:
    """The former entry point: a TSV merged into ``into``."""
    return import_file(tsv, kb_dir, ImportOptions(into=into))


def import_file(path: Path, kb_dir: Path, options: ImportOptions | None = None) -> ImportResult:
    options = options or ImportOptions()
    into = options.into or target_name(path)
    target = kb_dir / SOURCES_DIR / into
    result = ImportResult(path, target)
    if (
        Path(into).is_absolute()
        or ".." in Path(into).parts
        or Path(into).suffix.lower()
        not in (
            ".yml",
            ".yaml",
        )
    ):
        result.findings.append(
            finding(
                "target",
                "error",
                f"--into '{into}' must be a .yml file inside {SOURCES_DIR}/",
                "give a name such as 'faq.yml'",
                Source(str(path), 1),
            )
        )
        return result
    read = read_faq_file(path, options.columns, options.sheet, options.max_rows)
    result.kind, result.rows, result.blank = read.kind, read.rows, read.blank
    result.notes.extend(read.notes)
    result.findings.extend(read.findings)
    if any(f.level == "error" and f.check in ("source", "header") for f in read.findings):
        return result

    target_entries = _read_target(target, options, result)
    others = [
        entry
        for p in source_files(kb_dir)
        if p.resolve() != target.resolve()
        for entry in read_source(p).entries
    ]
    elsewhere = {e.id: e for e in others}
    bad_lines = {
        f.problem.source.line
        for f in read.findings
        if f.level == "error" and f.check == "row" and f.problem.source is not None
    }
    result.skipped += len(bad_lines)
    records = [r for r in read.records if r.line not in bad_lines]
    incoming = _entries(records, read.file, options, elsewhere, result)
    if options.skip_invalid:
        result.findings = [_as_skipped(f) for f in result.findings]
    if result.errors:
        return result

    merged: dict[str, KBEntry] = {} if options.replace else {e.id: e for e in target_entries}
    before = {e.id: e for e in target_entries}
    for entry in incoming:
        old = before.get(entry.id)
        if old is None:
            result.added.append(entry.id)
        elif old == entry:
            result.unchanged.append(entry.id)
        else:
            result.updated.append(entry.id)
        merged[entry.id] = entry
    new_ids = {e.id for e in incoming}
    result.kept = [i for i in before if i not in new_ids and i in merged]
    result.removed = [i for i in before if i not in merged]
    result.findings.extend(check_entries([*others, *merged.values()], options.lint, focus=new_ids))
    if result.errors:
        _clear(result)
        return result
    if not options.dry_run:
        _write(target, list(merged.values()))
        result.written = True
    return result


def _clear(result: ImportResult) -> None:
    for items in (result.added, result.updated, result.unchanged, result.kept, result.removed):
        items.clear()


def _as_skipped(f: Finding) -> Finding:
    if f.level != "error" or f.check in ("source", "header", "target"):
        return f
    p = f.problem
    return Finding(
        "skipped_row", Problem("warning", f"row skipped: {p.message}", p.hint, p.source), f.ids
    )


def _read_target(target: Path, options: ImportOptions, result: ImportResult) -> list[KBEntry]:
    if not target.is_file():
        return []
    where = Source(str(target), 1)
    try:
        first = target.read_text(encoding="utf-8").lstrip("\ufeff")
    except (OSError, UnicodeDecodeError) as exc:
        result.findings.append(
            finding("target", "error", f"cannot read {target}: {exc}", "fix or remove it", where)
        )
        return []
    if not first.startswith(MARKER) and not options.force and first.strip():
        result.findings.append(
            finding(
                "target",
                "error",
                f"{target} was not written by 'bot kb import' (a trainer's file)",
                "import into another file with --into NAME.yml, or pass --force to merge into it",
                where,
            )
        )
        return []
    current = read_yaml_source(target)
    if current.errors:
        result.findings.append(
            finding(
                "target",
                "error",
                f"{target} has errors",
                "fix it first ('bot kb lint' lists them)",
                where,
            )
        )
    return current.entries


def _entries(
    records: list[Record],
    file: str,
    options: ImportOptions,
    elsewhere: dict[str, KBEntry],
    result: ImportResult,
) -> list[KBEntry]:
    """Records → entries; problems of each row are findings at ``file:row``."""
    out: list[KBEntry] = []
    first_raw: dict[tuple[str, ...], int] = {}
    first_id: dict[str, tuple[int, bool]] = {}  # id → (row, generated)
    for record in records:
        where = Source(file, record.line)
        if record.raw in first_raw:
            result.skipped += 1
            result.findings.append(
                finding(
                    "duplicate_row",
                    "warning",
                    f"an exact copy of row {first_raw[record.raw]}; skipped",
                    "delete the repeated row",
                    where,
                )
            )
            continue
        first_raw[record.raw] = record.line
        errors: list[Finding] = []
        entry = _entry(record, where, options, errors, result)
        if entry is not None:
            generated = not _text(record.values.get("id"))
            seen = first_id.get(entry.id)
            if seen is not None:
                row, gen = seen
                if generated and gen:
                    errors.append(
                        finding(
                            "duplicate_question",
                            "error",
                            f"the same question '{entry.question}' (and category) as row {row}",
                            "merge the two rows (their similar questions into one) or delete one",
                            where,
                            (entry.id,),
                        )
                    )
                else:
                    errors.append(
                        finding(
                            "duplicate_id",
                            "error",
                            f"duplicate id '{entry.id}' (first at row {row})",
                            "give each row its own id",
                            where,
                            (entry.id,),
                        )
                    )
            elif entry.id in elsewhere:
                errors.append(
                    finding(
                        "duplicate_id",
                        "error",
                        f"duplicate id '{entry.id}': already defined at "
                        f"{elsewhere[entry.id].source}",
                        "choose another id, or edit the entry in that file",
                        where,
                        (entry.id,),
                    )
                )
            else:
                first_id[entry.id] = (record.line, generated)
        result.findings.extend(errors)
        if any(f.level == "error" for f in errors) or entry is None:
            result.skipped += 1
            continue
        if not _text(record.values.get("id")):
            result.generated_ids += 1
        out.append(entry)
    return out


def _text(value: Cell | None) -> str:
    if value is None:
        return ""
    return "\n".join(value) if isinstance(value, list) else value


def _items(value: Cell | None, separators: re.Pattern[str]) -> list[str]:
    if value is None:
        return []
    parts = value if isinstance(value, list) else separators.split(value)
    return [" ".join(p.split()) for p in parts if p.strip()]


def _entry(
    record: Record,
    where: Source,
    options: ImportOptions,
    errors: list[Finding],
    result: ImportResult,
) -> KBEntry | None:
    values = record.values

    def error(check: str, message: str, hint: str) -> None:
        errors.append(finding(check, "error", message, hint, where))

    question = " ".join(_text(values.get("question")).split())
    answer = _text(values.get("answer")).strip()
    category = " ".join(_text(values.get("category")).split())
    entry_id = _text(values.get("id")).strip()
    if not question:
        error("row", "empty question", "fill in the question (标准问) cell, or delete the row")
    if not answer:
        error(
            "empty_answer",
            f"empty answer{f' for {question!r}' if question else ''}",
            "write the answer (答案) the bot should give, or delete the row",
        )
    if entry_id and not ID_PATTERN.match(entry_id):
        error(
            "row",
            f"id '{entry_id}' has characters other than letters, digits, '_', '-', '.'",
            "use an id such as 'transfer_limit', or leave it empty to generate one",
        )
    days: dict[str, date | None] = {}
    for name in ("valid_from", "valid_to"):
        raw = _text(values.get(name)).strip()
        days[name] = _day(raw)
        if raw and days[name] is None:
            error("row", f"{name} '{raw}' is not a date", "write YYYY-MM-DD, e.g. 2026-01-31")
    if days["valid_from"] and days["valid_to"] and days["valid_from"] > days["valid_to"]:
        error("row", "valid_to is before valid_from", "swap or correct the dates")
    if errors:
        return None
    if not category:
        category = options.default_category
        result.findings.append(
            finding(
                "missing_category",
                "warning",
                f"no category; filed under '{category}'",
                "fill in the category (分类) so trainers and reports can group it",
                where,
            )
        )
    similar: list[str] = []
    seen = {fold(question)}
    for text in _items(values.get("similar_questions"), SIMILAR_SEPARATORS):
        key = fold(text)
        if key in seen:
            result.findings.append(
                finding(
                    "repeated_question",
                    "warning",
                    f"similar question '{text}' repeats the question or another similar one; "
                    "dropped",
                    "remove the repeat",
                    where,
                )
            )
            continue
        seen.add(key)
        similar.append(text)
    return KBEntry(
        id=entry_id or stable_id(category, question),
        category=category,
        question=question,
        answer=answer,
        similar_questions=tuple(similar),
        channels=tuple(dict.fromkeys(_items(values.get("channels"), CHANNEL_SEPARATORS))),
        valid_from=days["valid_from"],
        valid_to=days["valid_to"],
        source=where,
    )


def _day(text: str) -> date | None:
    if not text:
        return None
    match = _DATE.match(text.split(" ")[0] if "年" not in text else text)
    if match is None:
        return None
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


def render_yaml(entries: list[KBEntry]) -> str:
    """The target file: a header comment, then one entry per block, a blank line between."""
    if _FastDumper is None:  # pragma: no cover - PyYAML without libyaml
        text = dump_yaml_entries(entries)
    else:  # the same text as dump_yaml_entries, with libyaml's emitter (3× faster)
        data = {"version": "1", "entries": [e.to_dict() for e in entries]}
        text = yaml.dump(data, allow_unicode=True, sort_keys=False, width=1000, Dumper=_FastDumper)
    lines = text.split("\n")
    out: list[str] = []
    first = True
    for line in lines:
        if line.startswith("- id:"):
            if not first:
                out.append("")
            first = False
        out.append(line)
    return HEADER_COMMENT + "\n".join(out)


def _block_strings(dumper: Any, value: str) -> Any:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_FastDumper: Any = None
if hasattr(yaml, "CSafeDumper"):
    _FastDumper = type("_FastDumper", (yaml.CSafeDumper,), {})
    _FastDumper.add_representer(str, _block_strings)


def _write(target: Path, entries: list[KBEntry]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    text = render_yaml(entries)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
