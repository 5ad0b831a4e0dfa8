"""Rasa's spaCy components. spaCy is installed; trained spaCy models are not (nothing is
downloaded). ``SpacyNLP`` loads ``model`` when it names an installed package (``pip install``
of a spaCy model such as ``zh_core_web_sm``); otherwise it says no model is installed and
uses ``spacy.blank(language)`` (tokenization only). ``SpacyTokenizer`` tokenizes with it;
``SpacyFeaturizer`` adds the document vector when the model has vectors, otherwise
bankbot's character n-gram TF-IDF stands in (noted). ``SpacyEntityExtractor`` needs a
model with a trained NER and is refused without one.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from bot.errors import ConfigError
from bot.nlu.featurizer import SparseFeatures, TfidfVectorsFeaturizer
from bot.nlu.interfaces import Component, Message, Token, ensure_norm
from bot.nlu.tokenization import TOKENIZER_DEFAULTS, note_tokenizer_options
from bot.training.data import TrainingData


@lru_cache(maxsize=8)
def _load(model: str | None, language: str) -> tuple[Any, bool]:
    """The spaCy pipeline and whether it is a trained model (not a blank one)."""
    import spacy

    if model and spacy.util.is_package(model):
        return spacy.load(model), True
    return spacy.blank(language.split("-")[0].split("_")[0] or "xx"), False


class SpacyNLP(Component):
    name = "SpacyNLP"
    defaults: ClassVar[dict[str, Any]] = {"model": None, "case_sensitive": False, "language": "zh"}

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        model = self.config["model"]
        try:
            self.nlp, trained = _load(model, str(self.config["language"]))
        except (ImportError, OSError) as exc:
            raise ConfigError(
                f"SpacyNLP: cannot build spaCy for language {self.config['language']!r}: {exc}"
            ) from None
        if not trained:
            self.note(
                f"SpacyNLP: no spaCy model {model or '(none given)'!r} is installed; using "
                f"spacy.blank({self.config['language']!r}) (tokens only, no vectors). To use "
                "a model: pip install it (e.g. zh_core_web_md) and set model: to its name"
            )
        self.trained = trained

    def doc(self, text: str) -> Any:
        return self.nlp.make_doc(text if self.config["case_sensitive"] else text.lower())

    def process(self, message: Message) -> None:
        return None


def _find_nlp(component: Component, pipeline: list[Component]) -> SpacyNLP:
    for other in pipeline:
        if isinstance(other, SpacyNLP):
            return other
    raise ConfigError(
        f"{component.name}: needs SpacyNLP earlier in the pipeline; add "
        "'- name: SpacyNLP' before it"
    )


class SpacyTokenizer(Component):
    name = "SpacyTokenizer"
    defaults: ClassVar[dict[str, Any]] = {**TOKENIZER_DEFAULTS}

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        note_tokenizer_options(self)
        self.spacy: SpacyNLP | None = None

    def attach(self, pipeline: list[Component]) -> None:
        self.spacy = _find_nlp(self, pipeline)

    def process(self, message: Message) -> None:
        assert self.spacy is not None
        text = ensure_norm(message)
        doc = self.spacy.nlp.make_doc(text)  # offsets must index norm: no lower-casing here
        message.tokens = [Token(t.text, t.idx, t.idx + len(t.text)) for t in doc if t.text.strip()]


class SpacyFeaturizer(Component):
    name = "SpacyFeaturizer"
    defaults: ClassVar[dict[str, Any]] = {"pooling": "mean", "alias": None}

    def __init__(
        self, config: dict[str, Any], fallback: TfidfVectorsFeaturizer | None = None
    ) -> None:
        super().__init__(config)
        self.spacy: SpacyNLP | None = None
        self.fallback = fallback

    def attach(self, pipeline: list[Component]) -> None:
        self.spacy = _find_nlp(self, pipeline)
        if len(self.spacy.nlp.vocab.vectors) == 0:
            if self.fallback is None:
                self.fallback = TfidfVectorsFeaturizer(
                    {"analyzer": "char", "min_ngram": 1, "max_ngram": 3}
                )
            self.note(
                "SpacyFeaturizer: the spaCy pipeline has no word vectors (no trained "
                "model installed); substituted by character 1-3-gram TF-IDF features"
            )
        else:
            self.fallback = None

    def train(self, data: TrainingData, messages: list[Message]) -> None:
        if self.fallback is not None:
            self.fallback.train(data, messages)
            return
        super().train(data, messages)

    def process(self, message: Message) -> None:
        if self.fallback is not None:
            self.fallback.process(message)
            return
        assert self.spacy is not None
        doc = self.spacy.doc(ensure_norm(message))
        vector = np.asarray(doc.vector, dtype=np.float64)
        message.features.append(
            SparseFeatures(np.arange(len(vector), dtype=np.int64), vector, len(vector))
        )

    def persist(self, directory: Path) -> None:
        if self.fallback is not None:
            self.fallback.persist(directory)

    @classmethod
    def load(cls, directory: Path, config: dict[str, Any]) -> Self:
        fallback = None
        if (directory / "vectorizer.joblib").is_file():
            fallback = TfidfVectorsFeaturizer.load(
                directory, {"analyzer": "char", "min_ngram": 1, "max_ngram": 3}
            )
        return cls(config, fallback)


class SpacyEntityExtractor(Component):
    name = "SpacyEntityExtractor"
    extracts_entities: ClassVar[bool] = True
    defaults: ClassVar[dict[str, Any]] = {"dimensions": None}

    def attach(self, pipeline: list[Component]) -> None:
        self.spacy = _find_nlp(self, pipeline)
        if not self.spacy.nlp.has_pipe("ner"):
            raise ConfigError(
                "SpacyEntityExtractor: the spaCy pipeline has no trained NER (no spaCy model "
                "is installed); install one and set SpacyNLP's model, or use "
                "CRFEntityExtractor to learn entities from the annotated examples"
            )

    def process(self, message: Message) -> None:
        from bot.nlu.entity_merge import add_rule_based

        doc = self.spacy.nlp(message.text)
        dims = self.config["dimensions"]
        for ent in doc.ents:
            if dims and ent.label_ not in dims:
                continue
            add_rule_based(
                message,
                {
                    "entity": ent.label_,
                    "start": ent.start_char,
                    "end": ent.end_char,
                    "value": ent.text,
                    "confidence": None,
                    "extractor": self.name,
                },
            )
