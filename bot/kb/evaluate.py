"""Retrieval quality on labelled queries: top-1, recall@k, MRR and the misses; a plain BM25
baseline to compare with; and the reliability of the answer decisions (predicted vs actual
accuracy of the top score)."""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bot.errors import BotError
from bot.kb.calibration import reliability
from bot.kb.lexical import BM25
from bot.kb.sources import KBEntry
from bot.kb.text import TextAnalyzer, char_ngrams

Search = Callable[[str, int], Sequence[str]]  # (query, top) → entry ids, best first


class EvalFileError(BotError):
    """The evaluation TSV is malformed."""


@dataclass(frozen=True)
class EvalReport:
    n: int
    top1: float
    recall_at_k: float
    mrr: float
    k: int = 5
    misses: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "top1": round(self.top1, 4),
            f"recall@{self.k}": round(self.recall_at_k, 4),
            "mrr": round(self.mrr, 4),
            "misses": self.misses,
        }


def read_eval_tsv(path: Path) -> list[tuple[str, str]]:
    """``(query, topic_id)`` rows of a TSV with the header ``query, topic_id``."""
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise EvalFileError(f"{path}: cannot read: {exc}") from exc
    rows = list(csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE))
    header = [h.strip().lower() for h in rows[0]] if rows else []
    if "query" not in header or "topic_id" not in header:
        raise EvalFileError(f"{path}:1: the header must be 'query<TAB>topic_id'")
    q, t = header.index("query"), header.index("topic_id")
    pairs = []
    problems = []
    for number, row in enumerate(rows[1:], 2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) <= max(q, t) or not row[q].strip() or not row[t].strip():
            problems.append(f"{path}:{number}: needs a query and a topic_id separated by a tab")
            continue
        pairs.append((row[q].strip(), row[t].strip()))
    if problems:
        raise EvalFileError("\n".join(problems))
    return pairs


def evaluate(search: Search, pairs: Sequence[tuple[str, str]], k: int = 5) -> EvalReport:
    hits1 = 0
    hitsk = 0
    rr = 0.0
    misses = []
    for query, expected in pairs:
        ranked = list(search(query, k))
        rank = ranked.index(expected) + 1 if expected in ranked else 0
        hits1 += rank == 1
        hitsk += rank > 0
        rr += 1.0 / rank if rank else 0.0
        if rank != 1:
            misses.append(
                {"query": query, "expected": expected, "rank": rank or None, "got": ranked[:3]}
            )
    n = len(pairs)
    if n == 0:
        return EvalReport(0, 0.0, 0.0, 0.0, k)
    return EvalReport(n, hits1 / n, hitsk / n, rr / n, k, misses)


class BM25Baseline:
    """The baseline ``bot kb eval`` prints: BM25 (k1 1.2, b 0.75) over every question variant,
    tokens = jieba words (search mode, no synonyms, no user dictionary) + character 1-2-grams;
    an entry scores as its best variant. No answers, no categories, no training."""

    def __init__(self, entries: Sequence[KBEntry]):
        self.analyzer = TextAnalyzer()
        self.ids = [e.id for e in entries]
        rows: list[str] = []
        owner: list[int] = []
        for number, entry in enumerate(entries):
            for text in entry.variants():
                rows.append(self.tokens(text))
                owner.append(number)
        self.owner = np.asarray(owner, np.int64)
        self.bm25 = BM25.fit(rows)

    def tokens(self, text: str) -> str:
        doc = self.analyzer.analyse(text)
        return " ".join([*doc.word_list(), *char_ngrams(doc.clean, 1, 2)])

    def search(self, query: str, top: int) -> list[str]:
        q = self.bm25.query(self.tokens(query).split(" "))
        if q.empty:
            return []
        scores = self.bm25.score_rows(q, np.arange(self.bm25.n_docs))
        best = np.full(len(self.ids), -1.0, np.float32)
        np.maximum.at(best, self.owner, scores)
        order = np.argsort(-best, kind="stable")[:top]
        return [self.ids[i] for i in order.tolist() if best[i] > 0]


def decision_reliability(
    top_scores: Sequence[float], correct: Sequence[bool], bins: int = 10
) -> dict[str, Any]:
    """Reliability of the top score on labelled queries: per score bin, the mean score
    (predicted accuracy) against the share of queries whose top entry was right, and ECE."""
    return reliability(np.asarray(top_scores, np.float64), np.asarray(correct, np.float64), bins)
