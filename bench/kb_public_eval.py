"""Retrieval on a public FAQ set (bench/kb_public_data.py), against BM25 and char TF-IDF baselines.

Run (from any folder; the code measured is the ``bot`` package found first on PYTHONPATH, so
``PYTHONPATH=/work/wt/kb`` measures that worktree, with that worktree's config.yml):

    PYTHONPATH=/work/main .venv/bin/python bench/kb_public_eval.py \\
        --set /work/eval_data/jining/supervised [--limit 500] [--json out.json]

``--set DIR`` holds ``sources/*.yml|tsv`` and ``queries.tsv`` (``query<TAB>topic_id``). The
sources are copied into a temporary KB folder and built with ``build_knowledge_base`` exactly as
``bot kb build --kb-dir`` does inside the project (the project's config.yml ``knowledge_base``
settings, its jieba dictionary and NLU texts; ``--bare``: default settings, no NLU texts). Then,
in the same run and on the same queries:

* ``ours``: ``KnowledgeBase.search`` (top-1, recall@5, MRR) and ``decide`` (answer / clarify /
  none; accuracy of the answered queries, right entry among the clarify buttons);
* ``bm25``: Okapi BM25 (k1 1.2, b 0.75, idf ln(1 + (N − n + .5)/(n + .5))) over jieba words
  (default jieba dictionary, precise mode) plus character 1–2-grams (``--bm25-ngrams``), one
  document per question variant (standard + similar questions), an entry scoring its best
  variant (``bm25_jieba_char12``), and one document per entry holding all its questions
  (``bm25_entry_char12``; the stronger of the two when entries have many paraphrases);
* ``char_tfidf``: nearest question variant by character 1–3-gram TF-IDF cosine
  (``bench/kb_quality.py``'s baseline).

Text is NFKC-normalised and lower-cased for both baselines. Prints a table with build/index
seconds and search latency; ``--json`` writes everything (with the misses of ``ours``).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # a shared 2-core machine: one BLAS thread

import argparse  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import unicodedata  # noqa: E402
from collections import Counter  # noqa: E402
from collections.abc import Callable, Sequence  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

if not os.environ.get("PYTHONPATH"):  # otherwise measure the code PYTHONPATH names
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import bot  # noqa: E402
from bot.kb.build import build_knowledge_base, project_nlu_texts  # noqa: E402
from bot.kb.evaluate import EvalReport, evaluate, read_eval_tsv  # noqa: E402
from bot.kb.knowledge_base import KnowledgeBase  # noqa: E402
from bot.kb.settings import KBSettings, read_config_mapping  # noqa: E402
from bot.kb.sources import SOURCE_SUFFIXES, SOURCES_DIR, KBEntry, load_sources  # noqa: E402

PROJECT = Path(bot.__file__).resolve().parents[1]  # the tree whose code is measured
_KEEP = re.compile(r"[\w]", re.UNICODE)
Search = Callable[[str, int], Sequence[str]]


def normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower()


def top_entries(ids: Sequence[str], scores: np.ndarray, top: int) -> list[str]:
    """Entry ids of the best-scoring rows, each entry once (ties: row order)."""
    out: list[str] = []
    if scores.size == 0 or not np.any(scores > 0):
        return out
    for row in np.argsort(-scores, kind="stable"):
        if scores[row] <= 0:
            break
        if ids[row] not in out:
            out.append(ids[row])
            if len(out) == top:
                break
    return out


class BM25Baseline:
    """Okapi BM25 over jieba words + character 1–2-grams of each question variant (an entry
    scores its best variant) or, ``per_entry``, of all an entry's questions as one document."""

    def __init__(
        self,
        entries: Sequence[KBEntry],
        k1: float = 1.2,
        b: float = 0.75,
        char_ngrams: tuple[int, int] = (1, 2),
        per_entry: bool = False,
    ):
        import jieba
        from scipy import sparse

        jieba.setLogLevel(60)
        self.jieba = jieba
        self.k1, self.b, self.char_ngrams = k1, b, char_ngrams
        self.ids: list[str] = []
        docs: list[list[str]] = []
        for entry in entries:
            tokenised = [self.tokens(text) for text in entry.variants()]
            if per_entry:  # one document: all the entry's questions together
                tokenised = [[t for doc in tokenised for t in doc]]
            docs += tokenised
            self.ids += [entry.id] * len(tokenised)
        self.vocab: dict[str, int] = {}
        rows, cols, vals = [], [], []
        for i, doc in enumerate(docs):
            for term, tf in Counter(doc).items():
                rows.append(i)
                cols.append(self.vocab.setdefault(term, len(self.vocab)))
                vals.append(tf)
        n_docs, n_terms = len(docs), len(self.vocab)
        tf = sparse.csr_matrix(
            (np.asarray(vals, np.float64), (rows, cols)), shape=(n_docs, n_terms)
        )
        df = np.bincount(cols, minlength=n_terms)
        self.idf = np.log1p((n_docs - df + 0.5) / (df + 0.5))
        lengths = np.asarray([len(d) for d in docs], np.float64)
        norm = k1 * (1 - b + b * lengths / max(lengths.mean(), 1e-9))
        tf = tf.tocoo()
        weights = tf.data * (k1 + 1) / (tf.data + norm[tf.row]) * self.idf[tf.col]
        # term-major so a query reads only its terms' columns
        self.matrix = sparse.csc_matrix((weights, (tf.row, tf.col)), shape=(n_docs, n_terms))

    def tokens(self, text: str) -> list[str]:
        text = normalise(text)
        words = [w for w in self.jieba.lcut(text) if _KEEP.search(w)]
        chars = [c for c in text if _KEEP.match(c)]
        lo, hi = self.char_ngrams
        grams = [
            "#" + "".join(chars[i : i + n])
            for n in range(lo, hi + 1)
            for i in range(len(chars) - n + 1)
        ]
        return words + grams

    def search(self, query: str, top: int) -> list[str]:
        counts = Counter(t for t in self.tokens(query) if t in self.vocab)
        if not counts:
            return []
        cols = [self.vocab[t] for t in counts]
        qtf = np.asarray([counts[t] for t in counts], np.float64)
        scores = np.asarray(self.matrix[:, cols] @ qtf).ravel()
        return top_entries(self.ids, scores, top)


class CharTfidfBaseline:
    """Nearest question variant by character 1-3-gram TF-IDF cosine; each entry once."""

    def __init__(self, entries: Sequence[KBEntry]):
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.ids: list[str] = []
        texts: list[str] = []
        for entry in entries:
            for text in entry.variants():
                texts.append(normalise(text))
                self.ids.append(entry.id)
        self.vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True)
        self.matrix = self.vectorizer.fit_transform(texts)

    def search(self, query: str, top: int) -> list[str]:
        vector = self.vectorizer.transform([normalise(query)])
        scores = (self.matrix @ vector.T).toarray().ravel()
        return top_entries(self.ids, scores, top)


def timed_eval(
    search: Search, pairs: Sequence[tuple[str, str]]
) -> tuple[EvalReport, dict[str, float]]:
    latencies: list[float] = []

    def wrapped(query: str, top: int) -> Sequence[str]:
        started = time.perf_counter()
        out = search(query, top)
        latencies.append((time.perf_counter() - started) * 1000)
        return out

    report = evaluate(wrapped, pairs)
    lat = np.asarray(latencies) if latencies else np.zeros(1)
    return report, {
        "p50_ms": round(float(np.percentile(lat, 50)), 3),
        "p99_ms": round(float(np.percentile(lat, 99)), 3),
    }


def figures(report: EvalReport) -> dict[str, Any]:
    return {
        "top1": round(report.top1, 4),
        "recall@5": round(report.recall_at_k, 4),
        "mrr": round(report.mrr, 4),
        "n": report.n,
    }


def decisions(kb: KnowledgeBase, pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    kinds: Counter[str] = Counter()
    answered_right = clarify_right = 0
    for query, expected in pairs:
        decision = kb.decide(query, log_gap=False)
        kinds[decision.kind] += 1
        ids = [h.id for h in decision.hits]
        if decision.kind == "answer":
            answered_right += ids[:1] == [expected]
        elif decision.kind == "clarify":
            clarify_right += expected in ids
    n = max(1, len(pairs))
    answered = kinds["answer"]
    return {
        "answer": answered,
        "clarify": kinds["clarify"],
        "none": kinds["none"],
        "answer_right": answered_right,
        "answer_accuracy": round(answered_right / answered, 4) if answered else None,
        "clarify_right_in_buttons": clarify_right,
        "answered_right_share": round(answered_right / n, 4),
        "answered_wrong_share": round((answered - answered_right) / n, 4),
    }


def code_version(path: Path) -> str:
    try:
        head = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(path), "status", "--porcelain", "bot"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return head + ("+uncommitted" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "?"


def build_ours(kb_dir: Path, bare: bool) -> tuple[KnowledgeBase, dict[str, Any]]:
    """Build ``kb_dir`` as ``bot kb build --kb-dir`` does in the project, then load it."""
    if bare:
        config: dict[str, Any] = {}
        nlu, root = None, None
    else:
        config = read_config_mapping(PROJECT / "config.yml")
        nlu, root = project_nlu_texts(PROJECT), PROJECT
    print(f"(building {kb_dir} …)", file=sys.stderr, flush=True)
    started = time.perf_counter()
    result = build_knowledge_base(kb_dir, config, nlu, force=True, progress=False, root=root)
    build_seconds = time.perf_counter() - started
    started = time.perf_counter()
    kb = KnowledgeBase.load(kb_dir, KBSettings.from_config(config, root))
    load_seconds = time.perf_counter() - started
    meta = kb.meta if isinstance(kb.meta, dict) else {}
    return kb, {
        "seconds": round(build_seconds, 2),
        "load_seconds": round(load_seconds, 2),
        "index_kind": result.index_kind,
        "classifier": result.classifier,
        "calibration_queries": result.calibration_queries,
        "stage_seconds": meta.get("stage_seconds", {}),
        "stage_cpu_seconds": meta.get("stage_cpu_seconds", {}),
    }


def run(
    set_dir: Path,
    bare: bool = False,
    limit: int | None = None,
    keep: Path | None = None,
    ours_too: bool = True,
    bm25_max_n: int = 2,
) -> dict[str, Any]:
    pairs = read_eval_tsv(set_dir / "queries.tsv")
    if limit:
        step = max(1, len(pairs) // limit)  # an even spread, deterministic
        pairs = pairs[::step][:limit]
    tmp = Path(tempfile.mkdtemp(prefix="kb_public_"))
    kb_dir = keep / f"{set_dir.parent.name}_{set_dir.name}" if keep else tmp / "kb"
    systems: dict[str, dict[str, Any]] = {}
    out: dict[str, Any] = {}
    try:
        (kb_dir / SOURCES_DIR).mkdir(parents=True, exist_ok=True)
        for path in sorted((set_dir / SOURCES_DIR).iterdir()):
            if path.suffix in SOURCE_SUFFIXES:
                shutil.copy2(path, kb_dir / SOURCES_DIR / path.name)
        sources = load_sources(kb_dir)
        sources.raise_on_errors()
        entries = sources.entries
        known = {e.id for e in entries}
        unknown = sorted({t for _, t in pairs if t not in known})
        if unknown:
            raise SystemExit(f"queries.tsv names ids not in the KB: {', '.join(unknown[:10])}")

        if ours_too:
            kb, build = build_ours(kb_dir, bare)
            ours, ours_lat = timed_eval(lambda q, k: [h.id for h in kb.search(q, k)], pairs)
            systems["ours"] = {**figures(ours), **ours_lat, "index_seconds": build["seconds"]}
            out = {"build": build, "decisions": decisions(kb, pairs), "misses": ours.misses}

        started = time.perf_counter()
        bm25 = BM25Baseline(entries, char_ngrams=(1, bm25_max_n))
        bm25_seconds = time.perf_counter() - started
        bm25_report, bm25_lat = timed_eval(bm25.search, pairs)
        systems[f"bm25_jieba_char1{bm25_max_n}"] = {
            **figures(bm25_report),
            **bm25_lat,
            "index_seconds": round(bm25_seconds, 2),
        }
        started = time.perf_counter()
        bm25e = BM25Baseline(entries, char_ngrams=(1, bm25_max_n), per_entry=True)
        bm25e_seconds = time.perf_counter() - started
        bm25e_report, bm25e_lat = timed_eval(bm25e.search, pairs)
        systems[f"bm25_entry_char1{bm25_max_n}"] = {
            **figures(bm25e_report),
            **bm25e_lat,
            "index_seconds": round(bm25e_seconds, 2),
        }
        started = time.perf_counter()
        tfidf = CharTfidfBaseline(entries)
        tfidf_seconds = time.perf_counter() - started
        tfidf_report, tfidf_lat = timed_eval(tfidf.search, pairs)
        systems["char_tfidf_nn"] = {
            **figures(tfidf_report),
            **tfidf_lat,
            "index_seconds": round(tfidf_seconds, 2),
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    return {
        "set": str(set_dir),
        "code": {"path": str(PROJECT), "version": code_version(PROJECT)},
        "settings": "defaults, no NLU texts" if bare else "project config.yml + NLU texts",
        "entries": len(entries),
        "variants": sum(len(e.variants()) for e in entries),
        "queries": len(pairs),
        "systems": systems,
        **out,
    }


def print_report(r: dict[str, Any], misses: int) -> None:
    print(f"{r['set']}: {r['entries']} entries, {r['variants']} questions, {r['queries']} queries")
    b = r.get("build")
    if b:
        print(
            f"code {r['code']['path']} @ {r['code']['version']} ({r['settings']}); build "
            f"{b['seconds']:.1f} s ({b['index_kind']} index, classifier "
            f"{'on' if b['classifier'] else 'off'}, calibrated on {b['calibration_queries']}), "
            f"load {b['load_seconds']:.2f} s"
        )
        if b["stage_seconds"]:
            cpu = b.get("stage_cpu_seconds") or {}
            stages = ", ".join(
                f"{k} {v:.1f}" + (f"/{cpu[k]:.1f}" if k in cpu else "")
                for k, v in b["stage_seconds"].items()
            )
            print(f"  stages (wall/CPU s): {stages}")
    print(
        f"  {'system':<20} {'top-1':>7} {'R@5':>7} {'MRR':>7} {'index s':>8} "
        f"{'p50 ms':>7} {'p99 ms':>7}"
    )
    for name, f in r["systems"].items():
        print(
            f"  {name:<20} {f['top1']:>7.4f} {f['recall@5']:>7.4f} {f['mrr']:>7.4f} "
            f"{f['index_seconds']:>8.2f} {f['p50_ms']:>7.2f} {f['p99_ms']:>7.2f}"
        )
    d = r.get("decisions")
    if d:
        acc = f"{d['answer_accuracy']:.4f}" if d["answer_accuracy"] is not None else "-"
        print(
            f"  decisions: answer {d['answer']} (right {d['answer_right']}, accuracy {acc}), "
            f"clarify {d['clarify']} (right entry among the buttons "
            f"{d['clarify_right_in_buttons']}), none {d['none']}"
        )
    for miss in r.get("misses", [])[:misses]:
        print(
            f"  miss: {miss['query']}  expected {miss['expected']} (rank "
            f"{miss['rank'] or '>5'}), got {', '.join(miss['got'])}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--set",
        type=Path,
        required=True,
        action="append",
        dest="sets",
        help="a folder with sources/ and queries.tsv (repeatable)",
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=None,
        help="evaluate an even spread of at most N queries (default: all)",
    )
    parser.add_argument(
        "--bare",
        action="store_true",
        help="default KB settings and no NLU texts instead of the project's",
    )
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument("--misses", type=int, default=0, help="print the first N misses")
    parser.add_argument(
        "--keep",
        type=Path,
        default=None,
        help="build into DIR/<set>_<variant>/ and keep it (default: a temp folder)",
    )
    parser.add_argument(
        "--baselines-only",
        action="store_true",
        help="skip building ours (seconds instead of minutes): BM25 and char TF-IDF only",
    )
    parser.add_argument(
        "--bm25-ngrams",
        type=int,
        choices=(1, 2, 3),
        default=2,
        help="BM25 character n-grams 1..N (default 2)",
    )
    args = parser.parse_args()
    results = []
    for set_dir in args.sets:
        if not (set_dir / "queries.tsv").is_file() or not (set_dir / SOURCES_DIR).is_dir():
            raise SystemExit(f"{set_dir}: needs sources/ and queries.tsv")
        result = run(
            set_dir,
            bare=args.bare,
            limit=args.limit,
            keep=args.keep,
            ours_too=not args.baselines_only,
            bm25_max_n=args.bm25_ngrams,
        )
        print_report(result, args.misses)
        results.append(result)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(results if len(results) > 1 else results[0], ensure_ascii=False, indent=1)
            + "\n",
            encoding="utf-8",
        )
        print(f"→ {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
