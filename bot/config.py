"""Reads ``config.yml``: the NLU pipeline and the dialogue policies, each declared by name.

As in Rasa, a missing ``language`` is ``en`` and an empty or missing ``pipeline`` or
``policies`` gets the default for the language: for ``zh`` the Chinese pipeline of this
repository's ``config.yml`` (its data files only when the project has them), for other
languages Rasa's default pipeline; the policies are Rasa's default for every language.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.errors import ConfigError
from bot.settings_file import read_mapping

DEFAULT_LANGUAGE = "en"  # Rasa's, when config.yml names none


@dataclass(frozen=True)
class ComponentSpec:
    """One ``- name: X`` entry of ``pipeline:`` or ``policies:`` with its options."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, **self.options}


@dataclass(frozen=True)
class BotConfig:
    language: str
    pipeline: tuple[ComponentSpec, ...]
    policies: tuple[ComponentSpec, ...]
    assistant_id: str | None = None
    # "pipeline" and/or "policies" when they were missing or empty and got the defaults.
    defaulted: tuple[str, ...] = ()

    def pipeline_dicts(self) -> list[dict[str, Any]]:
        return [c.as_dict() for c in self.pipeline]


def _spec(name: str, **options: Any) -> ComponentSpec:
    return ComponentSpec(name, options)


# Rasa 3.x's default pipeline for languages with spaces between words.
RASA_DEFAULT_PIPELINE = (
    _spec("WhitespaceTokenizer"),
    _spec("RegexFeaturizer"),
    _spec("LexicalSyntacticFeaturizer"),
    _spec("CountVectorsFeaturizer"),
    _spec("CountVectorsFeaturizer", analyzer="char_wb", min_ngram=1, max_ngram=4),
    _spec("DIETClassifier", epochs=100),
    _spec("EntitySynonymMapper"),
    _spec("ResponseSelector", epochs=100),
    _spec("FallbackClassifier", threshold=0.3, ambiguity_threshold=0.1),
)
# Rasa 3.x's default policies (TEDPolicy runs as SklearnPolicy, see the ensemble).
RASA_DEFAULT_POLICIES = (
    _spec("MemoizationPolicy"),
    _spec("RulePolicy"),
    _spec("UnexpecTEDIntentPolicy", max_history=5, epochs=100),
    _spec("TEDPolicy", max_history=5, epochs=100, constrain_similarities=True),
)
USER_DICTIONARY = "nlu_data/userdict.txt"
SENTIMENT_DATA = "sentiment/train.yml"


def chinese_pipeline(project_root: Path | None) -> tuple[ComponentSpec, ...]:
    """The pipeline of this repository's ``config.yml``; the user dictionary and the
    sentiment data only when ``project_root`` has them."""

    def has(relative: str) -> bool:
        return project_root is not None and (project_root / relative).is_file()

    specs = [
        _spec("ChineseTextNormalizer", max_length=2000),
        _spec(
            "JiebaTokenizer",
            **({"dictionary_path": USER_DICTIONARY} if has(USER_DICTIONARY) else {}),
        ),
        _spec("TfidfVectorsFeaturizer", analyzer="word", min_ngram=1, max_ngram=1),
        _spec("TfidfVectorsFeaturizer", analyzer="char", min_ngram=1, max_ngram=3),
        _spec("LogisticRegressionClassifier", C=50),
        _spec("CRFEntityExtractor"),  # learns [text](entity) annotations, roles and groups
        _spec("RegexEntityExtractor"),
        _spec("EntitySynonymMapper"),
        _spec("EntityValueNormalizer"),
        _spec("ResponseSelector"),  # retrieval intents such as chitchat/whoyouare
        _spec("FallbackClassifier", threshold=0.4, ambiguity_threshold=0.1),
    ]
    if has(SENTIMENT_DATA):
        specs.append(_spec("SentimentAnalyzer", data_path=SENTIMENT_DATA))
    return tuple(specs)


def default_pipeline(language: str, project_root: Path | None) -> tuple[ComponentSpec, ...]:
    """Rasa's default pipeline for ``language`` (ours for Chinese)."""
    if language.lower().split("-")[0].split("_")[0] == "zh":
        return chinese_pipeline(project_root)
    return RASA_DEFAULT_PIPELINE


def _specs(raw: Any, key: str, path: Path) -> tuple[ComponentSpec, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise ConfigError(f"{path}: '{key}' must be a list of '- name: X' entries")
    specs = []
    for i, item in enumerate(raw, 1):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise ConfigError(
                f"{path}: entry {i} of '{key}' needs a 'name', e.g. '- name: JiebaTokenizer'"
            )
        options = {k: v for k, v in item.items() if k != "name"}
        specs.append(ComponentSpec(item["name"], options))
    return tuple(specs)


def parse_config(data: Any, path: Path, project_root: Path | None = None) -> BotConfig:
    """The config of ``data``; defaults as in Rasa (the zh pipeline looks for its data
    files under ``project_root``, default: the folder of ``path``)."""
    if data is None:
        data = {}  # an empty config.yml: every default, as in Rasa
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with 'language' and 'pipeline'")
    language = data.get("language")
    if language is None:
        language = DEFAULT_LANGUAGE
    if not isinstance(language, str) or not language.strip():
        raise ConfigError(f"{path}: 'language' must be a language code such as 'zh' or 'en'")
    defaulted: list[str] = []
    pipeline = _specs(data.get("pipeline"), "pipeline", path)
    if not pipeline:
        pipeline = default_pipeline(language, path.parent if project_root is None else project_root)
        defaulted.append("pipeline")
    policies = _specs(data.get("policies"), "policies", path)
    if not policies:
        policies = RASA_DEFAULT_POLICIES
        defaulted.append("policies")
    assistant_id = data.get("assistant_id")
    return BotConfig(
        language=language,
        pipeline=pipeline,
        policies=policies,
        assistant_id=str(assistant_id) if assistant_id is not None else None,
        defaulted=tuple(defaulted),
    )


def load_config(path: Path, project_root: Path | None = None) -> BotConfig:
    data = read_mapping(
        path,
        required=True,
        holds="language, pipeline, policies, ...",
        missing_fix="create it or pass --config FILE",
    )
    return parse_config(data, path, project_root)


def describe_defaults(config: BotConfig) -> list[str]:
    """Lines saying which defaults were used (for ``bot train``); none when none were."""
    lines = []
    if "pipeline" in config.defaulted:
        lines.append(
            f"config.yml has no pipeline: using the default for language '{config.language}':"
        )
        lines.extend(f"  - {_describe(spec)}" for spec in config.pipeline)
    if "policies" in config.defaulted:
        lines.append("config.yml has no policies: using Rasa's default policies:")
        lines.extend(f"  - {_describe(spec)}" for spec in config.policies)
    return lines


def _describe(spec: ComponentSpec) -> str:
    options = ", ".join(f"{k}: {v}" for k, v in spec.options.items())
    return f"{spec.name} ({options})" if options else spec.name
