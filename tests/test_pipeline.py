"""The NLU pipeline: built from config by name, trained in order, robust per message."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bot.config import load_config, parse_config
from bot.errors import ConfigError
from bot.nlu.fallback import FALLBACK_INTENT
from bot.nlu.interfaces import Message
from bot.nlu.pipeline import NLUPipeline
from bot.nlu.registry import COMPONENTS, component_class
from bot.project import Project
from bot.train import load_training_data


def test_components_are_built_by_name_with_defaults_filled(tiny_project: Path) -> None:
    pipeline = NLUPipeline.from_config(load_config(tiny_project / "config.yml"), tiny_project)
    assert [c.name for c in pipeline.components] == [
        "ChineseTextNormalizer",
        "JiebaTokenizer",
        "TfidfVectorsFeaturizer",
        "TfidfVectorsFeaturizer",
        "LogisticRegressionClassifier",
        "RegexEntityExtractor",
        "EntitySynonymMapper",
        "EntityValueNormalizer",
        "FallbackClassifier",
    ]
    resolved = pipeline.resolved_config()
    assert resolved[3] == {
        "name": "TfidfVectorsFeaturizer",
        "analyzer": "char",
        "min_ngram": 1,
        "max_ngram": 3,
        "min_df": 1,
        "max_features": None,
        "sublinear_tf": True,
    }
    assert resolved[4]["calibration_folds"] == 5  # a default, not written in config.yml
    assert resolved[8] == {
        "name": "FallbackClassifier",
        "threshold": 0.3,
        "ambiguity_threshold": 0.05,
    }
    assert all("project_root" not in spec for spec in resolved)


def test_unknown_component_is_a_clear_error() -> None:
    config = parse_config(
        {
            "language": "zh",
            "pipeline": [{"name": "ChineseTextNormalizer"}, {"name": "NoSuchClassifier"}],
        },
        Path("config.yml"),
    )
    with pytest.raises(ConfigError, match="unknown pipeline component 'NoSuchClassifier'") as info:
        NLUPipeline.from_config(config)
    for known in COMPONENTS:
        assert known in str(info.value)


def test_every_registered_component_resolves() -> None:
    for name in COMPONENTS:
        assert component_class(name).name == name


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"language": 5, "pipeline": [{"name": "JiebaTokenizer"}]}, "'language' must be"),
        ({"pipeline": [{"analyzer": "char"}]}, "needs a 'name'"),
        ({"pipeline": "JiebaTokenizer"}, "must be a list"),
        ([1, 2], "expected a mapping"),
    ],
)
def test_malformed_config_is_a_clear_error(data: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(data, Path("config.yml"))


def test_training_reports_progress_per_component(tiny_project: Path) -> None:
    project = Project(tiny_project)
    pipeline = NLUPipeline.from_config(load_config(project.config_file), project.root)
    calls: list[tuple[str, int, int]] = []
    pipeline.train(load_training_data(project), lambda *args: calls.append(args))
    names = [c.name for c in pipeline.components]
    assert calls == [(n, i, len(names)) for i, n in enumerate(names)] + [
        ("done", len(names), len(names))
    ]


def test_parse_result_has_the_rasa_shape(tiny_model: Any) -> None:
    text = "查下尾号5678的工资卡余额"
    result = tiny_model.model.nlu.parse(text)
    assert set(result) == {"text", "intent", "intent_ranking", "entities"}
    assert result["text"] == text
    assert result["intent"]["name"] == "query_balance"
    assert result["intent"] == result["intent_ranking"][0]
    assert [(e["entity"], e["value"], text[e["start"] : e["end"]]) for e in result["entities"]] == [
        ("card_last4", "5678", "5678"),
        ("account_type", "debit_card", "工资卡"),
    ]
    assert all(e["extractor"] == "RegexEntityExtractor" for e in result["entities"])
    assert json.loads(json.dumps(result, ensure_ascii=False)) == result


def test_original_span_maps_normalised_spans_back() -> None:
    message = Message("  查下\u200b尾号  １２３４")
    message.norm, message.offsets = "查下尾号 1234", [2, 3, 5, 6, 8, 9, 10, 11, 12, 13]
    assert message.original_span(5, 9) == (9, 13)
    assert message.original_span(0, 4) == (2, 7)
    assert message.original_span(3, 3) == (6, 6)


# Robustness on the shipped model: every input gives a defined result, never an exception.
ODD_INPUTS = {
    "empty": "",
    "space": " ",
    "whitespace only": " \t\n\u3000 \r\n",
    "long ascii": "a" * 10_000,
    "long chinese with entity": "查下尾号1234的余额" + "我" * 9_990,
    "long spaced": "查 余额 " * 2_000,
    "emoji": "😀🏦💳👍🏻👨‍👩‍👧",
    "emoji and text": "卡丢了😭😭快帮我挂失🙏",
    "control characters": "\x00\x01\x07查\x1b余额\x7f\x08",
    "only controls": "\x00\x00\x1b\x07",
    "mixed scripts": "hello 你好 مرحبا Привет こんにちは 안녕 ॐ",
    "lone surrogates": "\ud800查余额\udfff\udc00",
    "rtl": "שלום עולם مرحبا بالعالم",
    "bidi controls": "\u202e查下尾号1234的余额\u202c\u200f",
    "combining": "e\u0301\u0301\u0301 查余额",
    "markup lookalike": '[尾号1234](card_last4) {"entity": 1}',
    "digits only": "1234",
    "long digits": "9" * 500,
    "private use": "\ue000\uf8ff查余额",
    "full-width everything": "ＡＰＰ登不上　尾号１２３４",
}


@pytest.mark.parametrize("text", list(ODD_INPUTS.values()), ids=list(ODD_INPUTS))
def test_robust_defined_results(shipped: Any, text: str) -> None:
    result = shipped.model.nlu.parse(text)
    assert result["text"] == text
    intent = result["intent"]
    assert isinstance(intent["name"], str) and intent["name"]
    assert 0.0 <= intent["confidence"] <= 1.0
    assert isinstance(result["intent_ranking"], list)
    for entity in result["entities"]:
        assert 0 <= entity["start"] < entity["end"] <= len(text)
        assert text[entity["start"] : entity["end"]].strip()
    assert result.get("truncated", False) is (len(text) > 2000)
    json.dumps(result)  # serialisable (surrogates are escaped)


def test_empty_and_blank_text_fall_back(shipped: Any) -> None:
    for text in ("", "   ", "\x00\x07"):
        result = shipped.model.nlu.parse(text)
        assert result["intent"] == {"name": FALLBACK_INTENT, "confidence": 1.0}
        assert [r["name"] for r in result["intent_ranking"]] == [FALLBACK_INTENT]
        assert result["entities"] == []


def test_truncated_long_text_still_finds_early_entities(shipped: Any) -> None:
    result = shipped.model.nlu.parse(ODD_INPUTS["long chinese with entity"])
    assert result["truncated"] is True
    assert [(e["entity"], e["value"], e["start"], e["end"]) for e in result["entities"]] == [
        ("card_last4", "1234", 4, 8)
    ]


def test_bidi_controls_do_not_shift_entity_offsets(shipped: Any) -> None:
    text = ODD_INPUTS["bidi controls"]
    (entity,) = shipped.model.nlu.parse(text)["entities"]
    assert text[entity["start"] : entity["end"]] == "1234"
