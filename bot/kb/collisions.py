"""Near-duplicate questions across entries: character n-gram TF-IDF cosine ≥ a threshold.

An exact similarity join on sparse vectors (all pairs above the threshold, no sampling), fast
for 10,000 entries × 15 paraphrases. Texts are folded as for retrieval (``normalise_text``:
full-width, Traditional, case) and reduced to letters and digits; each one becomes an
L2-normalised TF-IDF vector of character 1–3-grams (sublinear tf).

Pruning (prefix filtering, exact): the features of a vector ``x`` are split into the common
ones ``s(x)`` (highest document frequency first, while ``‖s(x)‖ < threshold``) and the rest
``p(x)``. Since ``cos(x, y) = p(x)·y + s(x)·y ≤ p(x)·y + ‖s(x)‖``, every pair with
``cos ≥ threshold`` has ``p(x)·y ≥ threshold − ‖s(x)‖ > 0``. The candidates are therefore the
non-zeros of the sparse product ``P @ Xᵀ`` (computed in row blocks) that pass this bound, and
only they are scored exactly. Common characters (怎么, 吗, 的) never produce candidates alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
from scipy import sparse

from bot.kb.sources import question_key
from bot.kb.text import normalise_text

_MARGIN = 0.2  # ‖s(x)‖ stays below threshold − margin, so candidates need a real overlap
_EPS = 1e-5  # float32 rounding


@dataclass(frozen=True)
class NearPair:
    """Texts ``i < j`` (indexes into the input) of different owners and their cosine."""

    i: int
    j: int
    score: float


def fold(text: str) -> str:
    """The form compared: normalised, letters and digits only."""
    return question_key(normalise_text(text))


def near_duplicates(
    texts: Sequence[str],
    owners: Sequence[int],
    threshold: float = 0.9,
    block_rows: int = 4096,
    folded: Sequence[str] | None = None,
) -> list[NearPair]:
    """Every pair of texts with different ``owners`` whose cosine is ≥ ``threshold``.

    Texts that fold to the same string are left out (that is a duplicate, reported
    elsewhere), as are pairs of the same owner. ``folded``: :func:`fold` of each text, when
    the caller has it already.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer

    if not 0.0 < threshold <= 1.0:
        raise ValueError("threshold must be in (0, 1]")
    folded = list(folded) if folded is not None else [fold(t) for t in texts]
    if len(folded) < 2 or not any(folded):
        return []
    vectorizer = TfidfVectorizer(
        analyzer="char",
        ngram_range=(1, 3),
        sublinear_tf=True,
        lowercase=False,
        dtype=np.float32,
    )
    x = vectorizer.fit_transform(folded).tocsr()
    x.sort_indices()
    n = x.shape[0]
    owner = np.asarray(owners, dtype=np.int64)
    prefix, suffix_norm = _split_common(x, threshold)
    prefix_norm = np.sqrt(np.maximum(1.0 - suffix_norm**2, 1e-12)).astype(np.float32)
    loose = (threshold - suffix_norm - _EPS).astype(np.float32)
    suffix_norm = suffix_norm.astype(np.float32)
    keys = np.array(folded, dtype=object)
    out: list[NearPair] = []
    for start in range(0, n, block_rows):
        stop = min(n, start + block_rows)
        # only columns ≥ start can pair with these rows (i < j)
        cand = (prefix[start:stop] @ x[start:].T).tocoo()
        rows = cand.row
        keep = cand.data >= loose[rows + start]  # cos ≤ p·y + ‖s‖
        rows = rows[keep].astype(np.int64) + start
        cols = cand.col[keep].astype(np.int64) + start
        dots = cand.data[keep]
        keep = (cols > rows) & (owner[rows] != owner[cols])
        rows, cols, dots = rows[keep], cols[keep], dots[keep]
        # tighter: ‖y on p's features‖ ≥ p·y / ‖p‖, so s·y ≤ ‖s‖·√(1 − (p·y / ‖p‖)²)
        spare = np.sqrt(np.maximum(0.0, 1.0 - (dots / prefix_norm[rows]) ** 2))
        keep = dots + suffix_norm[rows] * spare >= threshold - _EPS
        rows, cols = rows[keep], cols[keep]
        if not rows.size:
            continue
        exact = _exact_dots(x, rows, cols)
        hit = exact >= threshold - _EPS
        rows, cols, exact = rows[hit], cols[hit], exact[hit]
        same = keys[rows] == keys[cols]
        for i, j, score in zip(rows[~same], cols[~same], exact[~same], strict=True):
            out.append(NearPair(int(i), int(j), min(1.0, float(score))))
    return out


def _exact_dots(
    x: sparse.csr_matrix, rows: np.ndarray, cols: np.ndarray, group: int = 64
) -> np.ndarray:
    """``x[rows[k]] · x[cols[k]]`` for every k (``rows`` ascending). Consecutive rows (the
    paraphrases of one entry) share most candidates, so each group of ``group`` rows is
    multiplied once with the union of its candidate columns."""
    out = np.empty(rows.size, dtype=np.float32)
    edges = np.searchsorted(rows, np.arange(rows[0], rows[-1] + group + 1, group))
    for lo, hi in pairwise(edges.tolist()):
        if lo == hi:
            continue
        first = rows[lo]
        union, where = np.unique(cols[lo:hi], return_inverse=True)
        block = (x[union] @ x[first : rows[hi - 1] + 1].T.tocsc()).toarray()
        out[lo:hi] = block[where.ravel(), rows[lo:hi] - first]
    return out


def _split_common(x: sparse.csr_matrix, threshold: float) -> tuple[sparse.csr_matrix, np.ndarray]:
    """``P`` (each row without its most common features) and ``‖s(x)‖`` per row."""
    n = x.shape[0]
    df = np.bincount(x.indices, minlength=x.shape[1])
    rows = np.repeat(np.arange(n), np.diff(x.indptr))
    order = np.lexsort((-df[x.indices], rows))  # by row, then most common first
    cols = x.indices[order]
    data = x.data[order].astype(np.float64)
    rows = rows[order]
    squares = data * data
    running = np.cumsum(squares)
    before_row = np.concatenate(([0.0], running))[x.indptr[:-1]]
    within = running - before_row[rows]  # inclusive running sum of squares inside the row
    limit = max(0.0, threshold - _MARGIN) ** 2
    common = within < limit
    suffix_norm = np.sqrt(np.bincount(rows[common], weights=squares[common], minlength=n))
    rare = ~common
    prefix = sparse.csr_matrix(
        (data[rare].astype(np.float32), (rows[rare], cols[rare])), shape=x.shape
    )
    return prefix, suffix_norm
