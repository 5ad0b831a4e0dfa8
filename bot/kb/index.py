"""Dense vector index (FAISS, inner product on L2-normalised vectors = cosine).

``auto`` picks an exact flat index up to ``flat_max_vectors`` vectors and HNSW above it;
``ivf`` (an inverted file with a flat quantiser) can be named instead. Needs faiss-cpu.
"""

from __future__ import annotations

import importlib
import math
from pathlib import Path
from typing import Any

import numpy as np

from bot.errors import ConfigError

INDEX_FILE = "dense.faiss"
KINDS = ("auto", "flat", "hnsw", "ivf")


def faiss_module() -> Any:
    try:
        return importlib.import_module("faiss")
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise ConfigError("the knowledge base needs FAISS: pip install faiss-cpu") from exc


def choose_kind(kind: str, n_vectors: int, flat_max_vectors: int) -> str:
    if kind not in KINDS:
        raise ConfigError(
            f"knowledge_base.index '{kind}' is unknown; use one of: {', '.join(KINDS)}"
        )
    if kind == "auto":
        return "flat" if n_vectors <= flat_max_vectors else "hnsw"
    return kind


class DenseIndex:
    """A FAISS index over the question variants' vectors; ids are variant row numbers."""

    def __init__(self, index: Any, kind: str, ef_search: int = 64, nprobe: int = 16):
        self.index = index
        self.kind = kind
        self.set_search_params(ef_search, nprobe)

    def set_search_params(self, ef_search: int, nprobe: int) -> None:
        if self.kind == "hnsw":
            self.index.hnsw.efSearch = int(ef_search)
        elif self.kind == "ivf":
            self.index.nprobe = int(nprobe)

    @property
    def size(self) -> int:
        return int(self.index.ntotal)

    @classmethod
    def build(
        cls,
        vectors: np.ndarray,
        kind: str = "auto",
        *,
        flat_max_vectors: int = 10000,
        hnsw_m: int = 16,
        ef_construction: int = 40,
        ef_search: int = 64,
        nprobe: int = 16,
        seed: int = 0,
    ) -> DenseIndex:
        faiss = faiss_module()
        n, dim = vectors.shape
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        chosen = choose_kind(kind, n, flat_max_vectors)
        if chosen == "flat":
            index = faiss.IndexFlatIP(dim)
        elif chosen == "hnsw":
            index = faiss.IndexHNSWFlat(dim, int(hnsw_m), faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = int(ef_construction)
        else:
            nlist = max(1, min(int(4 * math.sqrt(n)), n // 39 or 1))
            quantizer = faiss.IndexFlatIP(dim)
            index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
            rng = np.random.default_rng(seed)
            sample = vectors[rng.choice(n, min(n, nlist * 64), replace=False)]
            index.train(sample)
        index.add(vectors)
        return cls(index, chosen, ef_search, nprobe)

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` ``(scores, ids)`` for one query vector; ids ``-1`` pad short results."""
        k = max(1, min(k, self.size))
        scores, ids = self.index.search(query.reshape(1, -1), k)
        return scores[0], ids[0]

    def search_many(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        k = max(1, min(k, self.size))
        scores, ids = self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        return scores, ids

    def save(self, directory: Path) -> dict[str, Any]:
        faiss_module().write_index(self.index, str(directory / INDEX_FILE))
        return {"kind": self.kind, "vectors": self.size}

    @classmethod
    def load(
        cls, directory: Path, meta: dict[str, Any], ef_search: int = 64, nprobe: int = 16
    ) -> DenseIndex:
        index = faiss_module().read_index(str(directory / INDEX_FILE))
        return cls(index, str(meta["kind"]), ef_search, nprobe)


def set_threads(threads: int) -> None:
    """FAISS's OpenMP threads (1 keeps one search from competing with other requests)."""
    faiss_module().omp_set_num_threads(max(1, int(threads)))
