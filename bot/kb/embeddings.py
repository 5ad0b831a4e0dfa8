"""Pluggable sentence embedders, chosen by ``knowledge_base.embedder.name`` in config.yml.

``tfidf_svd`` (default): trained here on the KB and NLU text. Word and character n-gram
TF-IDF reduced by TruncatedSVD (latent semantic analysis) to dense, L2-normalised float32
vectors. A query is embedded by summing precomputed projection rows of its terms.

``sentence_transformers``: a model in a local folder (``model_path``); nothing is ever
downloaded. Needs ``pip install sentence-transformers``.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from bot.errors import ConfigError
from bot.kb.features import SparseFeaturizer
from bot.kb.text import Analysed

Progress = Callable[[str, int, int], None]
META_FILE = "embedder.json"


class Embedder(Protocol):
    name: str

    @property
    def dimensions(self) -> int: ...

    def fit(self, docs: Sequence[Analysed], progress: Progress | None = None) -> None: ...

    def encode(self, docs: Sequence[Analysed], progress: Progress | None = None) -> np.ndarray:
        """``(len(docs), dimensions)`` float32, rows L2-normalised."""
        ...

    def encode_query(self, doc: Analysed) -> tuple[np.ndarray, float]:
        """One query's vector and its coverage in [0, 1] (how much of the text the embedder
        knows; 1.0 for models without a fixed vocabulary)."""
        ...

    def save(self, directory: Path) -> dict[str, Any]: ...


def _l2(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    out: np.ndarray = (x / norms).astype(np.float32)
    return out


class TfidfSvdEmbedder:
    """Latent semantic vectors from word + character TF-IDF."""

    name = "tfidf_svd"

    def __init__(
        self,
        dimensions: int = 256,
        char_ngram: tuple[int, int] = (1, 3),
        char_weight: float = 1.0,
        word_weight: float = 1.0,
        min_df: int = 1,
        svd_sample: int = 60000,
        seed: int = 0,
    ):
        self._wanted = int(dimensions)
        self.char_ngram = char_ngram
        self.char_weight = char_weight
        self.word_weight = word_weight
        self.min_df = int(min_df)
        self.svd_sample = int(svd_sample)
        self.seed = seed
        self.featurizer: SparseFeaturizer | None = None
        self.projection: np.ndarray | None = None  # (n_features, dimensions) float32

    @property
    def dimensions(self) -> int:
        return self._wanted if self.projection is None else int(self.projection.shape[1])

    def fit(self, docs: Sequence[Analysed], progress: Progress | None = None) -> None:
        """Vocabulary, idf and SVD from ``docs``, or from a random ``svd_sample`` of them
        when there are more (large KBs: the counting is the expensive part)."""
        from sklearn.decomposition import TruncatedSVD

        if progress:
            progress("embedder: TF-IDF", 0, 2)
        if len(docs) > self.svd_sample:
            rng = np.random.default_rng(self.seed)
            pick = np.sort(rng.choice(len(docs), self.svd_sample, replace=False))
            docs = [docs[i] for i in pick]
        featurizer, x = SparseFeaturizer.fit(
            docs,
            char_ngram=self.char_ngram,
            word_weight=self.word_weight,
            char_weight=self.char_weight,
            min_df=self.min_df,
        )
        if progress:
            progress("embedder: SVD", 1, 2)
        n_components = max(1, min(self._wanted, x.shape[0] - 1, x.shape[1] - 1))
        svd = TruncatedSVD(
            n_components=n_components, algorithm="randomized", n_iter=5, random_state=self.seed
        )
        svd.fit(x)
        self.featurizer = featurizer
        self.projection = np.ascontiguousarray(svd.components_.T, dtype=np.float32)
        if progress:
            progress("embedder: SVD", 2, 2)

    def _ready(self) -> tuple[SparseFeaturizer, np.ndarray]:
        if self.featurizer is None or self.projection is None:
            raise RuntimeError("the tfidf_svd embedder is not fitted")
        return self.featurizer, self.projection

    def encode(self, docs: Sequence[Analysed], progress: Progress | None = None) -> np.ndarray:
        featurizer, projection = self._ready()
        out = np.empty((len(docs), projection.shape[1]), np.float32)
        step = 50000
        for start in range(0, len(docs), step):
            chunk = featurizer.transform(docs[start : start + step])
            out[start : start + step] = chunk @ projection
            if progress:
                progress("embedding", min(start + step, len(docs)), len(docs))
        return _l2(out)

    def encode_query(self, doc: Analysed) -> tuple[np.ndarray, float]:
        featurizer, projection = self._ready()
        cols, weights, coverage = featurizer.one(doc)
        if cols.size == 0:
            return np.zeros(projection.shape[1], np.float32), 0.0
        vec = weights @ projection[cols]
        norm = float(np.linalg.norm(vec))
        out: np.ndarray = (vec / norm if norm else vec).astype(np.float32)
        return out, coverage

    def save(self, directory: Path) -> dict[str, Any]:
        featurizer, projection = self._ready()
        featurizer.save(directory, "embedder")
        np.save(directory / "embedder_projection.npy", projection)
        return {"name": self.name, "dimensions": self.dimensions}

    @classmethod
    def load(cls, directory: Path, meta: dict[str, Any]) -> TfidfSvdEmbedder:
        embedder = cls(dimensions=int(meta["dimensions"]))
        embedder.featurizer = SparseFeaturizer.load(directory, "embedder")
        embedder.char_ngram = embedder.featurizer.char_ngram
        embedder.projection = np.load(directory / "embedder_projection.npy")
        return embedder


INSTALL_HINT = (
    "the sentence_transformers embedder needs the sentence-transformers package: "
    "pip install sentence-transformers (or set knowledge_base.embedder.name: tfidf_svd)"
)


class SentenceTransformerEmbedder:
    """A sentence-transformers model loaded from a local folder; never downloads."""

    name = "sentence_transformers"

    def __init__(self, model_path: str | Path, batch_size: int = 64, device: str = "cpu"):
        self.model_path = Path(model_path)
        self.batch_size = int(batch_size)
        self.device = device
        self._model: Any = None

    def _load(self) -> Any:
        if self._model is None:
            if not self.model_path.is_dir():
                raise ConfigError(
                    f"knowledge_base.embedder.model_path {self.model_path} is not a folder; "
                    "copy the sentence-transformers model there (nothing is downloaded)"
                )
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            try:
                module = importlib.import_module("sentence_transformers")
            except ImportError as exc:
                raise ConfigError(INSTALL_HINT) from exc
            self._model = module.SentenceTransformer(
                str(self.model_path), device=self.device, local_files_only=True
            )
        return self._model

    @property
    def dimensions(self) -> int:
        return int(self._load().get_sentence_embedding_dimension())

    def fit(self, docs: Sequence[Analysed], progress: Progress | None = None) -> None:
        self._load()  # a pretrained model: nothing to fit, but fail early if missing

    def encode(self, docs: Sequence[Analysed], progress: Progress | None = None) -> np.ndarray:
        model = self._load()
        out = []
        step = max(self.batch_size * 16, 1)
        for start in range(0, len(docs), step):
            texts = [d.norm for d in docs[start : start + step]]
            vectors = model.encode(
                texts,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            out.append(np.asarray(vectors, dtype=np.float32))
            if progress:
                progress("embedding", min(start + step, len(docs)), len(docs))
        if not out:
            return np.zeros((0, self.dimensions), np.float32)
        return _l2(np.vstack(out))

    def encode_query(self, doc: Analysed) -> tuple[np.ndarray, float]:
        out: np.ndarray = self.encode([doc])[0]
        return out, 1.0

    def save(self, directory: Path) -> dict[str, Any]:
        return {
            "name": self.name,
            "model_path": str(self.model_path.resolve()),
            "batch_size": self.batch_size,
            "device": self.device,
            "dimensions": self.dimensions,
        }

    @classmethod
    def load(cls, directory: Path, meta: dict[str, Any]) -> SentenceTransformerEmbedder:
        return cls(meta["model_path"], meta.get("batch_size", 64), meta.get("device", "cpu"))


EMBEDDERS = {"tfidf_svd", "sentence_transformers"}


def make_embedder(options: dict[str, Any], root: Path | None = None) -> Embedder:
    """A fresh embedder from the ``knowledge_base.embedder`` mapping of config.yml."""
    name = options.get("name", "tfidf_svd")
    if name == "tfidf_svd":
        low, high = options.get("char_ngram", [1, 3])
        return TfidfSvdEmbedder(
            dimensions=int(options.get("dimensions", 256)),
            char_ngram=(int(low), int(high)),
            char_weight=float(options.get("char_weight", 1.0)),
            word_weight=float(options.get("word_weight", 1.0)),
            min_df=int(options.get("min_df", 1)),
            svd_sample=int(options.get("svd_sample", 60000)),
        )
    if name == "sentence_transformers":
        path = options.get("model_path")
        if not isinstance(path, str) or not path:
            raise ConfigError(
                "knowledge_base.embedder: sentence_transformers needs 'model_path', "
                "a local folder holding the model"
            )
        model_path = Path(path)
        if not model_path.is_absolute() and root is not None:
            model_path = root / model_path
        return SentenceTransformerEmbedder(
            model_path, int(options.get("batch_size", 64)), str(options.get("device", "cpu"))
        )
    raise ConfigError(
        f"knowledge_base.embedder.name '{name}' is unknown; use one of: "
        + ", ".join(sorted(EMBEDDERS))
    )


def save_embedder(embedder: Embedder, directory: Path) -> None:
    meta = embedder.save(directory)
    (directory / META_FILE).write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")


def load_embedder(directory: Path) -> Embedder:
    meta = json.loads((directory / META_FILE).read_text(encoding="utf-8"))
    if meta["name"] == "tfidf_svd":
        return TfidfSvdEmbedder.load(directory, meta)
    if meta["name"] == "sentence_transformers":
        return SentenceTransformerEmbedder.load(directory, meta)
    raise ConfigError(f"{directory}: unknown embedder '{meta['name']}'; rebuild with bot kb build")
