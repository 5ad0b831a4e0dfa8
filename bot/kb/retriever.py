"""Hybrid retrieval: dense (FAISS) + lexical (BM25 over question variants and over answers) +
entry classifier, fused per entry into one calibrated score, and the bot's decision
(answer / clarify / none).

Candidates come from the dense top variants, the BM25 top variants, the best-matching answers
and the classifier's top entries; each candidate entry then gets exact scores (its best
variant's cosine and BM25, its answer's BM25, its classifier probability), which the
calibrator turns into a probability in [0, 1]. Every entry appears once.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from bot.kb.calibration import FEATURES, Calibrator, feature_matrix
from bot.kb.classifier import EntryClassifier
from bot.kb.embeddings import Embedder
from bot.kb.index import DenseIndex
from bot.kb.lexical import BM25
from bot.kb.settings import KBSettings, Thresholds
from bot.kb.sources import KBEntry
from bot.kb.text import Analysed, TextAnalyzer

DecisionKind = Literal["answer", "clarify", "none"]
FEW_ACTIVE = 200  # with at most this many active entries, all of them are candidates
MAX_DENSE_K = 4096


@dataclass(frozen=True)
class ActiveSet:
    """The entries a search may return (channel and validity already applied)."""

    mask: np.ndarray
    few: np.ndarray | None  # their numbers, when there are at most FEW_ACTIVE

    @classmethod
    def of(cls, mask: np.ndarray) -> ActiveSet:
        count = int(np.count_nonzero(mask))
        return cls(mask, np.flatnonzero(mask) if count <= FEW_ACTIVE else None)


@dataclass(frozen=True)
class Hit:
    entry: KBEntry
    score: float

    @property
    def id(self) -> str:
        return self.entry.id

    @property
    def question(self) -> str:
        return self.entry.question

    @property
    def answer(self) -> str:
        return self.entry.answer

    @property
    def category(self) -> str:
        return self.entry.category

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "question": self.question,
            "answer": self.answer,
            "category": self.category,
            "score": round(self.score, 4),
        }


@dataclass(frozen=True)
class Decision:
    """``answer``: ``hits[0]`` answers; ``clarify``: ask (``utter_faq_clarify``) with ``hits`` as
    buttons; ``none``: nothing relevant (``hits`` empty; ``candidates`` kept for the gap log)."""

    kind: DecisionKind
    hits: list[Hit]
    candidates: list[Hit] = field(default_factory=list)

    def buttons(self) -> list[dict[str, str]]:
        """Buttons for a clarifying question, in the ``/faq{"topic": …}`` payload form."""
        return [
            {"title": h.question, "payload": "/faq" + json.dumps({"topic": h.id})}
            for h in self.hits
        ]


def decide(hits: list[Hit], thresholds: Thresholds) -> Decision:
    if not hits or hits[0].score < thresholds.clarify:
        return Decision("none", [], hits)
    top = hits[0].score
    second = hits[1].score if len(hits) > 1 else 0.0
    if top >= thresholds.answer and top - second >= thresholds.margin:
        return Decision("answer", hits[:1], hits)
    close = [h for h in hits[1 : thresholds.max_clarify] if h.score >= thresholds.candidate]
    return Decision("clarify", [hits[0], *close], hits)


@dataclass
class Components:
    """Everything a search reads; immutable once built or loaded."""

    entries: list[KBEntry]
    entry_offsets: np.ndarray  # (entries + 1,) variants of entry e: rows offsets[e]:offsets[e+1]
    variant_entry: np.ndarray  # (variants,) entry number of each row
    vectors: np.ndarray  # (variants, dim) float32, L2-normalised
    analyzer: TextAnalyzer
    embedder: Embedder
    dense: DenseIndex
    bm25: BM25
    answers: BM25  # over each entry's category + answer
    classifier: EntryClassifier | None
    calibrator: Calibrator
    settings: KBSettings
    share: np.ndarray  # (entries,) float32 paraphrase share (calibration.paraphrase_share)


@dataclass(frozen=True)
class Scored:
    """Candidate entries (numbers) with raw features and calibrated scores, best first."""

    entries: np.ndarray
    features: np.ndarray
    scores: np.ndarray


class Retriever:
    def __init__(self, parts: Components):
        self.parts = parts

    def analyse(self, text: str) -> Analysed:
        return self.parts.analyzer.analyse(text)

    def score(
        self,
        q: Analysed,
        active: ActiveSet | None = None,
        exclude_row: int = -1,
        classifier: EntryClassifier | None = None,
        calibrator: Calibrator | None = None,
    ) -> Scored:
        """Score the candidate entries of ``q``. ``active``: entries allowed (None = all).
        ``exclude_row``, ``classifier``, ``calibrator``: used by the build's calibration."""
        p = self.parts
        s = p.settings
        clf = classifier if classifier is not None else p.classifier
        cal = calibrator if calibrator is not None else p.calibrator
        qv, dense_coverage = p.embedder.encode_query(q)
        lq = p.bm25.query(q.lexical_terms())
        probs, lowrank, clf_coverage = (
            clf.predict_parts(q) if clf is not None else (None, None, 0.0)
        )

        mask = active.mask if active is not None else None
        found: list[np.ndarray] = []
        k = s.dense_candidates + (1 if exclude_row >= 0 else 0)
        limit = min(p.dense.size, MAX_DENSE_K)
        while True:  # widen the dense search while filtering leaves too few entries
            _, rows = p.dense.search(qv, k)
            rows = rows[(rows >= 0) & (rows != exclude_row)]
            dense_entries = p.variant_entry[rows]
            if mask is None:
                break
            dense_entries = dense_entries[mask[dense_entries]]
            enough = np.unique(dense_entries).size >= min(5, s.dense_candidates)
            if enough or k >= limit or active is None or active.few is not None:
                break
            k = min(limit, k * 4)
        found.append(dense_entries)
        if active is not None and active.few is not None:
            found.append(active.few)
        if not lq.empty:
            rows, _ = p.bm25.top(lq, s.lexical_candidates + 1, s.lexical_budget)
            found.append(p.variant_entry[rows[rows != exclude_row]])
        la = p.answers.query(q.word_list())
        if not la.empty:
            rows, _ = p.answers.top(la, s.classifier_candidates, s.lexical_budget)
            found.append(rows)
        if probs is not None:
            kc = min(s.classifier_candidates, probs.size)
            found.append(np.argpartition(-probs, kc - 1)[:kc])
            if lowrank is not None and lowrank.any():
                found.append(np.argpartition(-lowrank, kc - 1)[:kc])
        candidates = np.unique(np.concatenate(found)).astype(np.int64)
        if mask is not None:
            candidates = candidates[mask[candidates]]
        if candidates.size == 0:
            empty = np.zeros(0, np.float32)
            return Scored(candidates, np.zeros((0, len(FEATURES)), np.float32), empty)

        starts = p.entry_offsets[candidates]
        lengths = p.entry_offsets[candidates + 1] - starts
        first = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        rows = np.repeat(starts - first, lengths) + np.arange(int(lengths.sum()))
        cos = p.vectors[rows] @ qv
        lex = p.bm25.score_rows(lq, rows)
        if exclude_row >= 0:
            cos[rows == exclude_row] = -1.0
            lex[rows == exclude_row] = 0.0
        # Similarities count less when the vocabulary knows only part of the query (a
        # dropped unknown word would otherwise leave a few known ones looking like a match).
        dense = np.maximum.reduceat(cos, first) * math.sqrt(dense_coverage)
        lexical = np.maximum.reduceat(lex, first)
        clf_scores = (
            probs[candidates] * math.sqrt(clf_coverage)
            if probs is not None
            else np.zeros(candidates.size, np.float32)
        )
        lowrank_scores = (
            lowrank[candidates] * math.sqrt(clf_coverage)
            if lowrank is not None
            else np.zeros(candidates.size, np.float32)
        )
        answer = p.answers.score_rows(la, candidates)
        features = feature_matrix(
            dense, lexical, clf_scores, answer, p.share[candidates], lowrank_scores
        )
        scores = cal(features)
        order = np.lexsort((-dense, -scores))
        return Scored(candidates[order], features[order], scores[order])

    def search(self, text: str, top: int = 5, active: ActiveSet | None = None) -> list[Hit]:
        scored = self.score(self.analyse(text), active)
        entries = self.parts.entries
        return [
            Hit(entries[int(e)], float(s))
            for e, s in zip(scored.entries[:top], scored.scores[:top], strict=True)
        ]
