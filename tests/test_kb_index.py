"""The FAISS index: automatic choice, exact flat search, approximate HNSW/IVF, save/load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bot.errors import ConfigError
from bot.kb.index import DenseIndex, choose_kind


def unit(rows: int, dim: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((rows, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_auto_choice_by_size() -> None:
    assert choose_kind("auto", 100, flat_max_vectors=1000) == "flat"
    assert choose_kind("auto", 5000, flat_max_vectors=1000) == "hnsw"
    assert choose_kind("ivf", 10, flat_max_vectors=1000) == "ivf"
    with pytest.raises(ConfigError, match="unknown"):
        choose_kind("annoy", 10, 1000)


def test_flat_is_exact_cosine(tmp_path: Path) -> None:
    x = unit(200, 16)
    index = DenseIndex.build(x, "auto", flat_max_vectors=1000)
    assert index.kind == "flat" and index.size == 200
    scores, ids = index.search(x[17], 5)
    assert ids[0] == 17 and scores[0] == pytest.approx(1.0, abs=1e-5)
    expected = np.argsort(-(x @ x[17]))[:5]
    assert list(ids) == list(expected)
    meta = index.save(tmp_path)
    again = DenseIndex.load(tmp_path, meta)
    assert list(again.search(x[17], 5)[1]) == list(ids)


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_approximate_indexes_find_near_duplicates(kind: str, tmp_path: Path) -> None:
    x = unit(3000, 32, seed=1)
    index = DenseIndex.build(x, kind, flat_max_vectors=10)
    assert index.kind == kind
    queries = x[:50] + 0.01 * unit(50, 32, seed=2)
    _, ids = index.search_many(queries, 1)
    assert (ids[:, 0] == np.arange(50)).mean() >= 0.9
    meta = index.save(tmp_path)
    assert DenseIndex.load(tmp_path, meta).kind == kind
