"""BM25 over jieba tokens, on scipy sparse matrices so it stays fast at 100,000s of entries.

Build time computes every document's BM25 term weight
(``tf·(k1+1)/(tf+k1·(1-b+b·dl/avgdl))``), kept row-major for exact scores of given rows and
column-major with each term's postings sorted by weight (impact order) for candidates.
Candidates are the rows holding the query's rarer terms (as many terms as fit in a posting
budget, rarest first), ranked by those terms; the best few hundred are then scored exactly
with every term. For small collections that is exact BM25.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import sparse

from bot.kb.text import split_words

MAX_POSTINGS = 50000  # a term's best postings considered as candidates


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
        by_col: sparse.csc_matrix,
        postings: sparse.csc_matrix,
        k1: float,
        b: float,
    ):
        self.vocab = vocab
        self.index = {term: i for i, term in enumerate(vocab)}
        self.idf = idf.astype(np.float32)
        self.by_row = by_col.tocsr()  # one document's weights: exact scores
        self.postings = postings  # each term's documents, highest weight first: candidates
        self.by_col = by_col
        self.df = np.diff(by_col.indptr)
        self.k1, self.b = k1, b
        self._local = threading.local()
        n = by_col.shape[0]
        self.max_idf = math.log(1.0 + (n + 0.5) / 0.5)

    @property
    def n_docs(self) -> int:
        return int(self.by_col.shape[0])

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
        by_col = weights.tocsc()
        by_col.sort_indices()
        return cls(vocab, idf, by_col, _impact_ordered(by_col), k1, b)

    def query(self, words: list[str]) -> LexicalQuery:
        unique = list(dict.fromkeys(words))
        known = [self.index[w] for w in unique if w in self.index]
        cols = np.asarray(known, dtype=np.int64)
        idf = self.idf[cols] if cols.size else np.zeros(0, np.float32)
        unknown = len(unique) - len(known)
        norm = float(idf.sum()) + unknown * self.max_idf
        return LexicalQuery(cols, idf, norm if norm > 0 else 1.0)

    def _scratch(self) -> np.ndarray:
        """A zeroed per-thread accumulator with one slot per document."""
        buffer: np.ndarray | None = getattr(self._local, "buffer", None)
        if buffer is None:
            buffer = np.zeros(self.n_docs, np.float32)
            self._local.buffer = buffer
        return buffer

    def candidates(self, q: LexicalQuery, budget: int, limit: int) -> tuple[np.ndarray, np.ndarray]:
        """Up to ``limit`` rows holding the query's rarer terms, best first by their partial
        scores over those terms.

        Terms are taken from the rarest up while their postings fit in ``budget``; the rarest
        term always counts (its best ``MAX_POSTINGS`` postings when it has more). Common terms
        left out only matter to the exact scores of :meth:`score_rows`."""
        if q.empty or limit <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        indptr, indices, data = self.postings.indptr, self.postings.indices, self.postings.data
        acc = self._scratch()
        parts: list[np.ndarray] = []
        used = 0
        for i in np.argsort(self.df[q.cols], kind="stable").tolist():
            c = int(q.cols[i])
            df = int(self.df[c])
            if parts and used + df > budget:
                break
            take = min(df, MAX_POSTINGS)
            used += take
            rows = indices[indptr[c] : indptr[c] + take]
            acc[rows] += data[indptr[c] : indptr[c] + take] * q.idf[i]  # rows unique per term
            parts.append(rows)
        touched = np.concatenate(parts)
        values = acc[touched]
        room = limit * len(parts)  # a row appears once per term it holds
        if touched.size > room:
            touched = touched[np.argpartition(-values, room - 1)[:room]]
        best = np.unique(touched)
        partial = acc[best]
        for rows in parts:
            acc[rows] = 0.0
        if best.size > limit:
            keep = np.argpartition(-partial, limit - 1)[:limit]
            best, partial = best[keep], partial[keep]
        order = np.argsort(-partial, kind="stable")
        return best[order].astype(np.int64), (partial[order] / q.norm).astype(np.float32)

    def score_rows(self, q: LexicalQuery, rows: np.ndarray) -> np.ndarray:
        """Exact normalised BM25 (score / total idf of the query terms) of ``rows``."""
        if q.empty or rows.size == 0:
            return np.zeros(rows.size, np.float32)
        indptr = self.by_row.indptr
        starts = indptr[rows]
        lengths = indptr[rows + 1] - starts
        first = np.cumsum(lengths) - lengths
        at = np.repeat(starts - first, lengths) + np.arange(int(lengths.sum()))
        lookup = self._idf_of_query()  # zero but at the query's terms: a gather, no search
        lookup[q.cols] = q.idf
        weight = lookup[self.by_row.indices[at]]
        lookup[q.cols] = 0.0
        owner = np.repeat(np.arange(rows.size), lengths)
        scores = np.bincount(owner, weights=self.by_row.data[at] * weight, minlength=rows.size)
        return (scores / q.norm).astype(np.float32)

    def _idf_of_query(self) -> np.ndarray:
        """A zeroed per-thread array with one slot per term."""
        lookup: np.ndarray | None = getattr(self._local, "lookup", None)
        if lookup is None:
            lookup = np.zeros(len(self.vocab), np.float32)
            self._local.lookup = lookup
        return lookup

    def top(
        self, q: LexicalQuery, k: int, budget: int = 10000, rescore: int = 200
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(rows, exact normalised scores)`` of about the best ``k`` rows, best first: the
        ``rescore`` best by partial score (see :meth:`candidates`) are scored exactly."""
        rows, _ = self.candidates(q, budget, max(rescore, k))
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
            data=self.by_col.data,
            indices=self.by_col.indices,
            indptr=self.by_col.indptr,
            impact_data=self.postings.data,
            impact_indices=self.postings.indices,
            shape=np.asarray(self.by_col.shape, dtype=np.int64),
        )

    @classmethod
    def load(cls, directory: Path, prefix: str = "bm25") -> BM25:
        meta = json.loads((directory / f"{prefix}_vocab.json").read_text(encoding="utf-8"))
        with np.load(directory / f"{prefix}.npz") as z:
            shape = tuple(int(s) for s in z["shape"])
            indptr = z["indptr"]
            by_col = sparse.csc_matrix((z["data"], z["indices"], indptr), shape)
            postings = sparse.csc_matrix((z["impact_data"], z["impact_indices"], indptr), shape)
            idf = z["idf"]
        return cls(list(meta["vocab"]), idf, by_col, postings, meta["k1"], meta["b"])


def _impact_ordered(csc: sparse.csc_matrix) -> sparse.csc_matrix:
    """A copy whose postings run from the highest weight down within each column."""
    cols = np.repeat(np.arange(csc.shape[1]), np.diff(csc.indptr))
    order = np.lexsort((-csc.data, cols))
    return sparse.csc_matrix((csc.data[order], csc.indices[order], csc.indptr), csc.shape)
