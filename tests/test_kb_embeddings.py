"""Embedders: the default TF-IDF + SVD one and the optional local sentence-transformers one."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bot.errors import ConfigError
from bot.kb.embeddings import (
    SentenceTransformerEmbedder,
    TfidfSvdEmbedder,
    load_embedder,
    make_embedder,
    save_embedder,
)
from bot.kb.text import TextAnalyzer

TEXTS = [
    "怎么借书",
    "借书要带什么",
    "续借在哪里办",
    "书到期了能续借吗",
    "还书晚了罚款吗",
    "超期一天罚多少",
    "图书馆几点开门",
    "周末开门吗",
    "wifi密码是多少",
    "怎么连无线网",
]


def docs(texts: list[str]) -> list[Any]:
    analyzer = TextAnalyzer()
    return [analyzer.analyse(t) for t in texts]


def test_tfidf_svd_vectors_are_unit_float32_and_consistent(tmp_path: Path) -> None:
    embedder = TfidfSvdEmbedder(dimensions=6)
    embedder.fit(docs(TEXTS))
    vectors = embedder.encode(docs(TEXTS))
    assert vectors.shape == (len(TEXTS), 6) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    one, coverage = embedder.encode_query(docs([TEXTS[3]])[0])
    assert np.allclose(one, vectors[3], atol=1e-5) and coverage == pytest.approx(1.0)
    save_embedder(embedder, tmp_path)
    again = load_embedder(tmp_path)
    assert np.allclose(again.encode(docs(TEXTS)), vectors, atol=1e-6)


def test_query_coverage_drops_with_unknown_text() -> None:
    embedder = TfidfSvdEmbedder(dimensions=4)
    embedder.fit(docs(TEXTS))
    _, known = embedder.encode_query(docs(["借书要带什么"])[0])
    _, partly = embedder.encode_query(docs(["股票明天涨不涨 借书"])[0])
    vec, none = embedder.encode_query(docs(["股票涨跌"])[0])
    assert known > partly > none == 0.0 and not vec.any()


def test_sample_is_used_for_large_corpora() -> None:
    embedder = TfidfSvdEmbedder(dimensions=3, svd_sample=5)
    embedder.fit(docs(TEXTS))
    assert embedder.encode(docs(TEXTS)).shape == (len(TEXTS), 3)


def test_make_embedder_names() -> None:
    assert isinstance(make_embedder({"name": "tfidf_svd", "dimensions": 8}), TfidfSvdEmbedder)
    with pytest.raises(ConfigError, match="unknown"):
        make_embedder({"name": "word2vec"})
    with pytest.raises(ConfigError, match="model_path"):
        make_embedder({"name": "sentence_transformers"})


def test_sentence_transformers_needs_a_local_folder(tmp_path: Path) -> None:
    embedder = make_embedder(
        {"name": "sentence_transformers", "model_path": "missing-model"}, root=tmp_path
    )
    with pytest.raises(ConfigError, match=r"not a folder; .*nothing is downloaded"):
        embedder.fit(docs(TEXTS[:2]))


def test_sentence_transformers_install_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # import fails
    embedder = SentenceTransformerEmbedder(tmp_path)
    with pytest.raises(ConfigError, match="pip install sentence-transformers"):
        embedder.fit(docs(TEXTS[:2]))


class FakeModel:
    def __init__(self, path: str, device: str, local_files_only: bool):
        assert local_files_only and Path(path).is_dir()

    def get_sentence_embedding_dimension(self) -> int:
        return 3

    def encode(self, texts: list[str], **options: Any) -> np.ndarray:
        assert options["normalize_embeddings"]
        return np.asarray([[len(t), 1.0, 0.0] for t in texts], dtype=np.float32)


def test_sentence_transformers_loads_from_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = types.ModuleType("sentence_transformers")
    module.SentenceTransformer = FakeModel  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sentence_transformers", module)
    embedder = SentenceTransformerEmbedder(tmp_path)
    vectors = embedder.encode(docs(["借书", "怎么借书"]))
    assert vectors.shape == (2, 3)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    _, coverage = embedder.encode_query(docs(["借书"])[0])
    assert coverage == 1.0
    out = tmp_path / "build"
    out.mkdir()
    save_embedder(embedder, out)
    again = load_embedder(out)
    assert isinstance(again, SentenceTransformerEmbedder) and again.dimensions == 3
