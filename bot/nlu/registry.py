"""Component names usable in ``config.yml`` → classes. Imports are lazy per component.

Every built-in name of Rasa 3.x is accepted: most are implemented here, some are
substituted by one of ours (the component then says so in ``notes()``), a few are refused
with the reason. A name with dots (``my_pkg.my_module.MyComponent``) is a custom component
imported from the project (``bot.nlu.custom``).
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path

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
    "SentimentAnalyzer": "bot.nlu.sentiment.analyzer:SentimentAnalyzer",
    # Rasa 3.x names
    "WhitespaceTokenizer": "bot.nlu.whitespace_tokenizer:WhitespaceTokenizer",
    "LanguageModelTokenizer": "bot.nlu.whitespace_tokenizer:LanguageModelTokenizer",
    "SpacyNLP": "bot.nlu.spacy_components:SpacyNLP",
    "SpacyTokenizer": "bot.nlu.spacy_components:SpacyTokenizer",
    "SpacyFeaturizer": "bot.nlu.spacy_components:SpacyFeaturizer",
    "SpacyEntityExtractor": "bot.nlu.spacy_components:SpacyEntityExtractor",
    "MitieNLP": "bot.nlu.mitie:MitieNLP",
    "MitieTokenizer": "bot.nlu.mitie:MitieTokenizer",
    "MitieFeaturizer": "bot.nlu.mitie:MitieFeaturizer",
    "MitieIntentClassifier": "bot.nlu.mitie:MitieIntentClassifier",
    "MitieEntityExtractor": "bot.nlu.mitie:MitieEntityExtractor",
    "RegexFeaturizer": "bot.nlu.regex_featurizer:RegexFeaturizer",
    "LexicalSyntacticFeaturizer": "bot.nlu.lexical_featurizer:LexicalSyntacticFeaturizer",
    "CountVectorsFeaturizer": "bot.nlu.count_vectors:CountVectorsFeaturizer",
    "LanguageModelFeaturizer": "bot.nlu.language_model:LanguageModelFeaturizer",
    "ConveRTFeaturizer": "bot.nlu.language_model:ConveRTFeaturizer",
    "DIETClassifier": "bot.nlu.diet:DIETClassifier",
    "KeywordIntentClassifier": "bot.nlu.keyword_classifier:KeywordIntentClassifier",
    "SklearnIntentClassifier": "bot.nlu.sklearn_classifier:SklearnIntentClassifier",
    "CRFEntityExtractor": "bot.nlu.crf_extractor:CRFEntityExtractor",
    "DucklingEntityExtractor": "bot.nlu.duckling:DucklingEntityExtractor",
    "ResponseSelector": "bot.nlu.response_selector:ResponseSelector",
}


def component_class(name: str, project_root: Path | None = None) -> type[Component]:
    target = COMPONENTS.get(name)
    if target is None:
        if "." in name:
            from bot.nlu.custom import custom_component_class

            return custom_component_class(name, project_root)
        known = ", ".join(sorted(COMPONENTS))
        raise ConfigError(
            f"unknown pipeline component '{name}'. Known components: {known} "
            "(or a custom component by dotted path, my_pkg.my_module.MyComponent)"
        )
    module_name, class_name = target.split(":")
    cls: type[Component] = getattr(import_module(module_name), class_name)
    return cls
