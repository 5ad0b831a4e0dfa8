"""A low-rank softmax classifier over the sparse TF-IDF features (fastText-style): every
feature has a learned :data:`DIMENSIONS`-dimensional embedding, a text is the weighted sum of
its features' embeddings, and a softmax layer over it gives each entry's probability.

The shared embeddings let words and character n-grams that occur in the same entries'
paraphrases stand in for one another, which the per-entry linear weights of the perceptron
(:mod:`bot.kb.classifier`) cannot do; the two models err on different queries, so the entry
classifier adds this one's probability to its score. Trained by mini-batch SGD on
cross-entropy with a linearly decaying rate (seeded, so a build is deterministic); should a
step overflow (a rate too high for some data), training starts again at half the rate. An
incremental build starts from the previous model and runs :data:`WARM_EPOCHS` epochs over the
changed entries' rows and a sample of the others.

Rate and epochs were chosen on a split of the Jining set's training paraphrases (20 % of the
similar questions held out; stand-alone top-1 there): 4 epochs at 0.15 gave 0.921, 8 at 0.15
0.941, 16 at 0.15 0.947, 6 at 0.3 0.948, 8 at 0.4 0.950 (and 0.4 overflowed on the full
rows), 0.8 overflowed. The model was under-trained: 6 epochs at 0.3 is kept (a fit is ≈ 3 s
of CPU at 1,000 entries × 15,000 questions).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import sparse

DIMENSIONS = 128
EPOCHS = 6
WARM_EPOCHS = 4  # over the rows of changed entries and a sample of the others
RATE = 0.3  # per training row: the step is RATE × the sum of the batch's gradients
RETRIES = 4  # restarts at half the rate after an overflow
# An incremental build continues a trained model on a small sample (the changed entries'
# rows and a few hundred others): at the full rate those few rows pull the shared embeddings
# their way (Jining, one entry changed: the low-rank model alone fell from 0.956 to 0.942 on
# the real questions, the fused retriever to 0.890); a tenth of it keeps 0.956.
WARM_RATE = 0.03
BATCH = 256
INIT_SCALE = 1.0  # embeddings start as N(0, 1/DIMENSIONS) × this
FILE = "lowrank.npz"


def _normalise_rows(x: sparse.csr_matrix) -> sparse.csr_matrix:
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    out: sparse.csr_matrix = sparse.diags((1.0 / norms).astype(np.float32)) @ x
    return out.tocsr().astype(np.float32)


def _softmax_rows(z: np.ndarray) -> np.ndarray:
    """Row-wise softmax, computed in place in ``z`` (which is returned)."""
    z -= z.max(axis=-1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=-1, keepdims=True)
    return z


class LowRankSoftmax:
    """``embeddings`` (features × d), ``out`` (d × classes) and ``bias`` (classes,)."""

    def __init__(self, embeddings: np.ndarray, out: np.ndarray, bias: np.ndarray):
        self.embeddings = embeddings.astype(np.float32)
        self.out = out.astype(np.float32)
        self.bias = bias.astype(np.float32)

    @property
    def n_classes(self) -> int:
        return int(self.out.shape[1])

    @classmethod
    def fit(
        cls,
        x: sparse.csr_matrix,
        column: np.ndarray,
        n_classes: int,
        *,
        epochs: int = EPOCHS,
        start: LowRankSoftmax | None = None,
        seed: int = 0,
        rate: float | None = None,
    ) -> LowRankSoftmax:
        """Train on the rows of ``x`` (L2-normalised here) labelled ``column`` (class
        numbers < ``n_classes``). ``start``: a model with the same features and classes to
        continue from (an incremental build). ``rate``: the starting rate (default
        :data:`RATE`)."""
        x = _normalise_rows(x.tocsr())
        rate = RATE if rate is None else rate
        for _ in range(RETRIES):
            model = cls._sgd(x, column, n_classes, epochs, start, seed, rate)
            if model is not None:
                return model
            rate /= 2
        zeros = np.zeros((x.shape[1], DIMENSIONS), np.float32)  # never seen: a uniform model
        return cls(zeros, np.zeros((DIMENSIONS, n_classes), np.float32), np.zeros(n_classes))

    @classmethod
    def _sgd(
        cls,
        x: sparse.csr_matrix,
        column: np.ndarray,
        n_classes: int,
        epochs: int,
        start: LowRankSoftmax | None,
        seed: int,
        base_rate: float,
    ) -> LowRankSoftmax | None:
        """One training run; None when a step overflowed."""
        rng = np.random.default_rng(seed)
        n, n_features = x.shape
        if start is None:
            e = rng.standard_normal((n_features, DIMENSIONS), dtype=np.float32)
            e *= np.float32(INIT_SCALE / np.sqrt(DIMENSIONS))
            w = np.zeros((DIMENSIONS, n_classes), np.float32)
            b = np.zeros(n_classes, np.float32)
        else:
            e, w, b = start.embeddings.copy(), start.out.copy(), start.bias.copy()
        steps = max(1, epochs * -(-n // BATCH))
        step = 0
        seen = np.zeros(n_features, bool)  # scratch: the batch's features
        local_of = np.zeros(n_features, np.int32)  # scratch: their numbers in the batch
        for _ in range(epochs):
            order = rng.permutation(n)
            shuffled = x[order]  # one gather per epoch; batches are then contiguous slices
            labels = column[order]
            for begin in range(0, n, BATCH):
                stop = min(n, begin + BATCH)
                rate = np.float32(base_rate * (1.0 - step / steps))
                step += 1
                xb = shuffled[begin:stop]
                # the batch's features only: a compact copy with renumbered columns (a mark
                # per feature instead of sorting the batch's column indices)
                seen[xb.indices] = True
                used = np.flatnonzero(seen)
                seen[used] = False
                local_of[used] = np.arange(used.size, dtype=np.int32)
                xs = sparse.csr_matrix(
                    (xb.data, local_of[xb.indices], xb.indptr), shape=(stop - begin, used.size)
                )
                with np.errstate(over="ignore", invalid="ignore"):
                    h = xs @ e[used]
                    g = _softmax_rows(h @ w + b)
                    if not np.isfinite(g).all():
                        return None
                    g[np.arange(stop - begin), labels[begin:stop]] -= 1.0
                    gh = g @ w.T
                    w -= rate * (h.T @ g)
                    b -= rate * g.sum(axis=0)
                    e[used] -= rate * (xs.T @ gh)
        if not (np.isfinite(e).all() and np.isfinite(w).all() and np.isfinite(b).all()):
            return None
        return cls(e, w, b)

    def warm_start(self, kept: np.ndarray, n_classes: int) -> LowRankSoftmax:
        """The same embeddings for a new set of classes: class ``c`` keeps old class
        ``kept[c]``'s output weights (≥ 0) or starts at zero (-1)."""
        w = np.zeros((self.out.shape[0], n_classes), np.float32)
        b = np.zeros(n_classes, np.float32)
        old = np.flatnonzero(kept >= 0)
        w[:, old] = self.out[:, kept[old]]
        b[old] = self.bias[kept[old]]
        return LowRankSoftmax(self.embeddings, w, b)

    def probabilities(self, cols: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Each class's probability for one text given by its feature columns and
        (L2-normalised) weights."""
        h = values @ self.embeddings[cols]
        out: np.ndarray = _softmax_rows(h @ self.out + self.bias)
        return out

    def save(self, directory: Path) -> None:
        np.savez(directory / FILE, embeddings=self.embeddings, out=self.out, bias=self.bias)

    @classmethod
    def load(cls, directory: Path) -> LowRankSoftmax | None:
        path = directory / FILE
        if not path.is_file():
            return None
        with np.load(path) as z:
            return cls(z["embeddings"], z["out"], z["bias"])
