"""``bot kb build`` (also run by ``bot train``): sources → embedder, FAISS index, BM25,
classifier and calibrator, saved with metadata into ``KB_DIR/build/``.

The files are written to a temporary sibling folder and renamed into place, so a reader sees
either the old build or the new one. A fingerprint of the sources, the settings, the NLU text
and this package's code is kept in ``meta.json``; an unchanged fingerprint skips the build.
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from bot import __version__
from bot.errors import BotError
from bot.kb import index as dense_index
from bot.kb.calibration import Calibrator
from bot.kb.classifier import EntryClassifier
from bot.kb.embeddings import load_embedder, make_embedder, save_embedder
from bot.kb.lexical import BM25
from bot.kb.retriever import ActiveSet, Components, Retriever
from bot.kb.settings import KBSettings
from bot.kb.sources import KBEntry, load_sources, source_files
from bot.kb.text import Analysed, TextAnalyzer
from bot.training.data import Problem

BUILD_DIR = "build"
META_FILE = "meta.json"
LOCK_FILE = ".build.lock"
FORMAT = 1
CALIBRATION_ROUNDS = 4
CALIBRATION_ENOUGH = 400
Progress = Callable[[str, int, int], None]


class KBNotBuiltError(BotError):
    """No usable build in ``KB_DIR/build/``."""


@dataclass(frozen=True)
class BuildResult:
    kb_dir: Path
    build_dir: Path
    skipped: bool
    fingerprint: str
    entries: int = 0
    variants: int = 0
    index_kind: str = ""
    classifier: bool = False
    calibration_queries: int = 0
    seconds: float = 0.0
    warnings: list[Problem] = field(default_factory=list)


def _code_files() -> list[Path]:
    return sorted(Path(__file__).resolve().parent.glob("*.py"))


def source_fingerprint(
    kb_dir: Path, settings: KBSettings, nlu_texts: Sequence[str] | None = None
) -> str:
    """A hash of everything a build reads."""
    digest = hashlib.sha256()
    digest.update(f"bankbot {__version__} kb format {FORMAT}\n".encode())
    for path in _code_files():
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(json.dumps(settings.build_options(), sort_keys=True).encode() + b"\0")
    dictionary = settings.dictionary_file()
    if dictionary is not None and dictionary.is_file():
        digest.update(dictionary.read_bytes() + b"\0")
    for path in source_files(kb_dir):
        digest.update(str(path.relative_to(kb_dir)).encode() + b"\0" + path.read_bytes() + b"\0")
    for text in nlu_texts or ():
        digest.update(text.encode() + b"\n")
    return digest.hexdigest()


def read_meta(build_dir: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads((build_dir / META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise KBNotBuiltError(
            f"{build_dir} holds no knowledge-base build; run 'bot kb build'"
        ) from exc
    return data


def is_current(kb_dir: Path, fingerprint: str) -> bool:
    try:
        meta = read_meta(kb_dir / BUILD_DIR)
    except KBNotBuiltError:
        return False
    return meta.get("fingerprint") == fingerprint and meta.get("format") == FORMAT


def project_nlu_texts(root: Path) -> list[str]:
    """The NLU example texts of the project at ``root`` (what ``bot train`` passes)."""
    from bot.project import Project
    from bot.training import load_nlu_files

    project = Project(root)
    return [e.text for e in load_nlu_files(project.nlu_files(), project.root).examples]


# --------------------------------------------------------------------------- analysis

_WORKER: TextAnalyzer | None = None


def _analyse_chunk(texts: list[str]) -> list[tuple[str, str, str]]:
    assert _WORKER is not None
    out = []
    for text in texts:
        a = _WORKER.analyse(text)
        out.append((a.norm, a.words, a.clean))  # tuples pickle much faster than dataclasses
    return out


def analyse_all(
    analyzer: TextAnalyzer, texts: Sequence[str], progress: Progress | None = None
) -> list[Analysed]:
    """Normalise and tokenise ``texts``; big inputs use every core (forked workers)."""
    global _WORKER
    total = len(texts)
    step = 5000
    chunks = [list(texts[i : i + step]) for i in range(0, total, step)]
    workers = min(os.cpu_count() or 1, 8)
    out: list[Analysed] = []
    forkable = "fork" in multiprocessing.get_all_start_methods()
    # forking a process with other threads running could copy a held lock: stay serial then
    if total >= 40000 and workers > 1 and forkable and threading.active_count() == 1:
        _WORKER = analyzer
        try:
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                for part in pool.imap(_analyse_chunk, chunks):
                    out.extend(Analysed(*t) for t in part)
                    if progress:
                        progress("tokenising", len(out), total)
        finally:
            _WORKER = None
        return out
    for chunk in chunks:
        out.extend(analyzer.analyse(t) for t in chunk)
        if progress:
            progress("tokenising", len(out), total)
    return out


# --------------------------------------------------------------------------- build


def calibration_split(
    offsets: np.ndarray, max_queries: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pseudo-queries for calibration: ``(held rows, their expected entry or -1, gap entries)``.

    About a fifth of the entries (with at least 3 variants) are left out of the index
    altogether ("gap entries"): their questions become queries whose right answer is absent,
    which is what a knowledge gap looks like. From the other entries about a quarter of the
    similar questions are held out as queries with a right answer.
    """
    n = offsets.size - 1
    sizes = np.diff(offsets)
    eligible = np.flatnonzero(sizes >= 3)
    n_gap = round(0.2 * eligible.size) if eligible.size >= 5 else 0
    gap = np.sort(rng.choice(eligible, n_gap, replace=False)) if n_gap else np.zeros(0, np.int64)
    is_gap = np.zeros(n, bool)
    is_gap[gap] = True
    rows: list[int] = []
    expected: list[int] = []
    for e in eligible.tolist():
        start, end = int(offsets[e]), int(offsets[e + 1])
        similar = np.arange(start + 1, end)
        take = max(1, math.ceil(0.25 * similar.size))
        picks = rng.choice(similar, take, replace=False).tolist()
        rows.extend(picks)
        expected.extend([-1 if is_gap[e] else e] * len(picks))
    held = np.asarray(rows, dtype=np.int64)
    want = np.asarray(expected, dtype=np.int64)
    if held.size > max_queries:
        keep = np.sort(rng.choice(held.size, max_queries, replace=False))
        held, want = held[keep], want[keep]
    return held, want, gap.astype(np.int64)


def build_components(
    entries: Sequence[KBEntry],
    settings: KBSettings,
    nlu_texts: Sequence[str] | None = None,
    progress: Progress | None = None,
) -> tuple[Components, dict[str, Any]]:
    """Train every part in memory; returns the parts and facts for the metadata."""
    if not entries:
        raise BotError("the knowledge base has no entries; add some under sources/")
    analyzer = TextAnalyzer.with_dictionary(settings.dictionary_file())
    variants: list[str] = []
    offsets = [0]
    for entry in entries:
        variants.extend(entry.variants())
        offsets.append(len(variants))
    entry_offsets = np.asarray(offsets, dtype=np.int64)
    variant_entry = np.repeat(
        np.arange(len(entries), dtype=np.int32), np.diff(entry_offsets)
    ).astype(np.int32)
    extra = [t for t in (nlu_texts or ()) if t.strip()]
    answer_texts = [e.answer for e in entries]
    docs = analyse_all(analyzer, [*variants, *answer_texts, *extra], progress)
    variant_docs = docs[: len(variants)]
    answer_docs = docs[len(variants) : len(variants) + len(entries)]

    embedder = make_embedder(settings.embedder, settings.root)
    embedder.fit(docs, progress)
    vectors = embedder.encode(variant_docs, progress)
    if progress:
        progress("BM25", 0, 1)
    bm25 = BM25.fit([d.words for d in variant_docs])
    answers = BM25.fit([d.words for d in answer_docs])
    if progress:
        progress("FAISS index", 0, 1)
    dense_index.set_threads(os.cpu_count() or 1)
    dense = dense_index.DenseIndex.build(
        vectors,
        settings.index,
        flat_max_vectors=settings.flat_max_vectors,
        hnsw_m=settings.hnsw_m,
        ef_construction=settings.ef_construction,
        ef_search=settings.ef_search,
        nprobe=settings.nprobe,
    )
    dense_index.set_threads(settings.search_threads)

    use_classifier = len(entries) <= settings.classifier_max_entries and len(entries) > 1
    parts = Components(
        entries=list(entries),
        entry_offsets=entry_offsets,
        variant_entry=variant_entry,
        vectors=vectors,
        analyzer=analyzer,
        embedder=embedder,
        dense=dense,
        bm25=bm25,
        answers=answers,
        classifier=None,
        calibrator=Calibrator.default(),
        settings=settings,
    )
    retriever = Retriever(parts)
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    queries = 0
    for seed in range(CALIBRATION_ROUNDS):  # fresh splits until there are enough queries
        rng = np.random.default_rng(seed)
        held, expected, gap = calibration_split(
            entry_offsets, settings.calibration_queries - queries, rng
        )
        if held.size == 0:
            break
        if progress:
            progress(f"calibration {seed + 1}", 0, int(held.size))
        fold: EntryClassifier | None = None
        if use_classifier:
            train_rows = np.ones(len(variants), bool)
            train_rows[held] = False
            train_rows[np.isin(variant_entry, gap)] = False
            keep = np.flatnonzero(train_rows)
            ok = np.flatnonzero(~np.isin(np.arange(len(entries)), gap))
            fold = EntryClassifier.fit(
                [*(variant_docs[i] for i in keep), *(answer_docs[i] for i in ok)],
                np.concatenate([variant_entry[keep], ok]),
                len(entries),
            )
        mask = np.ones(len(entries), bool)
        mask[gap] = False
        active = ActiveSet(mask, None)  # like a big KB: candidates come from the searches
        pairs = zip(held.tolist(), expected.tolist(), strict=True)
        for done, (row, want) in enumerate(pairs, 1):
            scored = retriever.score(variant_docs[row], active, exclude_row=row, classifier=fold)
            xs.append(scored.features)
            ys.append((scored.entries == want).astype(np.int64))
            if progress and (done % 200 == 0 or done == held.size):
                progress(f"calibration {seed + 1}", done, int(held.size))
        queries += int(held.size)
        if queries >= min(settings.calibration_queries, CALIBRATION_ENOUGH):
            break
    if xs:
        parts.calibrator = Calibrator.fit(np.vstack(xs), np.concatenate(ys), queries)
    if use_classifier:
        if progress:
            progress("classifier", 0, 1)
        parts.classifier = EntryClassifier.fit(
            [*variant_docs, *answer_docs],
            np.concatenate([variant_entry, np.arange(len(entries))]),
            len(entries),
        )
    facts = {
        "entries": len(entries),
        "variants": len(variants),
        "nlu_texts": len(extra),
        "index": {"kind": dense.kind, "vectors": dense.size},
        "dimensions": int(vectors.shape[1]),
        "classifier": parts.classifier is not None,
        "calibration_queries": parts.calibrator.fitted_on,
    }
    return parts, facts


def save_components(parts: Components, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    entries = [e.to_dict(with_similar=False) for e in parts.entries]
    (directory / "entries.json").write_text(
        json.dumps(entries, ensure_ascii=False), encoding="utf-8"
    )
    np.savez(
        directory / "rows.npz",
        entry_offsets=parts.entry_offsets,
        variant_entry=parts.variant_entry,
    )
    np.save(directory / "vectors.npy", parts.vectors)
    (directory / "userdict.txt").write_text(
        "".join(f"{w}\n" for w in parts.analyzer.user_words), encoding="utf-8"
    )
    save_embedder(parts.embedder, directory)
    parts.dense.save(directory)
    parts.bm25.save(directory)
    parts.answers.save(directory, "answers_bm25")
    if parts.classifier is not None:
        parts.classifier.save(directory)
    parts.calibrator.save(directory)


def load_components(directory: Path, settings: KBSettings, meta: dict[str, Any]) -> Components:
    """Load a build (search-time settings such as thresholds come from ``settings``)."""
    entries = [
        KBEntry.from_dict(d)
        for d in json.loads((directory / "entries.json").read_text(encoding="utf-8"))
    ]
    with np.load(directory / "rows.npz") as rows:
        entry_offsets = rows["entry_offsets"]
        variant_entry = rows["variant_entry"]
    words = (directory / "userdict.txt").read_text(encoding="utf-8").split()
    dense_index.set_threads(settings.search_threads)
    classifier = EntryClassifier.load(directory) if meta.get("classifier") else None
    return Components(
        entries=entries,
        entry_offsets=entry_offsets,
        variant_entry=variant_entry,
        vectors=np.load(directory / "vectors.npy"),
        analyzer=TextAnalyzer(words),
        embedder=load_embedder(directory),
        dense=dense_index.DenseIndex.load(
            directory, meta["index"], settings.ef_search, settings.nprobe
        ),
        bm25=BM25.load(directory),
        answers=BM25.load(directory, "answers_bm25"),
        classifier=classifier,
        calibrator=Calibrator.load(directory),
        settings=settings,
    )


def _swap_into_place(tmp: Path, target: Path) -> None:
    """Rename ``tmp`` to ``target``; an existing ``target`` is moved aside and removed."""
    old: Path | None = None
    if target.exists():
        old = target.with_name(f".{target.name}-old-{uuid.uuid4().hex[:8]}")
        os.rename(target, old)
    os.rename(tmp, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@contextmanager
def _build_lock(kb_dir: Path) -> Iterator[None]:
    """One build at a time per KB folder (an advisory lock on ``KB_DIR/.build.lock``)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    with (kb_dir / LOCK_FILE).open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def _progress_bar(enabled: bool) -> Iterator[Progress | None]:
    if not enabled:
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("[bold]knowledge base[/bold] {task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task("reading sources", total=None)

        def report(stage: str, done: int, total: int) -> None:
            bar.update(task, description=stage, completed=done, total=total)

        yield report


def build_knowledge_base(
    kb_dir: Path,
    config: dict[str, Any],
    nlu_texts: list[str] | None = None,
    force: bool = False,
    progress: bool = True,
    *,
    root: Path | None = None,
) -> BuildResult:
    """Build ``kb_dir/build/`` from ``kb_dir/sources/``; skipped when nothing changed.

    ``config``: the parsed config.yml (or just its ``knowledge_base`` section).
    ``nlu_texts``: NLU example texts that also train the default embedder.
    ``root``: the folder relative paths in the settings start from (default: the parent of
    ``kb_dir``, i.e. the project for ``kb_index/``).
    Raises :class:`~bot.kb.sources.KBSourceError` listing every source error.
    """
    kb_dir = Path(kb_dir)
    if not kb_dir.is_dir():
        raise BotError(f"the knowledge-base folder {kb_dir} does not exist (see --kb-dir)")
    settings = KBSettings.from_config(config, root or kb_dir.resolve().parent)
    started = time.perf_counter()
    fingerprint = source_fingerprint(kb_dir, settings, nlu_texts)
    target = kb_dir / BUILD_DIR
    if not force and is_current(kb_dir, fingerprint):
        return BuildResult(kb_dir, target, True, fingerprint)
    with _build_lock(kb_dir):
        if not force and is_current(kb_dir, fingerprint):  # built meanwhile by another process
            return BuildResult(kb_dir, target, True, fingerprint)
        return _build(kb_dir, settings, nlu_texts, fingerprint, started, progress)


def _build(
    kb_dir: Path,
    settings: KBSettings,
    nlu_texts: list[str] | None,
    fingerprint: str,
    started: float,
    progress: bool,
) -> BuildResult:
    target = kb_dir / BUILD_DIR
    sources = load_sources(kb_dir)
    sources.raise_on_errors()
    if not sources.entries:
        raise BotError(f"{kb_dir / 'sources'} has no entries; add YAML or TSV source files")
    stages: dict[str, float] = {}
    with _progress_bar(progress) as bar:
        current = {"stage": "reading sources"}
        since = [time.perf_counter()]

        def report(stage: str, done: int, total: int) -> None:
            key = re.sub(r" \d+$", "", stage.split(":")[0])  # "calibration 2" → "calibration"
            now = time.perf_counter()
            stages[current["stage"]] = stages.get(current["stage"], 0.0) + now - since[0]
            current["stage"], since[0] = key, now
            if bar:
                bar(stage, done, total)

        parts, facts = build_components(sources.entries, settings, nlu_texts, report)
        tmp = Path(tempfile.mkdtemp(prefix=".build-tmp-", dir=kb_dir))
        tmp.chmod(0o755)
        try:
            report("saving", 0, 1)
            save_components(parts, tmp)
            report("done", 0, 0)
            seconds = time.perf_counter() - started
            meta = {
                "format": FORMAT,
                "build_id": uuid.uuid4().hex,
                "fingerprint": fingerprint,
                "created": datetime.now(UTC).isoformat(timespec="seconds"),
                "seconds": round(seconds, 3),
                "bankbot": __version__,
                "embedder": settings.embedder.get("name"),
                "stage_seconds": {k: round(v, 2) for k, v in stages.items()},
                **facts,
            }
            (tmp / META_FILE).write_text(json.dumps(meta, indent=1), encoding="utf-8")
            _swap_into_place(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    warnings = [p for p in sources.problems if p.level == "warning"]
    return BuildResult(
        kb_dir,
        target,
        False,
        fingerprint,
        entries=facts["entries"],
        variants=facts["variants"],
        index_kind=facts["index"]["kind"],
        classifier=facts["classifier"],
        calibration_queries=facts["calibration_queries"],
        seconds=time.perf_counter() - started,
        warnings=warnings,
    )
