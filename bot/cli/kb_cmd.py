"""``bot kb build | search | eval | import | lint | gaps``: the knowledge base for trainers."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

DEFAULT_KB_DIR = "kb_index"


def register(sub: Any) -> None:
    kb = sub.add_parser(
        "kb",
        help="build, search and evaluate the knowledge base",
        description="Knowledge-base tools. Every command works on the KB folder given by "
        "--kb-dir (default: kb_index/ of the project); see docs/knowledge-base.md.",
    )
    kb_sub = kb.add_subparsers(dest="kb_command", metavar="SUBCOMMAND")
    kb_sub.required = True

    build = kb_sub.add_parser(
        "build",
        help="build the index (skipped when the sources are unchanged)",
        description="Build the FAISS index, BM25 and classifier from KB_DIR/sources/ into "
        "KB_DIR/build/. Skipped when the sources, settings and NLU text are unchanged.",
    )
    _common(build)
    build.add_argument("--force", action="store_true", help="build even if nothing changed")
    build.set_defaults(handler=run_build)

    search = kb_sub.add_parser(
        "search",
        help="rank the entries for a question",
        description="Print the best entries with calibrated scores (builds first if needed).",
    )
    _common(search)
    search.add_argument("question", help="the customer's question")
    search.add_argument("--top", type=int, default=5, help="how many entries (default 5)")
    search.add_argument(
        "--json",
        action="store_true",
        help='print a JSON list of {"id", "question", "answer", "category", "score"}',
    )
    search.add_argument("--channel", default=None, help="only entries offered on this channel")
    search.add_argument(
        "--date", default=None, type=_day, help="validity date YYYY-MM-DD (default today)"
    )
    search.set_defaults(handler=run_search)

    evaluate = kb_sub.add_parser(
        "eval",
        help="top-1, recall@5 and MRR on labelled queries",
        description="Evaluate retrieval on a TSV with the header 'query<TAB>topic_id'. Prints "
        "the figures and the misses and writes them as JSON to OUT/kb_eval.json.",
    )
    _common(evaluate)
    evaluate.add_argument("file", type=Path, help="TSV file: query<TAB>topic_id")
    evaluate.add_argument(
        "--out",
        type=Path,
        default=None,
        help="folder for kb_eval.json (default: results/ of the project)",
    )
    evaluate.set_defaults(handler=run_eval)

    importer = kb_sub.add_parser(
        "import",
        help="import a FAQ file (.xlsx, .csv, .tsv, .json, .md) into a YAML source",
        description="Read a FAQ file (.xlsx/.xlsm: first sheet or --sheet; .csv: UTF-8, "
        'UTF-8 with BOM or GBK; .tsv; .json: a list of objects or {"entries": [...]}; .md: '
        "question headings), map the columns by name (标准问/question, 相似问/"
        "similar_questions, 答案/answer, 分类/category, 编号/id, 渠道/channels, 生效日期/"
        "valid_from, 失效日期/valid_to) or by the --*-col flags, and merge the entries by id "
        "into KB_DIR/sources/INTO (default: <file name>.yml; imported.yml for .tsv). Entries "
        "without an id get a stable one. Reports duplicates, near-duplicate questions across "
        "entries, long answers and missing categories. Nothing is written when a row has an "
        "error (exit code 1). See docs/knowledge-base.md.",
    )
    _common(importer)
    importer.add_argument("file", type=Path, help="the FAQ file")
    importer.add_argument(
        "--into",
        default=None,
        metavar="NAME.yml",
        help="YAML file under sources/ (default: <file name>.yml; imported.yml for .tsv)",
    )
    importer.add_argument("--sheet", default=None, help="Excel sheet name or 1-based number")
    for flag, what in (
        ("question", "standard question"),
        ("answer", "answer"),
        ("similar", "similar questions"),
        ("category", "category"),
        ("id", "id"),
    ):
        importer.add_argument(
            f"--{flag}-col",
            default=None,
            metavar="NAME|N",
            help=f"the {what} column: a header name or a 1-based number",
        )
    importer.add_argument(
        "--default-category",
        default=None,
        help="category of rows without one (default 未分类; reported)",
    )
    importer.add_argument(
        "--force",
        action="store_true",
        help="also merge into a file that 'bot kb import' did not write",
    )
    importer.add_argument(
        "--replace",
        action="store_true",
        help="the target keeps only this file's entries (others are removed)",
    )
    importer.add_argument(
        "--skip-invalid",
        action="store_true",
        help="skip rows with errors (reported) instead of importing nothing",
    )
    importer.add_argument("--dry-run", action="store_true", help="check and report only")
    importer.add_argument(
        "--max-rows", type=int, default=100_000, help="refuse larger files (default 100000)"
    )
    _lint_options(importer)
    importer.set_defaults(handler=run_import)

    lint = kb_sub.add_parser(
        "lint",
        help="check the sources: duplicates, near-duplicate questions, long answers",
        description="Run the import checks on KB_DIR/sources/ (YAML and TSV): file problems, "
        "duplicate ids and questions, questions of two entries too close to each other, "
        "answers too long for a chat bubble, thin entries. Exit code 1 on errors "
        "(--strict: also on warnings).",
    )
    _common(lint)
    _lint_options(lint)
    lint.add_argument("--strict", action="store_true", help="warnings also fail (exit 1)")
    lint.set_defaults(handler=run_lint)

    gaps = kb_sub.add_parser(
        "gaps",
        help="list the questions the knowledge base could not answer",
        description="List the knowledge gaps logged in KB_DIR/gaps.jsonl, newest last.",
    )
    _common(gaps)
    gaps.add_argument("--last", type=int, default=50, help="show the last N (default 50, 0: all)")
    gaps.add_argument("--json", action="store_true", help="print JSON lines")
    gaps.set_defaults(handler=run_gaps)


def _common(parser: argparse.ArgumentParser) -> None:
    from bot.cli.options import add_project_option

    add_project_option(parser)
    parser.add_argument(
        "--kb-dir",
        metavar="DIR",
        default=None,
        help=f"knowledge-base folder (default: {DEFAULT_KB_DIR}/ of the project)",
    )


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date (YYYY-MM-DD)") from exc


@dataclass(frozen=True)
class _Context:
    kb_dir: Path
    root: Path | None  # the project folder, when there is one
    config: dict[str, Any]


def _context(args: argparse.Namespace) -> _Context:
    from bot.errors import ConfigError
    from bot.kb.settings import read_config_mapping
    from bot.project import Project

    root: Path | None
    try:
        root = Project.find(args.project).root
    except ConfigError:
        if args.kb_dir is None or args.project is not None:
            raise
        root = None  # a KB folder outside any project: default settings
    kb_dir = Path(args.kb_dir) if args.kb_dir else root / DEFAULT_KB_DIR  # type: ignore[operator]
    config = read_config_mapping(root / "config.yml") if root else {}
    return _Context(kb_dir, root, config)


def _build(ctx: _Context, force: bool, quiet: bool) -> Any:
    from bot.kb.build import build_knowledge_base, project_nlu_texts

    nlu = project_nlu_texts(ctx.root) if ctx.root else None
    result = build_knowledge_base(
        ctx.kb_dir, ctx.config, nlu, force=force, progress=sys.stderr.isatty(), root=ctx.root
    )
    if not result.skipped and quiet:
        print(
            f"(built the knowledge base: {result.entries} entries, {result.seconds:.1f} s)",
            file=sys.stderr,
        )
    return result


def _load(ctx: _Context) -> Any:
    from bot.kb.knowledge_base import KnowledgeBase
    from bot.kb.settings import KBSettings

    _build(ctx, force=False, quiet=True)
    return KnowledgeBase.load(ctx.kb_dir, KBSettings.from_config(ctx.config, ctx.root))


def run_build(args: argparse.Namespace) -> int:
    ctx = _context(args)
    result = _build(ctx, force=args.force, quiet=False)
    if result.skipped:
        print(
            f"Sources unchanged since the last build in {result.build_dir}; nothing to do "
            "(--force to rebuild)."
        )
        return 0
    for problem in result.warnings:
        print(problem, file=sys.stderr)
    print(
        f"Built {result.entries} entries ({result.variants} questions) in {result.seconds:.1f} s "
        f"→ {result.build_dir}: {result.index_kind} index, classifier "
        f"{'on' if result.classifier else 'off'}, calibrated on "
        f"{result.calibration_queries} held-out questions"
    )
    _print_calibration(result.build_dir)
    return 0


def _print_calibration(build_dir: Path) -> None:
    """The build's reliability report (held-out pseudo-queries), from meta.json."""
    from bot.kb.build import read_meta
    from bot.kb.calibration import format_reliability

    meta = read_meta(build_dir)
    if meta.get("incremental"):
        print(
            f"(incremental build: embedder and calibration kept from build "
            f"{meta['incremental'].get('from_build')}; --force refits them)"
        )
    print(format_reliability(meta.get("calibration") or {}))


def run_search(args: argparse.Namespace) -> int:
    kb = _load(_context(args))
    hits = kb.search(args.question, top=max(1, args.top), channel=args.channel, today=args.date)
    if args.json:
        print(json.dumps([h.to_json() for h in hits], ensure_ascii=False, indent=1))
        return 0
    if not hits:
        print("no matching entry")
        return 0
    decision = kb.decide(args.question, channel=args.channel, today=args.date, log_gap=False)
    for rank, hit in enumerate(hits, 1):
        print(f"{rank}. {hit.score:.3f}  {hit.id}  [{hit.category}] {hit.question}")
    print(f"decision: {decision.kind}")
    return 0


def run_eval(args: argparse.Namespace) -> int:
    from bot.kb.calibration import format_reliability
    from bot.kb.evaluate import BM25Baseline, decision_reliability, evaluate, read_eval_tsv
    from bot.kb.sources import load_sources

    ctx = _context(args)
    pairs = read_eval_tsv(args.file)
    kb = _load(ctx)
    known = {e.id for e in kb.entries}
    unknown = sorted({t for _, t in pairs if t not in known})
    if unknown:
        print(f"warning: topic ids not in the KB: {', '.join(unknown)}", file=sys.stderr)
    found = {q: kb.search(q, 5) for q in dict.fromkeys(q for q, _ in pairs)}
    report = evaluate(lambda q, k: [h.id for h in found[q][:k]], pairs)
    baseline = evaluate(BM25Baseline(load_sources(ctx.kb_dir).entries).search, pairs)
    reliability = decision_reliability(
        [found[q][0].score if found[q] else 0.0 for q, _ in pairs],
        [bool(found[q]) and found[q][0].id == t for q, t in pairs],
    )
    reliability["kind"] = f"the queries of {args.file.name}"
    data = {
        "file": str(args.file),
        "kb_dir": str(ctx.kb_dir),
        **report.to_json(),
        "baseline_bm25": {k: v for k, v in baseline.to_json().items() if k != "misses"},
        "reliability": reliability,
        "build_calibration": kb.meta.get("calibration"),
    }
    out_dir = args.out or ((ctx.root / "results") if ctx.root else Path("results"))
    out_dir.mkdir(parents=True, exist_ok=True)
    out_file = out_dir / "kb_eval.json"
    out_file.write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    for miss in report.misses:
        rank = miss["rank"] or f">{report.k}"
        print(
            f"miss: {miss['query']}  expected {miss['expected']} (rank {rank}), "
            f"got {', '.join(miss['got'])}"
        )
    print(
        f"baseline BM25 (jieba words + character 1-2-grams over the questions): "
        f"top1={baseline.top1:.4f}  recall@{baseline.k}={baseline.recall_at_k:.4f}  "
        f"mrr={baseline.mrr:.4f}"
    )
    print(format_reliability(reliability))
    print(
        f"n={report.n}  top1={report.top1:.4f}  recall@{report.k}={report.recall_at_k:.4f}  "
        f"mrr={report.mrr:.4f}  → {out_file}"
    )
    return 0


def _lint_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--similarity",
        type=float,
        default=0.9,
        metavar="COS",
        help="report questions of two entries at least this similar (character n-gram "
        "TF-IDF cosine; default 0.9)",
    )
    parser.add_argument(
        "--max-answer-chars",
        type=int,
        default=500,
        metavar="N",
        help="report longer answers (default 500: one chat bubble)",
    )
    parser.add_argument(
        "--min-similar",
        type=int,
        default=3,
        metavar="N",
        help="report entries with fewer similar questions (default 3)",
    )
    parser.add_argument(
        "--show",
        type=int,
        default=100,
        metavar="N",
        help="problem lines shown per check (default 100, 0: all)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def _lint_settings(args: argparse.Namespace) -> Any:
    from bot.kb.lint import LintSettings

    if not 0.0 < args.similarity <= 1.0:
        raise SystemExit("--similarity must be in (0, 1]")
    return LintSettings(args.similarity, args.max_answer_chars, args.min_similar)


def run_import(args: argparse.Namespace) -> int:
    from bot.kb.importer import DEFAULT_CATEGORY, ImportOptions, import_file
    from bot.kb.lint import dumps, render

    ctx = _context(args)
    columns = {
        name: value
        for name, value in (
            ("question", args.question_col),
            ("answer", args.answer_col),
            ("similar_questions", args.similar_col),
            ("category", args.category_col),
            ("id", args.id_col),
        )
        if value
    }
    options = ImportOptions(
        into=args.into,
        columns=columns,
        sheet=args.sheet,
        default_category=args.default_category or DEFAULT_CATEGORY,
        force=args.force,
        replace=args.replace,
        skip_invalid=args.skip_invalid,
        dry_run=args.dry_run,
        max_rows=args.max_rows,
        lint=_lint_settings(args),
    )
    result = import_file(args.file, ctx.kb_dir, options)
    if args.json:
        print(dumps(result.to_json()))
        return 1 if result.errors else 0
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    render(result.findings, f"Import of {args.file}", result.totals(), args.show)
    if result.errors:
        print(f"{len(result.errors)} error(s); nothing imported.", file=sys.stderr)
        return 1
    what = "Would import" if args.dry_run else "Imported"
    print(
        f"{what} {len(result.added)} new and {len(result.updated)} updated entries "
        f"({len(result.unchanged)} unchanged) into {result.target}."
        + ("" if args.dry_run else " Review it, then run 'bot kb build' to index them.")
    )
    return 0


def run_lint(args: argparse.Namespace) -> int:
    from bot.kb.lint import dumps, lint_kb, render

    ctx = _context(args)
    report = lint_kb(ctx.kb_dir, _lint_settings(args))
    failed = bool(report.errors) or (args.strict and bool(report.warnings))
    if args.json:
        print(dumps({**report.to_json(), "ok": not failed}))
        return 1 if failed else 0
    render(
        report.findings,
        f"Lint of {ctx.kb_dir}",
        [("files", str(len(report.files))), ("entries", str(report.entries))],
        args.show,
    )
    print(
        f"{len(report.errors)} error(s), {len(report.warnings)} warning(s) in "
        f"{report.entries} entries."
    )
    return 1 if failed else 0


def run_gaps(args: argparse.Namespace) -> int:
    from bot.kb.gaps import GapLog

    ctx = _context(args)
    items = list(GapLog.in_dir(ctx.kb_dir).read())
    if args.last > 0:
        items = items[-args.last :]
    if args.json:
        for item in items:
            print(json.dumps(item, ensure_ascii=False))
        return 0
    if not items:
        print(f"No knowledge gaps logged in {ctx.kb_dir / 'gaps.jsonl'}.")
        return 0
    for item in items:
        best = item.get("candidates") or []
        near = f"  (nearest: {best[0]['id']} {best[0]['score']:.2f})" if best else ""
        print(f"{item.get('timestamp', '?')}  {item.get('query', '')}{near}")
    print(f"{len(items)} gap(s)")
    return 0
