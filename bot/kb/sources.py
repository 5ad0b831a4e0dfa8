"""Knowledge-base source files: YAML (``version: "1"``, ``entries:``) and TSV, read with the
file and line of every entry so each problem names where to fix it.

Sources live in ``KB_DIR/sources/`` (``*.yml``, ``*.yaml``, ``*.tsv``, sorted by name).
A TSV file has the header ``id, question, similar_questions, answer, category`` (tab
separated; similar questions separated by ``|``; optional columns ``channels`` (``|``
separated), ``valid_from`` and ``valid_to`` (``YYYY-MM-DD``)). ``\\n`` in a TSV answer is a
line break.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.errors import BotError
from bot.training.data import Problem, Source

SOURCES_DIR = "sources"
SOURCE_SUFFIXES = (".yml", ".yaml", ".tsv")
TSV_COLUMNS = ("id", "question", "similar_questions", "answer", "category")
TSV_OPTIONAL = ("channels", "valid_from", "valid_to")
ENTRY_KEYS = (
    "id",
    "category",
    "question",
    "similar_questions",
    "answer",
    "buttons",
    "links",
    "channels",
    "valid_from",
    "valid_to",
)
_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
_NOT_WORD = re.compile(r"[\W_]+")
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available


class KBSourceError(BotError):
    """The knowledge-base sources have errors; the message lists them."""


@dataclass(frozen=True)
class Button:
    title: str
    payload: str


@dataclass(frozen=True)
class Link:
    title: str
    url: str


@dataclass(frozen=True)
class KBEntry:
    """One knowledge topic: a standard question, its paraphrases and the answer."""

    id: str
    category: str
    question: str
    answer: str
    similar_questions: tuple[str, ...] = ()
    buttons: tuple[Button, ...] = ()
    links: tuple[Link, ...] = ()
    channels: tuple[str, ...] = ()
    valid_from: date | None = None
    valid_to: date | None = None
    source: Source | None = field(default=None, compare=False)

    def variants(self) -> list[str]:
        """The standard question then every similar question, without repeats."""
        seen: set[str] = set()
        out: list[str] = []
        for text in (self.question, *self.similar_questions):
            key = question_key(text)
            if key and key not in seen:
                seen.add(key)
                out.append(text)
        return out

    def is_active(self, channel: str | None = None, today: date | None = None) -> bool:
        """``channel=None`` means any channel; ``today`` defaults to the current date."""
        day = today or date.today()
        if self.valid_from is not None and day < self.valid_from:
            return False
        if self.valid_to is not None and day > self.valid_to:
            return False
        return channel is None or not self.channels or channel in self.channels

    def to_dict(self, *, with_similar: bool = True) -> dict[str, Any]:
        """The YAML form (also used in the built metadata)."""
        out: dict[str, Any] = {"id": self.id, "category": self.category, "question": self.question}
        if with_similar:
            out["similar_questions"] = list(self.similar_questions)
        out["answer"] = self.answer
        if self.buttons:
            out["buttons"] = [{"title": b.title, "payload": b.payload} for b in self.buttons]
        if self.links:
            out["links"] = [{"title": li.title, "url": li.url} for li in self.links]
        if self.channels:
            out["channels"] = list(self.channels)
        if self.valid_from is not None:
            out["valid_from"] = self.valid_from.isoformat()
        if self.valid_to is not None:
            out["valid_to"] = self.valid_to.isoformat()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KBEntry:
        """Inverse of :meth:`to_dict` for data this package wrote (no validation)."""
        return cls(
            id=data["id"],
            category=data.get("category", ""),
            question=data["question"],
            answer=data["answer"],
            similar_questions=tuple(data.get("similar_questions", ())),
            buttons=tuple(Button(b["title"], b["payload"]) for b in data.get("buttons", ())),
            links=tuple(Link(li["title"], li["url"]) for li in data.get("links", ())),
            channels=tuple(data.get("channels", ())),
            valid_from=_iso(data.get("valid_from")),
            valid_to=_iso(data.get("valid_to")),
        )


def _iso(value: Any) -> date | None:
    return date.fromisoformat(value) if isinstance(value, str) else None


def question_key(text: str) -> str:
    """What makes two questions duplicates: case, spaces and punctuation ignored."""
    return _NOT_WORD.sub("", text).lower()


@dataclass
class KBSources:
    """Every entry of a KB directory, the files read and the problems found."""

    entries: list[KBEntry] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "error"]

    def raise_on_errors(self, limit: int = 30) -> None:
        errors = self.errors
        if errors:
            listing = "\n".join(f"  {p}" for p in errors[:limit])
            more = f"\n  … and {len(errors) - limit} more" if len(errors) > limit else ""
            raise KBSourceError(
                f"the knowledge-base sources have {len(errors)} error(s):\n{listing}{more}"
            )


# --------------------------------------------------------------------------- YAML


class _EntryReader:
    """Turns one YAML mapping node into a :class:`KBEntry`, collecting problems."""

    def __init__(self, file: str, problems: list[Problem]):
        self.file = file
        self.problems = problems

    def error(self, node: Node, message: str, hint: str) -> None:
        self.problems.append(Problem("error", message, hint, Source(self.file, _line(node))))

    def warn(self, node: Node, message: str, hint: str) -> None:
        self.problems.append(Problem("warning", message, hint, Source(self.file, _line(node))))

    def text(self, node: Node | None, key: str, owner: Node, required: bool) -> str | None:
        if node is None or (isinstance(node, ScalarNode) and node.tag.endswith(":null")):
            if required:
                self.error(owner, f"entry has no '{key}'", f"add '{key}: …' to the entry")
            return None
        if not isinstance(node, ScalarNode):
            self.error(node, f"'{key}' must be text", f"write '{key}: some text'")
            return None
        value = str(node.value).strip()
        if required and not value:
            self.error(node, f"'{key}' is empty", f"write the {key} text")
            return None
        return value

    def texts(self, node: Node | None, key: str) -> list[tuple[str, Node]]:
        if node is None or (isinstance(node, ScalarNode) and node.tag.endswith(":null")):
            return []
        if not isinstance(node, SequenceNode):
            self.error(
                node, f"'{key}' must be a list", f"write one '- item' per line under '{key}:'"
            )
            return []
        out: list[tuple[str, Node]] = []
        for item in node.value:
            if isinstance(item, ScalarNode) and item.value.strip():
                out.append((str(item.value).strip(), item))
            else:
                self.error(item, f"an item of '{key}' is empty or not text", "write '- some text'")
        return out

    def pairs(self, node: Node | None, key: str, fields: tuple[str, str]) -> list[tuple[str, str]]:
        if node is None or (isinstance(node, ScalarNode) and node.tag.endswith(":null")):
            return []
        if not isinstance(node, SequenceNode):
            self.error(node, f"'{key}' must be a list", f"write '- {fields[0]}: …' items")
            return []
        out = []
        for item in node.value:
            values = _mapping(item) if isinstance(item, MappingNode) else None
            got = [values.get(f) if values else None for f in fields]
            if values is None or not all(
                isinstance(g, ScalarNode) and g.value.strip() for g in got
            ):
                self.error(
                    item,
                    f"an item of '{key}' needs '{fields[0]}' and '{fields[1]}'",
                    f"write '- {fields[0]}: …' with '{fields[1]}: …' under it",
                )
                continue
            out.append((str(got[0].value).strip(), str(got[1].value).strip()))  # type: ignore[union-attr]
        return out

    def day(self, node: Node | None, key: str) -> date | None:
        if node is None or (isinstance(node, ScalarNode) and node.tag.endswith(":null")):
            return None
        try:
            if not isinstance(node, ScalarNode):
                raise ValueError
            return date.fromisoformat(node.value.strip())
        except ValueError:
            self.error(node, f"'{key}' is not a date", f"write '{key}: 2026-01-31' (YYYY-MM-DD)")
            return None

    def read(self, node: Node) -> KBEntry | None:
        if not isinstance(node, MappingNode):
            self.error(node, "an entry must be a mapping", "start each entry with '- id: …'")
            return None
        values = _mapping(node)
        ok_before = len([p for p in self.problems if p.level == "error"])
        for key_node, _ in node.value:
            key = key_node.value if isinstance(key_node, ScalarNode) else None
            if key not in ENTRY_KEYS:
                self.error(
                    key_node,
                    f"unknown key '{key}'",
                    "remove it or use one of: " + ", ".join(ENTRY_KEYS),
                )
        entry_id = self.text(values.get("id"), "id", node, True)
        if entry_id is not None and not _ID.match(entry_id):
            self.error(
                values["id"],
                f"id '{entry_id}' has characters other than letters, digits, '_', '-', '.'",
                "use an id such as 'transfer_limit'",
            )
        category = self.text(values.get("category"), "category", node, True)
        question = self.text(values.get("question"), "question", node, True)
        answer = self.text(values.get("answer"), "answer", node, True)
        similar = self.texts(values.get("similar_questions"), "similar_questions")
        buttons = self.pairs(values.get("buttons"), "buttons", ("title", "payload"))
        links = self.pairs(values.get("links"), "links", ("title", "url"))
        channels = self.texts(values.get("channels"), "channels")
        valid_from = self.day(values.get("valid_from"), "valid_from")
        valid_to = self.day(values.get("valid_to"), "valid_to")
        if valid_from and valid_to and valid_from > valid_to:
            self.error(
                values["valid_to"],
                f"valid_to {valid_to} is before valid_from {valid_from}",
                "swap the dates or correct one of them",
            )
        if len([p for p in self.problems if p.level == "error"]) > ok_before:
            return None
        assert entry_id and category and question and answer
        return KBEntry(
            id=entry_id,
            category=category,
            question=question,
            answer=answer,
            similar_questions=tuple(text for text, _ in similar),
            buttons=tuple(Button(t, p) for t, p in buttons),
            links=tuple(Link(t, u) for t, u in links),
            channels=tuple(text for text, _ in channels),
            valid_from=valid_from,
            valid_to=valid_to,
            source=Source(self.file, _line(node)),
        )


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _mapping(node: MappingNode) -> dict[str, Node]:
    return {k.value: v for k, v in node.value if isinstance(k, ScalarNode)}


def read_yaml_source(path: Path, display_name: str | None = None) -> KBSources:
    """Read one YAML source file; problems carry ``file:line``."""
    file = display_name or str(path)
    out = KBSources(files=[path])
    try:
        root = yaml.compose(path.read_text(encoding="utf-8"), Loader=_LOADER)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = int(mark.line) + 1 if mark is not None else 1
        out.problems.append(
            Problem("error", f"invalid YAML: {exc}", "fix the syntax", Source(file, line))
        )
        return out
    except (OSError, UnicodeDecodeError) as exc:
        out.problems.append(
            Problem("error", f"cannot read: {exc}", "save it as UTF-8", Source(file, 1))
        )
        return out
    if root is None:
        return out
    top = _mapping(root) if isinstance(root, MappingNode) else None
    if top is None or "entries" not in top:
        out.problems.append(
            Problem(
                "error",
                "expected a mapping with 'version' and 'entries'",
                "start the file with 'version: \"1\"' and 'entries:'",
                Source(file, _line(root)),
            )
        )
        return out
    version = top.get("version")
    if version is None or not isinstance(version, ScalarNode) or version.value != "1":
        out.problems.append(
            Problem(
                "warning" if version is None else "error",
                "missing version"
                if version is None
                else f"unknown version '{version.value}'"
                if isinstance(version, ScalarNode)
                else "version must be text",
                "write 'version: \"1\"' at the top",
                Source(file, _line(version if version is not None else root)),
            )
        )
    entries = top["entries"]
    if isinstance(entries, ScalarNode) and entries.tag.endswith(":null"):
        return out
    if not isinstance(entries, SequenceNode):
        out.problems.append(
            Problem(
                "error",
                "'entries' must be a list",
                "write '- id: …' items",
                Source(file, _line(entries)),
            )
        )
        return out
    reader = _EntryReader(file, out.problems)
    for node in entries.value:
        entry = reader.read(node)
        if entry is not None:
            out.entries.append(entry)
    return out


# --------------------------------------------------------------------------- TSV


def _split_list(value: str) -> list[str]:
    return [part.strip() for part in value.split("|") if part.strip()]


def read_tsv_source(path: Path, display_name: str | None = None) -> KBSources:
    """Read a TSV file (header ``id, question, similar_questions, answer, category``)."""
    file = display_name or str(path)
    out = KBSources(files=[path])
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        out.problems.append(
            Problem("error", f"cannot read: {exc}", "save it as UTF-8", Source(file, 1))
        )
        return out
    rows = list(csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE))
    if not rows:
        out.problems.append(
            Problem(
                "error",
                "the file is empty",
                "add the header line " + "<TAB>".join(TSV_COLUMNS),
                Source(file, 1),
            )
        )
        return out
    header = [h.strip().lower() for h in rows[0]]
    missing = [c for c in TSV_COLUMNS if c not in header]
    unknown = [h for h in header if h not in TSV_COLUMNS + TSV_OPTIONAL]
    if missing or unknown or len(set(header)) != len(header):
        what = []
        if missing:
            what.append("missing column(s) " + ", ".join(missing))
        if unknown:
            what.append("unknown column(s) " + ", ".join(unknown))
        if len(set(header)) != len(header):
            what.append("a column is repeated")
        out.problems.append(
            Problem(
                "error",
                "bad header: " + "; ".join(what),
                "the first line must be the tab-separated names "
                + ", ".join(TSV_COLUMNS)
                + " (optional: "
                + ", ".join(TSV_OPTIONAL)
                + ")",
                Source(file, 1),
            )
        )
        return out
    col = {name: i for i, name in enumerate(header)}
    for number, row in enumerate(rows[1:], 2):
        where = Source(file, number)
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            out.problems.append(
                Problem(
                    "error",
                    f"{len(row)} column(s), expected {len(header)}",
                    "separate the columns with exactly one tab; no tabs inside a cell",
                    where,
                )
            )
            continue
        cells = {name: row[i].strip() for name, i in col.items()}
        errors = []
        for name in ("id", "question", "answer", "category"):
            if not cells[name]:
                errors.append((f"empty {name}", f"fill in the {name} column"))
        if cells["id"] and not _ID.match(cells["id"]):
            errors.append(
                (
                    f"id '{cells['id']}' has characters other than letters, digits, '_', '-', '.'",
                    "use an id such as 'transfer_limit'",
                )
            )
        days: dict[str, date | None] = {}
        for name in ("valid_from", "valid_to"):
            raw = cells.get(name, "")
            try:
                days[name] = date.fromisoformat(raw) if raw else None
            except ValueError:
                days[name] = None
                errors.append((f"{name} '{raw}' is not a date", "write YYYY-MM-DD"))
        if days["valid_from"] and days["valid_to"] and days["valid_from"] > days["valid_to"]:
            errors.append(("valid_to is before valid_from", "swap or correct the dates"))
        for message, hint in errors:
            out.problems.append(Problem("error", message, hint, where))
        if errors:
            continue
        out.entries.append(
            KBEntry(
                id=cells["id"],
                category=cells["category"],
                question=cells["question"],
                answer=cells["answer"].replace("\\n", "\n"),
                similar_questions=tuple(_split_list(cells["similar_questions"])),
                channels=tuple(_split_list(cells.get("channels", ""))),
                valid_from=days["valid_from"],
                valid_to=days["valid_to"],
                source=where,
            )
        )
    return out


# --------------------------------------------------------------------------- checks


def check_entries(entries: Iterable[KBEntry], min_similar: int = 3) -> list[Problem]:
    """Duplicate ids (error), questions shared by two entries and thin entries (warnings)."""
    problems: list[Problem] = []
    by_id: dict[str, KBEntry] = {}
    by_question: dict[str, KBEntry] = {}
    for entry in entries:
        first = by_id.get(entry.id)
        if first is not None:
            problems.append(
                Problem(
                    "error",
                    f"duplicate id '{entry.id}' (first defined at {first.source})",
                    "rename one of the entries or merge them",
                    entry.source,
                )
            )
            continue
        by_id[entry.id] = entry
        own: set[str] = set()
        for text in (entry.question, *entry.similar_questions):
            key = question_key(text)
            if key in own:
                problems.append(
                    Problem(
                        "warning",
                        f"'{text}' is listed twice in entry '{entry.id}'",
                        "remove the repeat",
                        entry.source,
                    )
                )
                continue
            own.add(key)
            other = by_question.get(key)
            if other is not None and other.id != entry.id:
                problems.append(
                    Problem(
                        "warning",
                        f"duplicate question '{text}' in '{entry.id}' and '{other.id}' "
                        f"({other.source})",
                        "keep the question in the one entry it belongs to",
                        entry.source,
                    )
                )
            else:
                by_question[key] = entry
        if len(entry.similar_questions) < min_similar:
            problems.append(
                Problem(
                    "warning",
                    f"entry '{entry.id}' has {len(entry.similar_questions)} similar question(s)",
                    f"add at least {min_similar} paraphrases customers really use",
                    entry.source,
                )
            )
    return problems


def source_files(kb_dir: Path) -> list[Path]:
    """The source files of a KB directory, sorted (``KB_DIR/sources/**``)."""
    folder = kb_dir / SOURCES_DIR
    if not folder.is_dir():
        return []
    return sorted(
        p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in SOURCE_SUFFIXES
    )


def read_source(path: Path, display_name: str | None = None) -> KBSources:
    if path.suffix.lower() == ".tsv":
        return read_tsv_source(path, display_name)
    return read_yaml_source(path, display_name)


def load_sources(kb_dir: Path) -> KBSources:
    """Read and check every source file of ``kb_dir``."""
    out = KBSources()
    for path in source_files(kb_dir):
        try:
            name = str(path.relative_to(kb_dir.parent)) if kb_dir.parent != path else str(path)
        except ValueError:
            name = str(path)
        part = read_source(path, name)
        out.entries.extend(part.entries)
        out.problems.extend(part.problems)
        out.files.extend(part.files)
    out.problems.extend(check_entries(out.entries))
    seen: set[str] = set()
    unique = []
    for entry in out.entries:
        if entry.id not in seen:
            seen.add(entry.id)
            unique.append(entry)
    out.entries = unique
    return out


def dump_yaml_entries(entries: Iterable[KBEntry]) -> str:
    """A YAML source file holding ``entries`` (block style, Unicode kept)."""
    data = {"version": "1", "entries": [e.to_dict() for e in entries]}
    return yaml.dump(data, allow_unicode=True, sort_keys=False, width=1000, Dumper=_Dumper)


class _Dumper(yaml.SafeDumper):
    pass


def _str_presenter(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _str_presenter)
