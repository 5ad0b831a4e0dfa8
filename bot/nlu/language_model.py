"""Rasa's LanguageModelFeaturizer (and ConveRTFeaturizer).

Nothing is downloaded at run time. When ``model_weights`` names a folder that exists
(absolute, or relative to the project), the model in it is loaded with
sentence-transformers (a folder with ``modules.json``) or transformers (mean of the last
hidden states) — optional dependencies: ``pip install sentence-transformers`` — and each
message gets the dense sentence embedding. Otherwise (``bert-base-chinese``, ``rasa/LaBSE``
are hub names, not folders) the component trains bankbot's character 1–3-gram TF-IDF
features instead and says so once in ``notes()``, with how to use the real model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from bot.errors import ConfigError
from bot.nlu.featurizer import SparseFeatures, TfidfVectorsFeaturizer
from bot.nlu.interfaces import Component, Message, ensure_norm
from bot.training.data import TrainingData

SUBSTITUTE = {"analyzer": "char", "min_ngram": 1, "max_ngram": 3}
INSTALL = "pip install 'sentence-transformers>=3,<7' (or transformers and torch)"


class _Encoder:
    """A local transformer model: ``encode(text) -> vector``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.kind = "sentence-transformers" if (folder / "modules.json").is_file() else "hf"
        try:
            if self.kind == "sentence-transformers":
                from sentence_transformers import SentenceTransformer

                self.model: Any = SentenceTransformer(str(folder), device="cpu")
            else:
                from transformers import AutoModel, AutoTokenizer

                self.tokenizer: Any = AutoTokenizer.from_pretrained(str(folder))
                self.model = AutoModel.from_pretrained(str(folder))
                self.model.eval()
        except ImportError:
            raise ConfigError(
                f"LanguageModelFeaturizer: model_weights folder {folder} needs "
                f"{self.kind if self.kind != 'hf' else 'transformers'}: {INSTALL}"
            ) from None

    def encode(self, text: str) -> np.ndarray:
        if self.kind == "sentence-transformers":
            return np.asarray(self.model.encode(text or " "), dtype=np.float64)
        import torch

        with torch.no_grad():
            batch = self.tokenizer(text or " ", return_tensors="pt", truncation=True)
            hidden = self.model(**batch).last_hidden_state[0]
        return np.asarray(hidden.mean(dim=0).numpy(), dtype=np.float64)


class LanguageModelFeaturizer(Component):
    name = "LanguageModelFeaturizer"
    defaults: ClassVar[dict[str, Any]] = {
        "model_name": "bert",
        "model_weights": None,
        "cache_dir": None,
        "alias": None,
    }

    def __init__(self, config: dict[str, Any], fallback: TfidfVectorsFeaturizer | None = None):
        super().__init__(config)
        self.folder = self._folder()
        self.encoder: _Encoder | None = None
        self.fallback: TfidfVectorsFeaturizer | None = None
        if self.folder is not None:
            self.encoder = _Encoder(self.folder)
        else:
            self.fallback = fallback or TfidfVectorsFeaturizer(dict(SUBSTITUTE))
            weights = self.config["model_weights"] or self.config["model_name"]
            self.note(
                f"{self.name}: model_weights {weights!r} is not a local folder (nothing is "
                "downloaded): substituted by character 1-3-gram TF-IDF features. To use the "
                "real model, save it to a folder (e.g. models/lm/bert-base-chinese) and set "
                f"model_weights to that path; {INSTALL}"
            )

    def _folder(self) -> Path | None:
        for key in ("model_weights", "cache_dir"):
            value = self.config.get(key)
            if not value:
                continue
            path = Path(str(value))
            if not path.is_absolute():
                path = Path(self.config.get("project_root", ".")) / path
            if key == "cache_dir" and self.config.get("model_weights"):
                path = path / str(self.config["model_weights"])
            if path.is_dir():
                return path
        return None

    @staticmethod
    def _proxy(message: Message) -> Message:
        """The message as the substitute sees it: normalised like ChineseTextNormalizer does
        (a language model reads Traditional and full-width forms; character n-grams would
        not match them otherwise). Only the features come from it."""
        from bot.nlu.normalizer import normalise

        text = ensure_norm(message)
        return Message(message.text, norm=normalise(text)[0] if text else "")

    def train(self, data: TrainingData, messages: list[Message]) -> None:
        if self.fallback is not None:
            proxies = [self._proxy(m) for m in messages]
            self.fallback.train(data, proxies)
            for message, proxy in zip(messages, proxies, strict=True):
                message.features.extend(proxy.features)
            return
        for message in messages:
            self.process(message)

    def process(self, message: Message) -> None:
        if self.fallback is not None:
            fallback = self.fallback
            message.features.append(fallback.vectorize(fallback.grams(self._proxy(message))))
            return
        assert self.encoder is not None
        vector = self.encoder.encode(ensure_norm(message))
        dim = len(vector)
        message.features.append(SparseFeatures(np.arange(dim, dtype=np.int64), vector, dim))

    def persist(self, directory: Path) -> None:
        info = {"folder": str(self.folder) if self.folder else None}
        (directory / "language_model.json").write_text(json.dumps(info), encoding="utf-8")
        if self.fallback is not None:
            self.fallback.persist(directory)

    @classmethod
    def load(cls, directory: Path, config: dict[str, Any]) -> Self:
        if (directory / "vectorizer.joblib").is_file():
            fallback = TfidfVectorsFeaturizer.load(directory, dict(SUBSTITUTE))
            obj = cls.__new__(cls)
            Component.__init__(obj, config)
            obj.folder, obj.encoder, obj.fallback = None, None, fallback
            return obj
        info = json.loads((directory / "language_model.json").read_text(encoding="utf-8"))
        return cls({**config, "model_weights": info["folder"]})


class ConveRTFeaturizer(LanguageModelFeaturizer):
    """ConveRT is an English TensorFlow-Hub model: the same substitute, or a local folder."""

    name = "ConveRTFeaturizer"
    defaults: ClassVar[dict[str, Any]] = {
        "model_url": None,
        "model_weights": None,
        "model_name": "convert",
        "cache_dir": None,
        "alias": None,
    }
