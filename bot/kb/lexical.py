"""BM25 over jieba tokens, on scipy sparse matrices so it stays fast at 100,000s of entries.

Build time stores every document's BM25 term weight (``tf·(k1+1)/(tf+k1·(1-b+b·dl/avgdl))``)
twice: row-major for exact scoring of candidate rows, and column-major with each term's
postings sorted by weight (impact order). A query takes at most ``budget / terms`` top
postings per term as candidates, then scores those rows exactly; for small collections this
is the exact BM25 top list.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import sparse

from bot.kb.text import split_words



@dataclass(frozen=True)
class LexicalQuery:
    """A query's known terms (column ids), their idf, and the normaliser of its scores."""

    cols: np.ndarray
    idf: np.ndarray
    norm: float

    @property
    def empty(self) -> bool:
        return self.cols.size == 0


class BM25:
    def __init__(
        self,
        vocab: list[str],
        idf: np.ndarray,
        by_row: sparse.csr_matrix,
        postings: sparse.csc_matrix,
        k1: float,
        b: float,
    ):
        self.vocab = vocab
        self.index = {term: i for i, term in enumerate(vocab)}
        self.idf = idf.astype(np.float32)
        self.by_row = by_row
        self.postings = postings
        self.k1, self.b = k1, b
        n = by_row.shape[0]
        self.max_idf = math.log(1.0 + (n + 0.5) / 0.5)

    @property
    def n_docs(self) -> int:
        return int(self.by_row.shape[0])

    @classmethod
    def fit(cls, docs: Sequence[str], k1: float = 1.2, b: float = 0.75) -> BM25:
        """``docs``: space-joined tokens, one string per document."""
        from sklearn.feature_extraction.text import CountVectorizer

        vectorizer = CountVectorizer(analyzer=split_words, dtype=np.float32)
        try:
            counts = vectorizer.fit_transform(docs).tocsr()
            vocab = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.__getitem__)
        except ValueError:
            counts = sparse.csr_matrix((len(docs), 0), dtype=np.float32)
            vocab = []
        n = counts.shape[0]
        lengths = np.asarray(counts.sum(axis=1)).ravel()
        avgdl = float(lengths.mean()) if n else 1.0
        df = np.bincount(counts.indices, minlength=len(vocab)).astype(np.float64)
        idf = np.log(1.0 + (n - df + 0.5) / (df + 0.5)).astype(np.float32)
        tf = counts.data
        row_len = np.repeat(lengths, np.diff(counts.indptr))
        denom = tf + k1 * (1.0 - b + b * row_len / max(avgdl, 1e-9))
        weights = counts.copy()
        weights.data = (tf * (k1 + 1.0) / denom).astype(np.float32)
        return cls(vocab, idf, weights, _impact_ordered(weights), k1, b)

    def query(self, words: list[str]) -> LexicalQuery:
        unique = list(dict.fromkeys(words))
        known = [self.index[w] for w in unique if w in self.index]
        cols = np.asarray(known, dtype=np.int64)
        idf = self.idf[cols] if cols.size else np.zeros(0, np.float32)
        unknown = len(unique) - len(known)
        norm = float(idf.sum()) + unknown * self.max_idf
        return LexicalQuery(cols, idf, norm if norm > 0 else 1.0)

    def candidates(self, q: LexicalQuery, budget: int) -> np.ndarray:
        """Row ids holding the highest-weight postings of the query's terms (sorted)."""
        if q.empty:
            return np.zeros(0, np.int64)
        per_term = max(1, budget // q.cols.size)
        indptr, indices = self.postings.indptr, self.postings.indices
        parts = [indices[indptr[c] : min(indptr[c + 1], indptr[c] + per_term)] for c in q.cols]
        return np.unique(np.concatenate(parts)).astype(np.int64)

    def score_rows(self, q: LexicalQuery, rows: np.ndarray) -> np.ndarray:
        """Normalised BM25 (score / sum of the query terms' idf) of ``rows``."""
        if q.empty or rows.size == 0:
            return np.zeros(rows.size, np.float32)
        qvec = sparse.csr_matrix(
            (q.idf, (q.cols, np.zeros(q.cols.size, np.int64))), shape=(len(self.vocab), 1)
        )
        scores = (self.by_row[rows] @ qvec).toarray().ravel()
        return (scores / q.norm).astype(np.float32)

    def top(self, q: LexicalQuery, k: int, budget: int = 4000) -> tuple[np.ndarray, np.ndarray]:
        """``(rows, normalised scores)`` of the best ``k`` rows, best first."""
        rows = self.candidates(q, budget)
        scores = self.score_rows(q, rows)
        if rows.size > k:
            keep = np.argpartition(-scores, k - 1)[:k]
            rows, scores = rows[keep], scores[keep]
        order = np.argsort(-scores, kind="stable")
        return rows[order], scores[order]

    def save(self, directory: Path, prefix: str = "bm25") -> None:
        (directory / f"{prefix}_vocab.json").write_text(
            json.dumps({"vocab": self.vocab, "k1": self.k1, "b": self.b}, ensure_ascii=False),
            encoding="utf-8",
        )
        np.savez(
            directory / f"{prefix}.npz",
            idf=self.idf,
            row_data=self.by_row.data, row_indices=self.by_row.indices,
            row_indptr=self.by_row.indptr,
            col_data=self.postings.data, col_indices=self.postings.indices,
            col_indptr=self.postings.indptr,
            shape=np.asarray(self.by_row.shape, dtype=np.int64),
        )

    @classmethod
    def load(cls, directory: Path, prefix: str = "bm25") -> BM25:
        meta = json.loads((directory / f"{prefix}_vocab.json").read_text(encoding="utf-8"))
        with np.load(directory / f"{prefix}.npz") as z:
            shape = tuple(int(s) for s in z["shape"])
            by_row = sparse.csr_matrix((z["row_data"], z["row_indices"], z["row_indptr"]), shape)
            postings = sparse.csc_matrix((z["col_data"], z["col_indices"], z["col_indptr"]), shape)
            idf = z["idf"]
        return cls(list(meta["vocab"]), idf, by_row, postings, meta["k1"], meta["b"])


def _impact_ordered(weights: sparse.csr_matrix) -> sparse.csc_matrix:
    """Column-major copy whose postings run from the highest weight down."""
    csc = weights.tocsc()
    cols = np.repeat(np.arange(csc.shape[1]), np.diff(csc.indptr))
    order = np.lexsort((-csc.data, cols))
    return sparse.csc_matrix((csc.data[order], csc.indices[order], csc.indptr), csc.shape)
