"""BM25 over jieba tokens, on scipy sparse matrices so it stays fast at 100,000s of entries.

Build time stores every document's BM25 term weight (``tf·(k1+1)/(tf+k1·(1-b+b·dl/avgdl))``)
twice, column-major: postings sorted by row (exact scores of given rows by binary search)
and sorted by weight (impact order). Candidates are the rows holding the query's rarer terms
(as many terms as fit in a posting budget, rarest first), ranked by those terms, and the best
few hundred are scored exactly with every term; for small collections that is exact BM25.
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
        self.by_col = by_col  # row ids sorted within each column: exact look-ups
        self.postings = postings  # same entries, highest weight first: candidates
        self.df = np.diff(by_col.indptr)
        self.k1, self.b = k1, b
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

    def candidates(self, q: LexicalQuery, budget: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows holding the query's rarer terms, with partial scores over those terms.

        Terms are taken from the rarest up while their postings fit in ``budget``; the rarest
        term always counts (its best ``MAX_POSTINGS`` postings when it has more). Common terms
        left out only matter to the exact scores of :meth:`score_rows`."""
        if q.empty:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        indptr, indices, data = self.postings.indptr, self.postings.indices, self.postings.data
        rows: list[np.ndarray] = []
        weights: list[np.ndarray] = []
        used = 0
        for i in np.argsort(self.df[q.cols], kind="stable").tolist():
            c = int(q.cols[i])
            df = int(self.df[c])
            if rows and used + df > budget:
                break
            take = min(df, MAX_POSTINGS)
            used += take
            rows.append(indices[indptr[c] : indptr[c] + take])
            weights.append(data[indptr[c] : indptr[c] + take] * q.idf[i])
        unique, inverse = np.unique(np.concatenate(rows), return_inverse=True)
        partial = np.bincount(inverse, weights=np.concatenate(weights), minlength=unique.size)
        return unique.astype(np.int64), (partial / q.norm).astype(np.float32)

    def score_rows(self, q: LexicalQuery, rows: np.ndarray) -> np.ndarray:
        """Exact normalised BM25 (score / total idf of the query terms) of ``rows``."""
        scores = np.zeros(rows.size, np.float64)
        if q.empty or rows.size == 0:
            return scores.astype(np.float32)
        indptr, indices, data = self.by_col.indptr, self.by_col.indices, self.by_col.data
        for c, idf in zip(q.cols.tolist(), q.idf.tolist(), strict=True):
            start, end = int(indptr[c]), int(indptr[c + 1])
            column = indices[start:end]
            at = np.searchsorted(column, rows)
            at_ok = np.minimum(at, end - start - 1)
            found = column[at_ok] == rows
            scores += np.where(found, data[start + at_ok], 0.0) * idf
        return (scores / q.norm).astype(np.float32)

    def top(
        self, q: LexicalQuery, k: int, budget: int = 20000, rescore: int = 200
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(rows, exact normalised scores)`` of about the best ``k`` rows, best first: the
        ``rescore`` best by partial score (see :meth:`candidates`) are scored exactly."""
        rows, partial = self.candidates(q, budget)
        if rows.size > rescore:
            rows = rows[np.argpartition(-partial, rescore - 1)[:rescore]]
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
