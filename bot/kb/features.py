"""Sparse TF-IDF over jieba words and character n-grams, two L2-normalised blocks side by
side. Fitting uses scikit-learn's counting; a single query is featurised with plain
dictionary look-ups (no scikit-learn call on the search path)."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse

from bot.kb.text import Analysed, char_ngrams, split_words


def _count(
    docs: Sequence[str], analyzer: Any, min_df: int, max_features: int | None
) -> tuple[sparse.csr_matrix, list[str]]:
    from sklearn.feature_extraction.text import CountVectorizer

    vectorizer = CountVectorizer(
        analyzer=analyzer, min_df=min_df, max_features=max_features, dtype=np.float32
    )
    try:
        counts = vectorizer.fit_transform(docs)
    except ValueError:  # empty vocabulary (e.g. every doc empty)
        return sparse.csr_matrix((len(docs), 0), dtype=np.float32), []
    vocab = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.__getitem__)
    return counts.tocsr(), vocab


def _tfidf_rows(counts: sparse.csr_matrix, idf: np.ndarray) -> sparse.csr_matrix:
    """Sublinear tf × idf, each row L2-normalised."""
    from sklearn.preprocessing import normalize

    out = counts.copy().astype(np.float32)
    out.data = 1.0 + np.log(out.data)
    out = out.multiply(idf[None, :]).tocsr()
    return normalize(out, norm="l2", copy=False).astype(np.float32)


class TfidfBlock:
    """One block: a vocabulary and its idf."""

    def __init__(self, vocab: list[str], idf: np.ndarray):
        self.vocab = vocab
        self.index = {term: i for i, term in enumerate(vocab)}
        self.idf = idf.astype(np.float32)
        self.unknown_idf = float(self.idf.max()) if self.idf.size else 1.0

    def __len__(self) -> int:
        return len(self.vocab)

    @classmethod
    def fit(
        cls, docs: Sequence[str], analyzer: Any, min_df: int, max_features: int | None
    ) -> tuple[TfidfBlock, sparse.csr_matrix]:
        counts, vocab = _count(docs, analyzer, min_df, max_features)
        n = counts.shape[0]
        df = np.bincount(counts.indices, minlength=len(vocab)).astype(np.float64)
        idf = np.log((1.0 + n) / (1.0 + df)) + 1.0
        block = cls(vocab, idf.astype(np.float32))
        return block, _tfidf_rows(counts, block.idf)

    def transform_counts(self, docs: Sequence[str], analyzer: Any) -> sparse.csr_matrix:
        from sklearn.feature_extraction.text import CountVectorizer

        vectorizer = CountVectorizer(analyzer=analyzer, vocabulary=self.index, dtype=np.float32)
        return _tfidf_rows(vectorizer.transform(docs).tocsr(), self.idf)

    def one(self, terms: list[str]) -> tuple[np.ndarray, np.ndarray, float]:
        """Column indices and L2-normalised weights of one document's known terms, and their
        coverage: the share of the document's squared tf-idf mass that is known (unknown
        terms count with the highest idf)."""
        all_counts = Counter(terms)
        counts = {t: c for t, c in all_counts.items() if t in self.index}
        unknown = (
            sum((1.0 + math.log(c)) ** 2 for t, c in all_counts.items() if t not in self.index)
            * self.unknown_idf**2
        )
        if not counts:
            return np.zeros(0, np.int64), np.zeros(0, np.float32), 0.0
        cols = np.fromiter((self.index[t] for t in counts), np.int64, len(counts))
        tf = np.fromiter((1.0 + math.log(c) for c in counts.values()), np.float32, len(counts))
        weights = tf * self.idf[cols]
        known = float(weights @ weights)
        norm = math.sqrt(known)
        coverage = known / (known + unknown) if known else 0.0
        return cols, (weights / norm if norm else weights), coverage

    def to_json(self) -> dict[str, Any]:
        return {"vocab": self.vocab}

    @classmethod
    def from_parts(cls, data: dict[str, Any], idf: np.ndarray) -> TfidfBlock:
        return cls(list(data["vocab"]), idf)


class _Chars:
    """Picklable character n-gram analyzer over ``Analysed.clean``."""

    def __init__(self, low: int, high: int):
        self.low, self.high = low, high

    def __call__(self, clean: str) -> list[str]:
        return list(char_ngrams(clean, self.low, self.high))


class SparseFeaturizer:
    """``[word_weight · tfidf(words), char_weight · tfidf(char n-grams)]``."""

    def __init__(
        self,
        words: TfidfBlock,
        chars: TfidfBlock,
        char_ngram: tuple[int, int] = (1, 3),
        word_weight: float = 1.0,
        char_weight: float = 1.0,
    ):
        self.words = words
        self.chars = chars
        self.char_ngram = char_ngram
        self.word_weight = word_weight
        self.char_weight = char_weight
        self._char_analyzer = _Chars(*char_ngram)

    @property
    def n_features(self) -> int:
        return len(self.words) + len(self.chars)

    @classmethod
    def fit(
        cls,
        docs: Sequence[Analysed],
        *,
        char_ngram: tuple[int, int] = (1, 3),
        word_weight: float = 1.0,
        char_weight: float = 1.0,
        min_df: int = 1,
        max_features: int | None = None,
    ) -> tuple[SparseFeaturizer, sparse.csr_matrix]:
        """Fit on ``docs`` and return the featurizer with their feature matrix."""
        words, xw = TfidfBlock.fit([d.words for d in docs], split_words, min_df, max_features)
        chars, xc = TfidfBlock.fit(
            [d.clean for d in docs], _Chars(*char_ngram), min_df, max_features
        )
        featurizer = cls(words, chars, char_ngram, word_weight, char_weight)
        return featurizer, featurizer._stack(xw, xc)

    def _stack(self, xw: sparse.csr_matrix, xc: sparse.csr_matrix) -> sparse.csr_matrix:
        return sparse.hstack(
            [xw * self.word_weight, xc * self.char_weight], format="csr", dtype=np.float32
        )

    def transform(self, docs: Sequence[Analysed]) -> sparse.csr_matrix:
        xw = self.words.transform_counts([d.words for d in docs], split_words)
        xc = self.chars.transform_counts([d.clean for d in docs], self._char_analyzer)
        return self._stack(xw, xc)

    def one(self, doc: Analysed) -> tuple[np.ndarray, np.ndarray, float]:
        """Sparse features of one document: ``(columns, weights, coverage)``; coverage in
        [0, 1] says how much of the text the vocabulary knows (0 for unknown text)."""
        wc, ww, w_cov = self.words.one(split_words(doc.words))
        cc, cw, c_cov = self.chars.one(self._char_analyzer(doc.clean))
        cols = np.concatenate([wc, cc + len(self.words)])
        weights = np.concatenate([ww * self.word_weight, cw * self.char_weight])
        mass_w = self.word_weight**2 if doc.words else 0.0
        mass_c = self.char_weight**2 if doc.clean else 0.0
        total = mass_w + mass_c
        coverage = (mass_w * w_cov + mass_c * c_cov) / total if total else 0.0
        return cols, weights.astype(np.float32), coverage

    def save(self, directory: Path, prefix: str) -> None:
        meta = {
            "words": self.words.to_json(),
            "chars": self.chars.to_json(),
            "char_ngram": list(self.char_ngram),
            "word_weight": self.word_weight,
            "char_weight": self.char_weight,
        }
        (directory / f"{prefix}_vocab.json").write_text(
            json.dumps(meta, ensure_ascii=False), encoding="utf-8"
        )
        np.savez(directory / f"{prefix}_idf.npz", words=self.words.idf, chars=self.chars.idf)

    @classmethod
    def load(cls, directory: Path, prefix: str) -> SparseFeaturizer:
        meta = json.loads((directory / f"{prefix}_vocab.json").read_text(encoding="utf-8"))
        with np.load(directory / f"{prefix}_idf.npz") as idf:
            words = TfidfBlock.from_parts(meta["words"], idf["words"])
            chars = TfidfBlock.from_parts(meta["chars"], idf["chars"])
        low, high = meta["char_ngram"]
        return cls(words, chars, (int(low), int(high)), meta["word_weight"], meta["char_weight"])
