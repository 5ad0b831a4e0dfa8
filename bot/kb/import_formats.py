"""Readers for the FAQ files ``bot kb import`` accepts, turning each into :class:`Record` s
(one per FAQ row) with canonical field names and the row or line it came from.

- ``.xlsx`` / ``.xlsm`` (openpyxl): the first sheet or ``sheet``; the header is the first row
  (among the first 10) that names a question column, rows above it are skipped; vertically
  merged cells are filled with their top-left value; formulas are read as their saved values.
- ``.csv``: UTF-8 (with or without BOM), UTF-16 with BOM, else GBK/GB18030 (Excel's
  "CSV" on Chinese Windows); comma, semicolon or tab, guessed from the first lines.
- ``.tsv``: tab separated, no quoting, ``\\n`` in a cell is a line break (as in sources/).
- ``.json``: a list of objects, or ``{"entries": [...]}``.
- ``.md``: question headings (see :func:`read_markdown`).

Columns (and JSON keys) are mapped by name, Chinese or English (:data:`FIELD_NAMES`), or by
``columns`` (field → header name or 1-based column number), which win over the names.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from bot.kb.lint import Finding, finding
from bot.kb.text import normalise_text
from bot.training.data import Source

FORMATS = (".xlsx", ".xlsm", ".csv", ".tsv", ".json", ".md", ".markdown")
MAX_BYTES = 50 * 1024 * 1024
MAX_ROWS = 100_000
HEADER_SEARCH_ROWS = 10

#: canonical field → accepted header names (compared after :func:`header_key`)
FIELD_NAMES: dict[str, tuple[str, ...]] = {
    "id": ("id", "编号", "问题编号", "faq_id", "entry_id"),
    "question": ("question", "标准问", "标准问题", "标准问法", "问题", "主问题"),
    "similar_questions": (
        "similar_questions",
        "similar",
        "similar_question",
        "相似问",
        "相似问法",
        "相似问题",
        "扩展问",
        "扩展问法",
        "相似问句",
    ),
    "answer": ("answer", "答案", "回答", "标准答案", "答复", "回复"),
    "category": ("category", "分类", "类别", "类目", "问题分类", "业务分类"),
    "channels": ("channels", "channel", "渠道", "适用渠道"),
    "valid_from": ("valid_from", "生效日期", "生效时间", "开始日期"),
    "valid_to": ("valid_to", "失效日期", "失效时间", "截止日期", "结束日期"),
}
#: header names that are known and deliberately not read (row counters)
IGNORED_NAMES = ("序号", "no", "行号", "#")
REQUIRED = ("question", "answer")
SIMILAR_SEPARATORS = re.compile(r"[|｜;；\n]")
CHANNEL_SEPARATORS = re.compile(r"[|｜;；,，、\s]+")

Cell = str | list[str]


def header_key(name: str) -> str:
    """Header names compared without case, width, spaces, ``_``/``-`` and a trailing note in
    brackets: ``Similar Questions``, ``similar_questions``, ``相似问（用|分隔）`` match."""
    text = re.sub(r"[(（\[【].*?[)）\]】]", "", normalise_text(name))
    return re.sub(r"[\s_\-:：*.]+", "", text)


_BY_NAME = {header_key(n): f for f, names in FIELD_NAMES.items() for n in names}
_IGNORED = {header_key(n) for n in IGNORED_NAMES}


@dataclass
class Record:
    """One FAQ row: canonical field → text (lists for similar questions from JSON/Markdown)."""

    line: int
    values: dict[str, Cell]
    raw: tuple[str, ...] = ()  # the cells as read, for exact-duplicate detection


@dataclass
class ReadResult:
    file: str
    kind: str
    records: list[Record] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    rows: int = 0  # data rows (or items, sections) seen, blank ones included
    blank: int = 0

    def error(self, line: int, message: str, hint: str, check: str = "source") -> None:
        self.findings.append(finding(check, "error", message, hint, Source(self.file, line)))

    def warn(self, line: int, message: str, hint: str, check: str = "header") -> None:
        self.findings.append(finding(check, "warning", message, hint, Source(self.file, line)))


def read_faq_file(
    path: Path,
    columns: dict[str, str] | None = None,
    sheet: str | None = None,
    max_rows: int = MAX_ROWS,
    display_name: str | None = None,
) -> ReadResult:
    """Read ``path`` by its suffix; every problem is a finding with ``file:line``."""
    file = display_name or str(path)
    kind = path.suffix.lower()
    result = ReadResult(file, kind.lstrip("."))
    if kind not in FORMATS:
        result.error(
            1,
            f"cannot import '{kind or path.name}' files",
            "save the FAQ as .xlsx, .csv, .tsv, .json or .md"
            + (" (Excel 'Save as' → .xlsx)" if kind == ".xls" else ""),
        )
        return result
    try:
        size = path.stat().st_size
    except OSError as exc:
        result.error(1, f"cannot read: {exc.strerror or exc}", "check the path")
        return result
    if size > MAX_BYTES:
        result.error(
            1,
            f"the file has {size / 2**20:.0f} MB; the limit is {MAX_BYTES // 2**20} MB",
            "split it into several files and import each",
        )
        return result
    if size == 0:
        result.error(1, "the file is empty", _HEADER_HINT)
        return result
    columns = columns or {}
    if kind in (".xlsx", ".xlsm"):
        _read_xlsx(path, result, columns, sheet, max_rows)
    elif kind in (".md", ".markdown"):
        text = _decode(path.read_bytes(), result)
        if text is not None:
            read_markdown(text, result)
    elif kind == ".json":
        text = _decode(path.read_bytes(), result)
        if text is not None:
            _read_json(text, result, columns, max_rows)
    else:
        text = _decode(path.read_bytes(), result)
        if text is not None:
            _read_delimited(text, result, columns, max_rows, tsv=kind == ".tsv")
    if sheet is not None and kind not in (".xlsx", ".xlsm"):
        result.warn(1, "--sheet is only for Excel files; ignored", "leave it out")
    return result


_HEADER_HINT = (
    "export the FAQ with a header row naming the columns, e.g. 标准问, 相似问, 答案, 分类 "
    "(or question, similar_questions, answer, category)"
)


# --------------------------------------------------------------------------- text


def _decode(data: bytes, result: ReadResult) -> str | None:
    if data.startswith(b"PK\x03\x04"):
        result.error(1, "this is an Excel workbook (zip), not text", "rename it to .xlsx")
        return None
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8) :].decode("utf-8", errors="replace")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        result.notes.append("read as UTF-16")
        return data.decode("utf-16", errors="replace")
    if b"\x00" in data[:4096]:
        result.error(
            1,
            "binary data (NUL bytes): not a text file",
            "export the FAQ as CSV UTF-8, or import the workbook (.xlsx) itself",
        )
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        utf8_error = exc
    try:
        text = data.decode("gb18030")
    except UnicodeDecodeError:
        line = data[: utf8_error.start].count(b"\n") + 1
        result.error(
            line,
            f"neither UTF-8 nor GBK text (byte 0x{data[utf8_error.start]:02x})",
            "save it as UTF-8 (Excel: 'Save as' → 'CSV UTF-8 (comma delimited)')",
        )
        return None
    result.notes.append("read as GBK/GB18030 (not UTF-8)")
    return text


def cell_text(value: Any) -> str:
    """A cell as text: numbers without a spurious ``.0``, dates as ``YYYY-MM-DD``, line
    endings ``\\n``, tabs as spaces and no spaces at line ends (so the YAML stays readable)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time(0) else value.isoformat(" ")
    if isinstance(value, date | time):
        return value.isoformat()
    text = str(value).replace("\r\n", "\n").replace("\r", "\n").replace("\t", "    ")
    return "\n".join(line.rstrip() for line in text.split("\n")).strip()


# --------------------------------------------------------------------------- columns


@dataclass
class _Mapping:
    fields: dict[str, int]  # canonical field → 0-based column
    width: int


def _map_header(
    header: Sequence[str],
    line: int,
    result: ReadResult,
    columns: dict[str, str],
) -> _Mapping | None:
    keys = [header_key(h) for h in header]
    fields: dict[str, int] = {}
    ok = True
    for field_name, wanted in columns.items():
        wanted = wanted.strip()
        if wanted.isdigit():
            index = int(wanted) - 1
            if not 0 <= index < max(len(header), 1) or int(wanted) == 0:
                result.error(
                    line,
                    f"--{_flag(field_name)} {wanted}: the header has {len(header)} column(s)",
                    "give a column number from 1 or a header name",
                    "header",
                )
                ok = False
                continue
        else:
            matches = [i for i, h in enumerate(header) if h.strip() == wanted]
            matches = matches or [i for i, k in enumerate(keys) if k == header_key(wanted)]
            if not matches:
                result.error(
                    line,
                    f"--{_flag(field_name)} '{wanted}': no such column (the header is: "
                    + ", ".join(h for h in header if h)
                    + ")",
                    "give one of those names or a 1-based column number",
                    "header",
                )
                ok = False
                continue
            index = matches[0]
        fields[field_name] = index
    taken = set(fields.values())
    for index, key in enumerate(keys):
        if index in taken or not key:
            continue
        name = _BY_NAME.get(key)
        if name is None:
            if key not in _IGNORED:
                result.warn(
                    line,
                    f"column {_column(index)} '{header[index]}' is not read",
                    "rename it to one of "
                    + ", ".join(f"'{n[0]}'" for n in FIELD_NAMES.values())
                    + " or pass --question-col/--answer-col/…",
                )
            continue
        if name in fields:
            if name in columns:
                continue  # the flag chose another column for this field
            result.error(
                line,
                f"columns {_column(fields[name])} '{header[fields[name]]}' and "
                f"{_column(index)} '{header[index]}' both give the {name}",
                f"rename one, or choose with --{_flag(name)}",
                "header",
            )
            ok = False
            continue
        fields[name] = index
    missing = [f for f in REQUIRED if f not in fields]
    if missing and ok:
        names = ", ".join(h for h in header if h) or "(empty)"
        for name in missing:
            result.error(
                line,
                f"no {name} column (the header is: {names})",
                f"name the column '{FIELD_NAMES[name][1]}' or '{name}', or pass "
                f"--{_flag(name)} NAME|NUMBER",
                "header",
            )
        ok = False
    return _Mapping(fields, len(header)) if ok else None


def _flag(field_name: str) -> str:
    return {"similar_questions": "similar", "valid_from": "valid-from", "valid_to": "valid-to"}.get(
        field_name, field_name
    ) + "-col"


def _column(index: int) -> str:
    """Excel letters for a 0-based column: 0 → A, 27 → AB."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _find_header(rows: Sequence[tuple[int, list[str]]], columns: dict[str, str]) -> int:
    """Index (in ``rows``) of the header: the first row naming a question column (or the
    flag's name) among the first few non-blank rows; else the first non-blank row."""
    wanted = {header_key(v) for v in columns.values() if not v.strip().isdigit()}
    first = None
    seen = 0
    for i, (_, cells) in enumerate(rows):
        if not any(cells):
            continue
        first = i if first is None else first
        keys = {header_key(c) for c in cells}
        if any(_BY_NAME.get(k) == "question" for k in keys) or (wanted & keys):
            return i
        seen += 1
        if seen >= HEADER_SEARCH_ROWS:
            break
    return first if first is not None else 0


def _records_from_rows(
    rows: list[tuple[int, list[str]]],
    result: ReadResult,
    columns: dict[str, str],
    tsv: bool = False,
) -> None:
    """Header detection, column mapping and one record per non-blank row."""
    if not any(any(cells) for _, cells in rows):
        result.error(rows[0][0] if rows else 1, "no rows: the file or sheet is empty", _HEADER_HINT)
        return
    at = _find_header(rows, columns)
    header_line, header = rows[at]
    for line, cells in rows[:at]:
        if any(cells):
            result.notes.append(f"row {line} above the header skipped: {' '.join(cells)[:40]}")
    mapping = _map_header(header, header_line, result, columns)
    if mapping is None:
        return
    used = set(mapping.fields.values())
    stray: dict[int, int] = {}
    for line, cells in rows[at + 1 :]:
        result.rows += 1
        if not any(cells):
            result.blank += 1
            continue
        if tsv and len(cells) != mapping.width:
            result.error(
                line,
                f"{len(cells)} column(s), expected {mapping.width}",
                "separate the columns with exactly one tab; no tabs inside a cell",
                "row",
            )
            continue
        for index, cell in enumerate(cells):
            if cell and index not in used and index not in stray:
                stray[index] = line
        values: dict[str, Cell] = {}
        for name, index in mapping.fields.items():
            value = cells[index] if index < len(cells) else ""
            values[name] = value.replace("\\n", "\n") if tsv else value
        result.records.append(Record(line, values, tuple(cells)))
    for index, line in sorted(stray.items()):
        if index >= len(header) or not header[index]:
            result.warn(
                line,
                f"column {_column(index)} has cells but no header; they are not read",
                "give the column a header name (e.g. 相似问) or delete it",
            )


# --------------------------------------------------------------------------- CSV / TSV


def _read_delimited(
    text: str, result: ReadResult, columns: dict[str, str], max_rows: int, tsv: bool
) -> None:
    if tsv:
        reader: Iterable[list[str]] = csv.reader(
            text.splitlines(), delimiter="\t", quoting=csv.QUOTE_NONE
        )
        rows = [(n, [cell_text(c) for c in r]) for n, r in enumerate(reader, 1)]
    else:
        try:
            dialect: Any = csv.Sniffer().sniff(text[:8192], delimiters=",;\t")
            delimiter = dialect.delimiter
        except csv.Error:
            delimiter = ","
        if delimiter != ",":
            name = "tab" if delimiter == "\t" else delimiter
            result.notes.append(f"columns separated by {name}")
        reader_ = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        rows = []
        start = 1
        try:
            for record in reader_:
                rows.append((start, [cell_text(c) for c in record]))
                start = reader_.line_num + 1
                if len(rows) > max_rows + HEADER_SEARCH_ROWS:
                    break
        except csv.Error as exc:
            result.error(
                start,
                f"cannot split the line into cells: {exc}",
                'close the quote (") opened in this cell',
                "row",
            )
            return
    if not _within(rows, result, max_rows):
        return
    _records_from_rows(rows, result, columns, tsv=tsv)


def _within(rows: Sequence[Any], result: ReadResult, max_rows: int) -> bool:
    if len(rows) > max_rows + HEADER_SEARCH_ROWS:
        result.error(
            1,
            f"more than {max_rows} rows: larger than the import limit",
            f"split the file into parts of at most {max_rows} rows, or pass a higher --max-rows",
        )
        return False
    return True


# --------------------------------------------------------------------------- Excel


def _read_xlsx(
    path: Path, result: ReadResult, columns: dict[str, str], sheet: str | None, max_rows: int
) -> None:
    import warnings
    import zipfile

    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # openpyxl warns about styles and extensions
            book = load_workbook(path, data_only=False)
    except (InvalidFileException, zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        result.error(
            1,
            f"cannot read the workbook: {exc}",
            "open it in Excel and save it again as .xlsx (Excel workbook)",
        )
        return
    names = list(book.sheetnames)
    if sheet is None:
        ws = book.worksheets[0]
        if len(names) > 1:
            result.notes.append(
                f"read sheet '{ws.title}'; not read: {', '.join(names[1:])} (--sheet NAME)"
            )
    elif sheet in names:
        ws = book[sheet]
    elif sheet.isdigit() and 1 <= int(sheet) <= len(names):
        ws = book.worksheets[int(sheet) - 1]
    else:
        result.error(
            1,
            f"no sheet '{sheet}' (the sheets are: {', '.join(names)})",
            "pass --sheet with one of those names or a 1-based number",
        )
        return
    if not hasattr(ws, "iter_rows"):
        result.error(1, f"'{ws.title}' is a chart sheet", "choose a sheet with --sheet")
        return
    if ws.max_row > max_rows + HEADER_SEARCH_ROWS:
        result.error(
            1,
            f"sheet '{ws.title}' has {ws.max_row} rows; the limit is {max_rows}",
            f"split the sheet into parts of at most {max_rows} rows, or pass a higher --max-rows",
        )
        return
    fill: dict[tuple[int, int], Any] = {}
    across = []
    for merged in ws.merged_cells.ranges:
        top = ws.cell(merged.min_row, merged.min_col).value
        if merged.min_col != merged.max_col:
            across.append(merged.coord)
            continue
        for row in range(merged.min_row + 1, merged.max_row + 1):
            fill[(row, merged.min_col)] = top
    if fill:
        result.notes.append(
            f"{len(fill)} cell(s) of vertically merged ranges read as the range's top value"
        )
    for coord in across:
        result.warn(
            int(re.sub(r"\D+", " ", coord).split()[0]),
            f"cells {coord} are merged across columns; only the first one is read",
            "unmerge them (Excel: Merge & Center → Unmerge Cells) and fill each column",
        )
    formulas: list[tuple[int, int]] = []
    rows: list[tuple[int, list[str]]] = []
    errors: list[tuple[int, str, str]] = []
    for cells in ws.iter_rows():
        line = cells[0].row if cells else len(rows) + 1
        texts = []
        for cell in cells:
            value = cell.value
            key = (cell.row, cell.column)
            if key in fill:
                value = fill[key]
            elif cell.data_type == "f":
                formulas.append(key)
            elif cell.data_type == "e":
                errors.append((line, cell.coordinate, str(value)))
                value = ""
            texts.append(cell_text(value))
        rows.append((line, texts))
    if formulas:
        _formula_values(path, ws.title, formulas, rows, result)
    for line, coordinate, value in errors:
        result.error(
            line,
            f"cell {coordinate} holds the Excel error {value}",
            "fix the formula or type the value",
            "row",
        )
    _records_from_rows(rows, result, columns)


def _formula_values(
    path: Path,
    title: str,
    formulas: list[tuple[int, int]],
    rows: list[tuple[int, list[str]]],
    result: ReadResult,
) -> None:
    """Replace formula text by the value Excel saved (the file's cache)."""
    import warnings

    from openpyxl import load_workbook

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        values = load_workbook(path, data_only=True)[title]
    by_line = {line: i for i, (line, _) in enumerate(rows)}
    unsaved = []
    for row, col in formulas:
        value = values.cell(row, col).value
        cells = rows[by_line[row]][1]
        if value is None:
            unsaved.append(f"{_column(col - 1)}{row}")
            cells[col - 1] = ""
        else:
            cells[col - 1] = cell_text(value)
    result.notes.append(f"{len(formulas)} formula cell(s) read as their saved values")
    for coord in unsaved:
        result.error(
            int(re.sub(r"\D", "", coord)),
            f"cell {coord} is a formula without a saved value",
            "open the file in Excel and save it (so the value is stored), or paste the "
            "column as values",
            "row",
        )


# --------------------------------------------------------------------------- JSON


def _read_json(text: str, result: ReadResult, columns: dict[str, str], max_rows: int) -> None:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        result.error(exc.lineno, f"invalid JSON: {exc.msg} (column {exc.colno})", "fix the syntax")
        return
    if isinstance(data, dict) and isinstance(data.get("entries"), list):
        items = data["entries"]
        start = _array_start(text, '"entries"')
    elif isinstance(data, list):
        items = data
        start = text.index("[")
    else:
        result.error(
            1,
            'expected a list of objects or {"entries": [...]}',
            'write [{"question": "…", "answer": "…"}, …]',
        )
        return
    if not items:
        result.error(1, "no entries: the list is empty", 'add {"question": …, "answer": …} items')
        return
    if not _within(items, result, max_rows):
        return
    lines = _item_lines(text, start, len(items))
    wanted = {}
    for field_name, key in columns.items():
        if key.strip().isdigit():
            result.error(
                1,
                f"--{_flag(field_name)} {key}: JSON has no column numbers",
                "give the key name instead",
                "header",
            )
            return
        wanted[key.strip()] = field_name
    unknown: dict[str, int] = {}
    for item, line in zip(items, lines, strict=True):
        result.rows += 1
        if not isinstance(item, dict):
            result.error(line, "an entry must be an object", '{"question": …, "answer": …}', "row")
            continue
        values: dict[str, Cell] = {}
        for key, value in item.items():
            name = wanted.get(key)
            if name is None:
                name = _BY_NAME.get(header_key(str(key)))
                if name is None:
                    if header_key(str(key)) not in _IGNORED:
                        unknown.setdefault(str(key), line)
                    continue
                if name in columns:
                    continue  # a flag chose another key for this field
            if isinstance(value, list) and name in ("similar_questions", "channels"):
                values[name] = [cell_text(v) for v in value if cell_text(v)]
            elif isinstance(value, dict | list):
                result.error(
                    line,
                    f"'{key}' must be text, not {type(value).__name__}",
                    f'write "{key}": "…"',
                    "row",
                )
                values[name] = ""
            else:
                values[name] = cell_text(value)
        if not any(v for v in values.values()):
            result.blank += 1
            continue
        raw = json.dumps(item, ensure_ascii=False, sort_keys=True)
        result.records.append(Record(line, values, (raw,)))
    for key, line in unknown.items():
        result.warn(
            line,
            f"key '{key}' is not read",
            "use one of "
            + ", ".join(f"'{n[0]}'" for n in FIELD_NAMES.values())
            + " or map it with --question-col/--answer-col/…",
        )


def _array_start(text: str, key: str) -> int:
    match = re.search(re.escape(key) + r"\s*:\s*\[", text)
    return match.end() - 1 if match else 0


def _item_lines(text: str, start: int, count: int) -> list[int]:
    """The line of each item of the JSON array opening at ``text[start]`` (1 if unknown)."""
    decoder = json.JSONDecoder()
    lines: list[int] = []
    pos = start + 1
    line = text.count("\n", 0, pos) + 1
    last = pos
    try:
        while len(lines) < count:
            while pos < len(text) and text[pos] in " \t\r\n,":
                pos += 1
            line += text.count("\n", last, pos)
            last = pos
            lines.append(line)
            _, pos = decoder.raw_decode(text, pos)
    except (json.JSONDecodeError, IndexError):
        return [1] * count
    return lines


# --------------------------------------------------------------------------- Markdown

SIMILAR_MARKER = re.compile(
    r"^\s*(?:\*\*)?(?:相似问法|相似问题|相似问|similar questions|similar)(?:\*\*)?\s*[:：]"
    r"(?:\*\*)?\s*(.*)$",
    re.IGNORECASE,
)


def read_markdown(text: str, result: ReadResult) -> None:
    """FAQ in Markdown (parsed with markdown-it, so headings in code blocks do not count):

    - the question headings are the deepest of ``##`` and ``###`` used in the file; each one
      is an entry whose question is the heading text and whose answer is the body below it
      (up to the next heading of that level or higher), kept as written;
    - the category is the nearest heading above of a higher level (``#``, or ``##`` when the
      questions are ``###``);
    - a line ``相似问法：`` (also ``相似问：``, ``相似问题：``, ``Similar:``,
      ``Similar questions:``; bold allowed) followed by a list (``-``, ``*``, ``1.``) gives the
      similar questions; text after the colon on the same line counts too (split at ``|``,
      ``｜``, ``;``, ``；``). That block is not part of the answer.
    """
    from markdown_it import MarkdownIt

    lines = text.splitlines()
    tokens = MarkdownIt("commonmark").parse(text)
    headings: list[tuple[int, int, int, str]] = []  # (level, first line, end line, text)
    for i, token in enumerate(tokens):
        if token.type == "heading_open" and token.map:
            level = int(token.tag[1])
            headings.append((level, token.map[0], token.map[1], tokens[i + 1].content.strip()))
    levels = {h[0] for h in headings}
    question_level = 3 if 3 in levels else 2 if 2 in levels else 0
    if not question_level:
        result.error(
            1,
            "no question headings ('## 问题' or '### 问题')",
            "write each question as a '## ' heading with its answer below it",
        )
        return
    parents: dict[int, str] = {}
    for n, (level, first, end, title) in enumerate(headings):
        if level < question_level:
            parents[level] = title
            for deeper in [k for k in parents if k > level]:
                del parents[deeper]
            continue
        if level > question_level:
            continue
        stop = len(lines)
        for later in headings[n + 1 :]:
            if later[0] <= question_level:
                stop = later[1]
                break
        result.rows += 1
        body = lines[end:stop]
        similar, answer_lines = _similar_block(body)
        category = parents[max(parents)] if parents else ""
        values: dict[str, Cell] = {
            "question": title,
            "answer": cell_text("\n".join(answer_lines)),
            "similar_questions": similar,
        }
        if category:
            values["category"] = category
        result.records.append(Record(first + 1, values, (title, "\n".join(body).strip(), category)))


def _similar_block(body: list[str]) -> tuple[list[str], list[str]]:
    for i, line in enumerate(body):
        match = SIMILAR_MARKER.match(line)
        if match is None:
            continue
        items = [p.strip() for p in SIMILAR_SEPARATORS.split(match.group(1)) if p.strip()]
        j = i + 1
        while j < len(body):
            item = re.match(r"^\s*(?:[-*+]|\d+[.)])\s+(.*)$", body[j])
            if item:
                items.append(item.group(1).strip())
            elif body[j].strip() and not (items and body[j].startswith("  ")):
                break
            j += 1
        return items, body[:i] + body[j:]
    return [], body
