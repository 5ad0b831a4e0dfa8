"""BM25 on sparse matrices agrees with a plain implementation."""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import pytest

from bot.kb.lexical import BM25

WORDS = [
    "借书",
    "续借",
    "罚款",
    "图书馆",
    "开门",
    "周末",
    "无线网",
    "密码",
    "读者证",
    "丢失",
    "赔偿",
    "怎么",
    "吗",
    "的",
]


def corpus(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choices(WORDS, k=rng.randint(2, 7))) for _ in range(n)]


def plain_bm25(
    docs: list[list[str]], query: list[str], k1: float = 1.2, b: float = 0.75
) -> list[float]:
    n = len(docs)
    avgdl = sum(map(len, docs)) / n
    scores = []
    for doc in docs:
        score = 0.0
        for term in dict.fromkeys(query):
            df = sum(term in d for d in docs)
            if not df:
                continue
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
            tf = doc.count(term)
            score += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * len(doc) / avgdl))
        scores.append(score)
    return scores


def test_scores_match_plain_bm25() -> None:
    texts = corpus(120)
    bm25 = BM25.fit(texts)
    query = ["借书", "罚款", "怎么", "未知词"]
    q = bm25.query(query)
    expected = np.asarray(plain_bm25([t.split() for t in texts], query)) / q.norm
    got = bm25.score_rows(q, np.arange(len(texts)))
    assert np.allclose(got, expected, atol=1e-5)
    rows, scores = bm25.top(q, 5)
    assert list(rows) == list(np.argsort(-expected, kind="stable")[:5]) or np.allclose(
        scores, np.sort(expected)[::-1][:5], atol=1e-5
    )


def test_unknown_words_lower_the_normalised_score() -> None:
    bm25 = BM25.fit(corpus(50))
    known = bm25.query(["借书"])
    mixed = bm25.query(["借书", "股票", "基金"])
    rows = np.arange(50)
    assert bm25.score_rows(mixed, rows).max() < bm25.score_rows(known, rows).max()
    assert bm25.query(["股票"]).empty
    assert bm25.top(bm25.query([]), 5)[0].size == 0


def test_budget_keeps_rare_terms(tmp_path: Path) -> None:
    texts = [*corpus(2000), "稀有词 借书"]
    bm25 = BM25.fit(texts)
    rows, _ = bm25.top(bm25.query(["稀有词", "借书", "的"]), 3, budget=10)
    assert rows[0] == 2000
    bm25.save(tmp_path, "x")
    again = BM25.load(tmp_path, "x")
    rows = np.arange(100)
    before = bm25.score_rows(bm25.query(["借书", "罚款"]), rows)
    assert np.allclose(again.score_rows(again.query(["借书", "罚款"]), rows), before)


@pytest.mark.parametrize("rows", [np.zeros(0, np.int64), np.asarray([0, 0, 3])])
def test_score_rows_edge_cases(rows: np.ndarray) -> None:
    bm25 = BM25.fit(corpus(10))
    assert bm25.score_rows(bm25.query(["借书"]), rows).shape == rows.shape
