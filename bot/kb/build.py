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
from bot.kb.calibration import Calibrator, paraphrase_share
from bot.kb.classifier import EntryClassifier
from bot.kb.embeddings import Embedder, load_embedder, make_embedder, save_embedder
from bot.kb.lexical import BM25
from bot.kb.retriever import ActiveSet, Components, Retriever
from bot.kb.settings import KBSettings
from bot.kb.sources import KBEntry, load_sources, source_files
from bot.kb.synonyms import load_synonyms, synonym_files
from bot.kb.text import Analysed, TextAnalyzer
from bot.training.data import Problem

BUILD_DIR = "build"
META_FILE = "meta.json"
LOCK_FILE = ".build.lock"
CACHE_DIR = ".cache"
SYNONYMS_FILE = "synonyms.json"
KEYS_FILE = "entry_keys.json"
FORMAT = 2
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


def basis_fingerprint(
    kb_dir: Path, settings: KBSettings, nlu_texts: Sequence[str] | None = None
) -> str:
    """A hash of everything a build reads except the entries: code, settings, dictionaries,
    synonyms and NLU text. Builds with the same basis may share an embedder."""
    digest = hashlib.sha256()
    digest.update(f"bankbot {__version__} kb format {FORMAT}\n".encode())
    for path in _code_files():
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(json.dumps(settings.build_options(), sort_keys=True).encode() + b"\0")
    dictionary = settings.dictionary_file()
    if dictionary is not None and dictionary.is_file():
        digest.update(dictionary.read_bytes() + b"\0")
    for path in synonym_files(kb_dir):
        digest.update(path.read_bytes() + b"\0")
    for text in nlu_texts or ():
        digest.update(text.encode() + b"\n")
    return digest.hexdigest()


def source_fingerprint(
    kb_dir: Path, settings: KBSettings, nlu_texts: Sequence[str] | None = None
) -> str:
    """A hash of everything a build reads."""
    digest = hashlib.sha256(basis_fingerprint(kb_dir, settings, nlu_texts).encode())
    for path in source_files(kb_dir):
        digest.update(str(path.relative_to(kb_dir)).encode() + b"\0" + path.read_bytes() + b"\0")
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


def cpu_seconds() -> float:
    """CPU time of this process (all its threads) and of its finished child processes (the
    forked tokenising workers): on a shared machine it measures a stage's cost where wall
    time measures the load."""
    t = os.times()
    return time.process_time() + t.children_user + t.children_system


# --------------------------------------------------------------------------- analysis

_WORKER: TextAnalyzer | None = None


def _analyse_chunk(texts: list[str]) -> list[tuple[str, str, str]]:
    assert _WORKER is not None
    out = []
    for text in texts:
        a = _WORKER.analyse(text)
        out.append((a.norm, a.words, a.clean))  # tuples pickle much faster than dataclasses
    return out


class AnalysisCache:
    """Analysed texts of earlier builds, keyed by the text and the analyzer's
    :meth:`~bot.kb.text.TextAnalyzer.key` (``KB_DIR/.cache/analysis.json``)."""

    def __init__(self, path: Path | None, key: str):
        self.path = path
        self.key = key
        self.items: dict[str, tuple[str, str, str]] = {}
        if path is not None and path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                data = {}
            if isinstance(data, dict) and data.get("key") == key and data.get("format") == FORMAT:
                self.items = {k: (v[0], v[1], v[2]) for k, v in data.get("items", {}).items()}
        self.used: dict[str, tuple[str, str, str]] = {}

    def get(self, text: str) -> Analysed | None:
        hit = self.items.get(text)
        if hit is None:
            return None
        self.used[text] = hit
        return Analysed(*hit)

    def put(self, text: str, doc: Analysed) -> None:
        self.used[text] = (doc.norm, doc.words, doc.clean)

    def save(self) -> None:
        """Keep the texts of this build only (written atomically)."""
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}-{uuid.uuid4().hex[:8]}")
        data = {"format": FORMAT, "key": self.key, "items": self.used}
        tmp.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, self.path)


def analyse_all(
    analyzer: TextAnalyzer,
    texts: Sequence[str],
    progress: Progress | None = None,
    cache: AnalysisCache | None = None,
) -> list[Analysed]:
    """Normalise and tokenise ``texts``; big inputs use every core (forked workers). Texts
    in ``cache`` are taken from it; the others are analysed and added to it."""
    if cache is not None:
        found = [cache.get(t) for t in texts]
        missing = [t for t, d in zip(texts, found, strict=True) if d is None]
        fresh = iter(analyse_all(analyzer, missing, progress) if missing else [])
        out_all: list[Analysed] = []
        for text, doc in zip(texts, found, strict=True):
            if doc is None:
                doc = next(fresh)
                cache.put(text, doc)
            out_all.append(doc)
        if progress:
            progress("tokenising", len(texts), len(texts))
        return out_all
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


@dataclass(frozen=True)
class CalibrationQueries:
    """Pseudo-queries of one calibration split: ``rows`` (a variant row used as the query,
    excluded from the search when ``exclude``), ``expected`` entry (or -1: its entry is a
    gap), the ``gap`` entries left out, and ``words`` to drop (perturbed standard questions
    of entries without paraphrases; empty otherwise)."""

    rows: np.ndarray
    expected: np.ndarray
    exclude: np.ndarray
    gap: np.ndarray
    drop: list[tuple[int, ...]]

    @property
    def size(self) -> int:
        return int(self.rows.size)


def calibration_split(
    offsets: np.ndarray,
    max_queries: int,
    rng: np.random.Generator,
    word_counts: np.ndarray | None = None,
) -> CalibrationQueries:
    """Pseudo-queries for calibration.

    About a fifth of the entries are left out of the index altogether ("gap entries"): their
    questions become queries whose right answer is absent, which is what a knowledge gap looks
    like. From entries with at least two similar questions about a quarter of the similar
    questions are held out as queries (their rows excluded from the search). An entry with
    fewer has no real paraphrase to hold out, so its standard question stands in with about
    40 % of its words dropped (when it has at least 3 words, ``word_counts``; its row stays
    in the index): a customer asking the same thing in fewer words. That approximates real
    wording only roughly (such queries are easier than real ones: calibration on a KB without
    paraphrases is optimistic, and the reliability report names the kind of queries it rests
    on). Holding the standard question out instead was tried and dropped: with no question
    left to match, the answer text looked decisive and fusion leaned on it (top-1 on the
    public zero-shot sets fell below plain BM25).
    """
    n = offsets.size - 1
    sizes = np.diff(offsets)
    n_gap = round(0.2 * n) if n >= 5 else 0
    gap = np.sort(rng.choice(n, n_gap, replace=False)) if n_gap else np.zeros(0, np.int64)
    is_gap = np.zeros(n, bool)
    is_gap[gap] = True
    rows: list[int] = []
    expected: list[int] = []
    exclude: list[bool] = []
    drop: list[tuple[int, ...]] = []
    for e in range(n):
        start, end = int(offsets[e]), int(offsets[e + 1])
        want = -1 if is_gap[e] else e
        if sizes[e] >= 3:
            similar = np.arange(start + 1, end)
            take = max(1, math.ceil(0.25 * similar.size))
            picks = rng.choice(similar, take, replace=False).tolist()
            rows.extend(picks)
            expected.extend([want] * len(picks))
            exclude.extend([True] * len(picks))
            drop.extend([()] * len(picks))
            continue
        words = int(word_counts[start]) if word_counts is not None else 0
        if words >= 3:
            k = max(1, round(0.4 * words))
            rows.append(start)
            expected.append(want)
            exclude.append(False)
            drop.append(tuple(sorted(rng.choice(words, k, replace=False).tolist())))
    held = np.asarray(rows, dtype=np.int64)
    out = CalibrationQueries(
        held,
        np.asarray(expected, np.int64),
        np.asarray(exclude, bool),
        gap.astype(np.int64),
        drop,
    )
    if held.size > max_queries:
        keep = np.sort(rng.choice(held.size, max_queries, replace=False))
        out = CalibrationQueries(
            out.rows[keep],
            out.expected[keep],
            out.exclude[keep],
            out.gap,
            [drop[i] for i in keep.tolist()],
        )
    return out


def _dropped(doc: Analysed, positions: tuple[int, ...], analyzer: TextAnalyzer) -> Analysed:
    """``doc``'s text without the words at ``positions`` (of its non-overlapping words)."""
    words = analyzer.plain_words(doc.norm)
    kept = "".join(w for i, w in enumerate(words) if i not in positions)
    return analyzer.analyse(kept)


def entry_key(entry: KBEntry) -> str:
    """A hash of what the build reads from one entry."""
    data = json.dumps(entry.to_dict(), ensure_ascii=False, sort_keys=True)
    return hashlib.sha1(data.encode()).hexdigest()[:20]


def document_text(entry: KBEntry) -> str:
    """What the answer-side evidence indexes: the category, then the answer."""
    return f"{entry.category}\n{entry.answer}"


@dataclass
class Reuse:
    """A previous build whose embedder and calibrator may be kept when few entries changed."""

    parts: Components
    meta: dict[str, Any]
    keys: set[str]
    ordered_keys: tuple[str, ...] = ()  # the keys in the previous build's entry order


REUSE_MAX_CHANGED = 0.02  # share of entries that may change for an incremental build
INDEX_STALE_MAX = 0.02  # share of an approximate index's rows that may hold older vectors


def _reusable_index(
    previous: Reuse, vectors: np.ndarray, settings: KBSettings
) -> tuple[dense_index.DenseIndex | None, int]:
    """An incremental build's approximate (HNSW / IVF) index: the previous one, kept when the
    rows line up (same number of question variants per entry, same order; the embedder is
    the same) and at most :data:`INDEX_STALE_MAX` of its rows hold an older vector (counted
    over the builds since it was made, ``meta["index"]["stale_rows"]``). Building HNSW is
    most of a one-entry rebuild; a stale row only affects which candidates the dense search
    proposes (the changed entry's new wording is still found by BM25 and the classifier,
    and every candidate is scored with its current vector). Flat indices are rebuilt (that
    costs nothing). Returns the index and its stale rows, or ``(None, 0)``."""
    old = previous.parts
    kind = dense_index.choose_kind(settings.index, vectors.shape[0], settings.flat_max_vectors)
    if kind == "flat" or old.dense.kind != kind or old.vectors.shape != vectors.shape:
        return None, 0
    changed = int(np.count_nonzero(np.any(old.vectors != vectors, axis=1)))
    before = previous.meta.get("index", {}).get("stale_rows", 0)
    stale = changed + (before if isinstance(before, int) else 0)
    if stale > INDEX_STALE_MAX * vectors.shape[0]:
        return None, 0
    return old.dense, stale


def build_components(
    entries: Sequence[KBEntry],
    settings: KBSettings,
    nlu_texts: Sequence[str] | None = None,
    progress: Progress | None = None,
    *,
    synonyms: dict[str, str] | None = None,
    cache: AnalysisCache | None = None,
    previous: Reuse | None = None,
) -> tuple[Components, dict[str, Any]]:
    """Train every part in memory; returns the parts and facts for the metadata.

    ``cache``: analysed texts of earlier builds (tokenising is then done for new text only).
    ``previous``: an earlier build with the same settings, NLU text and code; when at most
    :data:`REUSE_MAX_CHANGED` of the entries differ from it, its embedder and calibrator are
    kept (an incremental build), otherwise everything is fitted afresh.
    """
    if not entries:
        raise BotError("the knowledge base has no entries; add some under sources/")
    analyzer = TextAnalyzer.with_dictionary(settings.dictionary_file(), synonyms)
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
    answer_texts = [document_text(e) for e in entries]
    docs = analyse_all(analyzer, [*variants, *answer_texts, *extra], progress, cache)
    variant_docs = docs[: len(variants)]
    answer_docs = docs[len(variants) : len(variants) + len(entries)]
    keys = [entry_key(e) for e in entries]
    changed = len(entries)
    if previous is not None:
        now = set(keys)  # a changed entry is one new key and one gone
        changed = max(len(now - previous.keys), len(previous.keys - now))
    incremental = previous is not None and changed <= max(1, REUSE_MAX_CHANGED * len(entries))

    embedder: Embedder
    if incremental and previous is not None:
        embedder = previous.parts.embedder
    else:
        embedder = make_embedder(settings.embedder, settings.root)
        embedder.fit(docs, progress)
    vectors = embedder.encode(variant_docs, progress)
    if progress:
        progress("BM25", 0, 1)
    bm25 = BM25.fit([" ".join(d.lexical_terms()) for d in variant_docs])
    answers = BM25.fit([d.words for d in answer_docs])
    if progress:
        progress("FAISS index", 0, 1)
    kept, stale = (
        _reusable_index(previous, vectors, settings)
        if incremental and previous is not None
        else (None, 0)
    )
    if kept is not None:
        dense = kept
    else:
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
        share=paraphrase_share(np.diff(entry_offsets) - 1),
    )
    if incremental and previous is not None:
        parts.calibrator = previous.parts.calibrator
    else:
        parts.calibrator = _calibrate(parts, variant_docs, answer_docs, use_classifier, progress)
    if use_classifier:
        if progress:
            progress("classifier", 0, 1)
        warm = None
        if (
            incremental
            and previous is not None
            and previous.parts.classifier is not None
            and len(previous.ordered_keys) == previous.parts.classifier.n_entries
        ):
            number = {k: i for i, k in enumerate(previous.ordered_keys)}
            warm = (
                previous.parts.classifier,
                np.asarray([number.get(k, -1) for k in keys], np.int64),
            )
        parts.classifier = EntryClassifier.fit(variant_docs, variant_entry, len(entries), warm=warm)
    facts = {
        "entries": len(entries),
        "variants": len(variants),
        "nlu_texts": len(extra),
        "index": {"kind": dense.kind, "vectors": dense.size, "stale_rows": stale},
        "dimensions": int(vectors.shape[1]),
        "classifier": parts.classifier is not None,
        "calibration_queries": parts.calibrator.fitted_on,
        "calibration": parts.calibrator.report,
        "synonyms": len(analyzer.synonyms),
        "incremental": (
            {"changed_entries": changed, "from_build": previous.meta.get("build_id")}
            if incremental and previous is not None
            else None
        ),
        "entry_keys": keys,
    }
    return parts, facts


def _calibrate(
    parts: Components,
    variant_docs: Sequence[Analysed],
    answer_docs: Sequence[Analysed],
    use_classifier: bool,
    progress: Progress | None,
) -> Calibrator:
    """Fit the calibrator on pseudo-queries from the KB itself (see :func:`calibration_split`)."""
    settings = parts.settings
    entries = parts.entries
    offsets = parts.entry_offsets
    variant_entry = parts.variant_entry
    retriever = Retriever(parts)
    word_counts = np.asarray(
        [
            len(parts.analyzer.plain_words(d.norm)) if n < 3 else 0
            for d, n in zip(variant_docs, np.diff(offsets)[variant_entry], strict=True)
        ],
        np.int64,
    )
    xs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    kinds: set[str] = set()
    queries = 0
    for seed in range(CALIBRATION_ROUNDS):  # fresh splits until there are enough queries
        rng = np.random.default_rng(seed)
        split = calibration_split(offsets, settings.calibration_queries - queries, rng, word_counts)
        if split.size == 0:
            break
        if progress:
            progress(f"calibration {seed + 1}", 0, split.size)
        fold: EntryClassifier | None = None
        if use_classifier:
            train_rows = np.ones(len(variant_docs), bool)
            train_rows[split.rows[split.exclude]] = False
            train_rows[np.isin(variant_entry, split.gap)] = False
            keep = np.flatnonzero(train_rows)
            fold = EntryClassifier.fit(
                [variant_docs[i] for i in keep.tolist()], variant_entry[keep], len(entries)
            )
        mask = np.ones(len(entries), bool)
        mask[split.gap] = False
        active = ActiveSet(mask, None)  # like a big KB: candidates come from the searches
        for done in range(1, split.size + 1):
            i = done - 1
            row = int(split.rows[i])
            query = variant_docs[row]
            if split.drop[i]:
                query = _dropped(query, split.drop[i], parts.analyzer)
                kinds.add("shortened standard questions")
            else:
                kinds.add("held-out similar questions")
            scored = retriever.score(
                query, active, exclude_row=row if split.exclude[i] else -1, classifier=fold
            )
            xs.append(scored.features)
            ys.append((scored.entries == split.expected[i]).astype(np.int64))
            if progress and (done % 200 == 0 or done == split.size):
                progress(f"calibration {seed + 1}", done, split.size)
        queries += split.size
        if queries >= min(settings.calibration_queries, CALIBRATION_ENOUGH):
            break
    if not xs:
        return Calibrator.default()
    return Calibrator.fit_checked(xs, ys, ", ".join(sorted(kinds)))


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
    np.save(directory / "share.npy", parts.share)
    (directory / "userdict.txt").write_text(
        "".join(f"{w}\n" for w in parts.analyzer.user_words), encoding="utf-8"
    )
    (directory / SYNONYMS_FILE).write_text(
        json.dumps(parts.analyzer.synonyms, ensure_ascii=False), encoding="utf-8"
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
    synonyms = json.loads((directory / SYNONYMS_FILE).read_text(encoding="utf-8"))
    share = np.load(directory / "share.npy")
    dense_index.set_threads(settings.search_threads)
    classifier = EntryClassifier.load(directory) if meta.get("classifier") else None
    return Components(
        entries=entries,
        entry_offsets=entry_offsets,
        variant_entry=variant_entry,
        vectors=np.load(directory / "vectors.npy"),
        analyzer=TextAnalyzer(words, synonyms),
        embedder=load_embedder(directory),
        dense=dense_index.DenseIndex.load(
            directory, meta["index"], settings.ef_search, settings.nprobe
        ),
        bm25=BM25.load(directory),
        answers=BM25.load(directory, "answers_bm25"),
        classifier=classifier,
        calibrator=Calibrator.load(directory),
        settings=settings,
        share=share,
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
        return _build(kb_dir, settings, nlu_texts, fingerprint, started, progress, force)


def _previous(target: Path, settings: KBSettings, basis: str) -> Reuse | None:
    """The current build when it has the same basis (code, settings, NLU text, synonyms)."""
    try:
        meta = read_meta(target)
        if meta.get("format") != FORMAT or meta.get("basis") != basis:
            return None
        keys = json.loads((target / KEYS_FILE).read_text(encoding="utf-8"))
        return Reuse(load_components(target, settings, meta), meta, set(keys), tuple(keys))
    except (KBNotBuiltError, OSError, ValueError, KeyError):
        return None


def _build(
    kb_dir: Path,
    settings: KBSettings,
    nlu_texts: list[str] | None,
    fingerprint: str,
    started: float,
    progress: bool,
    force: bool = False,
) -> BuildResult:
    target = kb_dir / BUILD_DIR
    basis = basis_fingerprint(kb_dir, settings, nlu_texts)
    sources = load_sources(kb_dir)
    sources.raise_on_errors()
    if not sources.entries:
        raise BotError(f"{kb_dir / 'sources'} has no entries; add YAML or TSV source files")
    stages: dict[str, float] = {}
    cpu_stages: dict[str, float] = {}
    with _progress_bar(progress) as bar:
        current = {"stage": "reading sources"}
        since = [time.perf_counter(), cpu_seconds()]

        def report(stage: str, done: int, total: int) -> None:
            key = re.sub(r" \d+$", "", stage.split(":")[0])  # "calibration 2" → "calibration"
            now, cpu = time.perf_counter(), cpu_seconds()
            stages[current["stage"]] = stages.get(current["stage"], 0.0) + now - since[0]
            cpu_stages[current["stage"]] = cpu_stages.get(current["stage"], 0.0) + cpu - since[1]
            current["stage"], since[0], since[1] = key, now, cpu
            if bar:
                bar(stage, done, total)

        synonyms = load_synonyms(kb_dir)
        analyzer_key = TextAnalyzer.with_dictionary(settings.dictionary_file(), synonyms).key()
        cache = AnalysisCache(kb_dir / CACHE_DIR / "analysis.json", analyzer_key)
        previous = None if force else _previous(target, settings, basis)
        parts, facts = build_components(
            sources.entries,
            settings,
            nlu_texts,
            report,
            synonyms=synonyms,
            cache=cache,
            previous=previous,
        )
        keys = facts.pop("entry_keys")
        tmp = Path(tempfile.mkdtemp(prefix=".build-tmp-", dir=kb_dir))
        tmp.chmod(0o755)
        try:
            report("saving", 0, 1)
            save_components(parts, tmp)
            (tmp / KEYS_FILE).write_text(json.dumps(keys), encoding="utf-8")
            cache.save()
            report("done", 0, 0)
            seconds = time.perf_counter() - started
            meta = {
                "format": FORMAT,
                "build_id": uuid.uuid4().hex,
                "fingerprint": fingerprint,
                "basis": basis,
                "created": datetime.now(UTC).isoformat(timespec="seconds"),
                "seconds": round(seconds, 3),
                "bankbot": __version__,
                "embedder": settings.embedder.get("name"),
                "stage_seconds": {k: round(v, 2) for k, v in stages.items()},
                "stage_cpu_seconds": {k: round(v, 2) for k, v in cpu_stages.items()},
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
