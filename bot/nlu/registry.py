"""Component names usable in ``config.yml`` → classes. Imports are lazy per component."""

from __future__ import annotations

from importlib import import_module

from bot.errors import ConfigError
from bot.nlu.interfaces import Component

# name → "module:Class"; modules are imported only when a pipeline uses them.
COMPONENTS: dict[str, str] = {
    "ChineseTextNormalizer": "bot.nlu.normalizer:ChineseTextNormalizer",
    "JiebaTokenizer": "bot.nlu.tokenizer:JiebaTokenizer",
    "TfidfVectorsFeaturizer": "bot.nlu.featurizer:TfidfVectorsFeaturizer",
    "LogisticRegressionClassifier": "bot.nlu.classifier:LogisticRegressionClassifier",
    "RegexEntityExtractor": "bot.nlu.entity_extractor:RegexEntityExtractor",
    "EntitySynonymMapper": "bot.nlu.synonyms:EntitySynonymMapper",
    "EntityValueNormalizer": "bot.nlu.entity_values:EntityValueNormalizer",
    "FallbackClassifier": "bot.nlu.fallback:FallbackClassifier",
    "SentimentAnalyzer": "bot.nlu.sentiment:SentimentAnalyzer",
}


def component_class(name: str) -> type[Component]:
    target = COMPONENTS.get(name)
    if target is None:
        known = ", ".join(sorted(COMPONENTS))
        raise ConfigError(f"unknown pipeline component '{name}'. Known components: {known}")
    module_name, class_name = target.split(":")
    cls: type[Component] = getattr(import_module(module_name), class_name)
    return cls
