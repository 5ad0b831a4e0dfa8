"""Rasa's MITIE components. MITIE (and its model files such as ``total_word_feature_extractor``)
is not installed: each MITIE name is served by bankbot's own component and says so once.

| Rasa | stands in |
|---|---|
| MitieNLP | nothing to load (no-op) |
| MitieTokenizer | JiebaTokenizer for ``language: zh``, else WhitespaceTokenizer |
| MitieFeaturizer | CountVectorsFeaturizer (words) |
| MitieIntentClassifier | LogisticRegressionClassifier |
| MitieEntityExtractor | CRFEntityExtractor (entities reported as MitieEntityExtractor) |
"""

from __future__ import annotations

from typing import Any, ClassVar

from bot.nlu.interfaces import Component, Message
from bot.nlu.substitute import Substitute, runtime

_WHY = "MITIE is not installed"


class MitieNLP(Component):
    name = "MitieNLP"
    defaults: ClassVar[dict[str, Any]] = {"model": None}

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.note(
            "MitieNLP: MITIE is not installed; nothing to load (the MITIE components "
            "that follow are served by bankbot's own)"
        )

    def process(self, message: Message) -> None:
        return None


class MitieTokenizer(Substitute):
    name = "MitieTokenizer"
    why = _WHY
    defaults: ClassVar[dict[str, Any]] = {"language": "zh"}

    @classmethod
    def inner(cls, config: dict[str, Any]) -> tuple[type[Component], dict[str, Any]]:
        if str(config.get("language", "zh")).startswith("zh"):
            from bot.nlu.tokenizer import JiebaTokenizer

            return JiebaTokenizer, runtime(config)
        from bot.nlu.whitespace_tokenizer import WhitespaceTokenizer

        return WhitespaceTokenizer, {}


class MitieFeaturizer(Substitute):
    name = "MitieFeaturizer"
    why = _WHY
    defaults: ClassVar[dict[str, Any]] = {"pooling": "mean"}

    @classmethod
    def inner(cls, config: dict[str, Any]) -> tuple[type[Component], dict[str, Any]]:
        from bot.nlu.count_vectors import CountVectorsFeaturizer

        return CountVectorsFeaturizer, {"analyzer": "word"}


class MitieIntentClassifier(Substitute):
    name = "MitieIntentClassifier"
    why = _WHY

    @classmethod
    def inner(cls, config: dict[str, Any]) -> tuple[type[Component], dict[str, Any]]:
        from bot.nlu.classifier import LogisticRegressionClassifier

        return LogisticRegressionClassifier, {}


class MitieEntityExtractor(Substitute):
    name = "MitieEntityExtractor"
    why = _WHY

    @classmethod
    def inner(cls, config: dict[str, Any]) -> tuple[type[Component], dict[str, Any]]:
        from bot.nlu.crf_extractor import CRFEntityExtractor

        return CRFEntityExtractor, {}
