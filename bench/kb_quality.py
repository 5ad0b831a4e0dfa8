"""Knowledge-base retrieval quality, against a plain character TF-IDF nearest-neighbour baseline.

Run: ``.venv/bin/python bench/kb_quality.py`` from the project root.

1. Shipped KB (kb_index/) on the held-out paraphrases of tests/data/kb_eval.tsv: top-1,
   recall@5, MRR; also the decisions (answer / clarify / none) on those queries and on the NLU
   out_of_scope examples.
2. Generalisation: bench/data/generalisation_kb.yml, another domain this retriever was never
   tuned on. For each of ``--splits`` random splits, half of every entry's similar questions
   are indexed and the other half are the queries. Ours and the baseline run on the same split.
3. Zero-shot on the shipped KB: built from kb_index/sources with only question, answer and
   category (no similar questions), queried with every similar question.
4. Public sets (``--public DIR``, default /work/eval_data when present; evaluation only, never
   committed): every ``DIR/<set>/<variant>/`` with ``sources/`` and ``queries.tsv``.

Every section also reports the BM25 baseline of ``bot kb eval`` (bot.kb.evaluate.BM25Baseline:
jieba words + character 1-2-grams over the questions) on the same queries, and, for 3 and 4,
the reliability of the top score on the real queries (ECE) next to the build's own estimate.

Prints a table and writes ``results/bench_kb_quality.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.kb.build import build_knowledge_base, project_nlu_texts  # noqa: E402
from bot.kb.evaluate import (  # noqa: E402
    BM25Baseline,
    EvalReport,
    decision_reliability,
    evaluate,
    read_eval_tsv,
)
from bot.kb.knowledge_base import KnowledgeBase  # noqa: E402
from bot.kb.settings import KBSettings, read_config_mapping  # noqa: E402
from bot.kb.sources import KBEntry, dump_yaml_entries, load_sources, read_yaml_source  # noqa: E402
from bot.project import Project  # noqa: E402
from bot.training import load_nlu_files  # noqa: E402

GENERALISATION_KB = ROOT / "bench" / "data" / "generalisation_kb.yml"


class CharTfidfBaseline:
    """Nearest question variant by character 1-3-gram TF-IDF cosine; each entry once."""

    def __init__(self, entries: Sequence[KBEntry]):
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.ids: list[str] = []
        texts: list[str] = []
        for entry in entries:
            for text in entry.variants():
                texts.append(text)
                self.ids.append(entry.id)
        self.vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(1, 3), sublinear_tf=True)
        self.matrix = self.vectorizer.fit_transform(texts)

    def search(self, query: str, top: int) -> list[str]:
        scores = (self.matrix @ self.vectorizer.transform([query]).T).toarray().ravel()
        out: list[str] = []
        for row in np.argsort(-scores, kind="stable"):
            if self.ids[row] not in out:
                out.append(self.ids[row])
                if len(out) == top:
                    break
        return out


def build_kb(
    folder: Path,
    entries: Sequence[KBEntry],
    config: dict[str, Any],
    nlu: list[str] | None,
    root: Path | None = None,
) -> KnowledgeBase:
    (folder / "sources").mkdir(parents=True)
    (folder / "sources" / "kb.yml").write_text(dump_yaml_entries(entries), encoding="utf-8")
    build_knowledge_base(folder, config, nlu, force=True, progress=False, root=root)
    return KnowledgeBase.load(folder, KBSettings.from_config(config, root))


def figures(report: EvalReport) -> dict[str, Any]:
    return {
        "top1": round(report.top1, 4),
        "recall@5": round(report.recall_at_k, 4),
        "mrr": round(report.mrr, 4),
        "n": report.n,
    }


def shipped(tmp: Path) -> dict[str, Any]:
    config = read_config_mapping(ROOT / "config.yml")
    entries = load_sources(ROOT / "kb_index").entries
    kb = build_kb(tmp / "shipped", entries, config, project_nlu_texts(ROOT), ROOT)
    pairs = read_eval_tsv(ROOT / "tests" / "data" / "kb_eval.tsv")
    ours = evaluate(lambda q, k: [h.id for h in kb.search(q, k)], pairs)
    base = evaluate(CharTfidfBaseline(entries).search, pairs)
    bm25 = evaluate(BM25Baseline(entries).search, pairs)
    in_domain = Counter(kb.decide(q, log_gap=False).kind for q, _ in pairs)
    project = Project(ROOT)
    oos = [
        e.text
        for e in load_nlu_files(project.nlu_files(), ROOT).examples
        if e.intent == "out_of_scope"
    ]
    out_of_scope = Counter(kb.decide(q, log_gap=False).kind for q in oos)
    return {
        "ours": figures(ours),
        "baseline_char_tfidf": figures(base),
        "baseline_bm25": figures(bm25),
        "misses": ours.misses,
        "decisions_on_eval": dict(in_domain),
        "decisions_on_nlu_out_of_scope": dict(out_of_scope),
    }


def generalisation(tmp: Path, splits: int) -> dict[str, Any]:
    source = read_yaml_source(GENERALISATION_KB)
    if source.errors:
        raise SystemExit(f"{GENERALISATION_KB} has errors: {source.errors[0]}")
    runs: list[dict[str, Any]] = []
    for seed in range(splits):
        rng = np.random.default_rng(seed)
        indexed: list[KBEntry] = []
        pairs: list[tuple[str, str]] = []
        for entry in source.entries:
            similar = list(entry.similar_questions)
            order = rng.permutation(len(similar))
            half = len(similar) // 2
            kept = tuple(similar[i] for i in order[:half])
            indexed.append(replace(entry, similar_questions=kept))
            pairs += [(similar[i], entry.id) for i in order[half:]]
        kb = build_kb(tmp / f"general{seed}", indexed, {}, None)

        def search(query: str, top: int, kb: KnowledgeBase = kb) -> list[str]:
            return [h.id for h in kb.search(query, top)]

        ours = evaluate(search, pairs)
        base = evaluate(CharTfidfBaseline(indexed).search, pairs)
        runs.append({"seed": seed, "ours": figures(ours), "baseline_char_tfidf": figures(base)})

    def mean(system: str, key: str) -> float:
        return round(statistics.fmean(r[system][key] for r in runs), 4)

    return {
        "entries": len(source.entries),
        "queries_per_split": runs[0]["ours"]["n"],
        "splits": runs,
        "mean": {
            system: {key: mean(system, key) for key in ("top1", "recall@5", "mrr")}
            for system in ("ours", "baseline_char_tfidf")
        },
    }


def scored_run(
    kb: KnowledgeBase, entries: Sequence[KBEntry], pairs: list[tuple[str, str]]
) -> dict[str, Any]:
    """Ours and the BM25 baseline on ``pairs``, decisions, and reliability on real queries."""
    found = {q: kb.search(q, 5) for q in dict.fromkeys(q for q, _ in pairs)}
    ours = evaluate(lambda q, k: [h.id for h in found[q][:k]], pairs)
    base = evaluate(BM25Baseline(entries).search, pairs)
    decisions: Counter[str] = Counter()
    right = 0
    for query, topic in pairs:
        decision = kb.decide(query, log_gap=False)
        decisions[decision.kind] += 1
        right += decision.kind == "answer" and decision.hits[0].id == topic
    rel = decision_reliability(
        [found[q][0].score if found[q] else 0.0 for q, _ in pairs],
        [bool(found[q]) and found[q][0].id == t for q, t in pairs],
    )
    return {
        "entries": len(kb.entries),
        "ours": figures(ours),
        "baseline_bm25": figures(base),
        "decisions": dict(decisions),
        "answers_right": right,
        "ece_real_queries": rel["ece"],
        "reliability_real_queries": rel,
        "build_calibration": kb.meta.get("calibration"),
        "build_seconds": kb.meta.get("seconds"),
    }


def zero_shot_shipped(tmp: Path) -> dict[str, Any]:
    config = read_config_mapping(ROOT / "config.yml")
    entries = load_sources(ROOT / "kb_index").entries
    bare = [replace(e, similar_questions=()) for e in entries]
    kb = build_kb(tmp / "zero", bare, config, project_nlu_texts(ROOT), ROOT)
    pairs = [(q, e.id) for e in entries for q in e.similar_questions]
    return scored_run(kb, bare, pairs)


def public_sets(tmp: Path, folder: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for queries in sorted(folder.glob("*/*/queries.tsv")):
        name = f"{queries.parent.parent.name}/{queries.parent.name}"
        entries = load_sources(queries.parent).entries
        kb = build_kb(tmp / name.replace("/", "_"), entries, {}, None)
        out[name] = scored_run(kb, entries, read_eval_tsv(queries))
        print(
            f"  {name}: {out[name]['ours']} vs BM25 {out[name]['baseline_bm25']}", file=sys.stderr
        )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--splits", type=int, default=3, help="generalisation splits (default 3)")
    parser.add_argument(
        "--public",
        type=Path,
        default=Path("/work/eval_data"),
        help="folder of public sets (<set>/<variant>/sources + queries.tsv)",
    )
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="kb_quality_"))
    try:
        results: dict[str, Any] = {"shipped": shipped(tmp)}
        if GENERALISATION_KB.is_file():
            results["generalisation"] = generalisation(tmp, args.splits)
        else:
            print(f"(no {GENERALISATION_KB}: generalisation check skipped)", file=sys.stderr)
        results["zero_shot_shipped"] = zero_shot_shipped(tmp)
        if args.public.is_dir():
            results["public"] = public_sets(tmp, args.public)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    s = results["shipped"]
    print("Shipped KB, held-out paraphrases (tests/data/kb_eval.tsv)")
    for name in ("ours", "baseline_char_tfidf"):
        f = s[name]
        print(
            f"  {name:<22} top1 {f['top1']:.4f}  recall@5 {f['recall@5']:.4f}  "
            f"mrr {f['mrr']:.4f}  (n={f['n']})"
        )
    print(f"  decisions on the eval queries: {s['decisions_on_eval']}")
    print(f"  decisions on NLU out_of_scope: {s['decisions_on_nlu_out_of_scope']}")
    if "generalisation" in results:
        g = results["generalisation"]
        print(
            f"Generalisation KB ({g['entries']} entries, half of each entry's similar "
            f"questions held out, {g['queries_per_split']} queries × {len(g['splits'])} splits)"
        )
        for name, f in g["mean"].items():
            print(
                f"  {name:<22} top1 {f['top1']:.4f}  recall@5 {f['recall@5']:.4f}  "
                f"mrr {f['mrr']:.4f}"
            )
    rows = {"shipped KB, no similar questions": results["zero_shot_shipped"]}
    rows.update({f"public {k}": v for k, v in results.get("public", {}).items()})
    print("Ours vs BM25 (words + char 1-2-grams); ECE of the top score on the real queries")
    for name, r in rows.items():
        print(
            f"  {name:<32} top1 {r['ours']['top1']:.4f} (BM25 {r['baseline_bm25']['top1']:.4f})"
            f"  recall@5 {r['ours']['recall@5']:.4f} (BM25 "
            f"{r['baseline_bm25']['recall@5']:.4f})  ECE {r['ece_real_queries']:.3f}"
            f" (build's estimate {(r['build_calibration'] or {}).get('ece', '-')})"
            f"  decisions {r['decisions']}, right answers {r['answers_right']}"
        )
    out = ROOT / "results" / "bench_kb_quality.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"→ {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
