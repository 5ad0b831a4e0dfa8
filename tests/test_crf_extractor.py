"""CRFEntityExtractor: entities learned from [text](entity) annotations, with roles and
groups, BILOU decoding, no duplicates of rule-based entities, persist/load."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.nlu.crf_extractor import bilou, spans
from tests.nlu_helpers import ZH_ENTITIES, nlu_data, round_trip, trained

CRF = [{"name": "JiebaTokenizer", "dictionary_path": None}, {"name": "CRFEntityExtractor"}]


def found(result: dict[str, object]) -> list[tuple[object, ...]]:
    text = str(result["text"])
    return [
        (e["entity"], text[e["start"] : e["end"]], e.get("role"))  # type: ignore[index]
        for e in result["entities"]  # type: ignore[attr-defined]
    ]


def test_learns_annotated_entities_without_a_normaliser(tmp_path: Path) -> None:
    nlu = trained(CRF, nlu_data(tmp_path, ZH_ENTITIES), tmp_path)
    result = nlu.parse("查下尾号9876的余额")
    assert found(result) == [("card_last4", "9876", None)]
    entity = result["entities"][0]
    assert entity["extractor"] == "CRFEntityExtractor"
    assert entity["value"] == "9876"
    assert 0.5 < entity["confidence_entity"] <= 1.0
    # A value never seen in training, inside a jieba word: characters are the units.
    assert ("account_type", "工资卡", None) in found(nlu.parse("帮我看看工资卡余额"))


def test_roles_are_learned_and_reported(tmp_path: Path) -> None:
    nlu = trained(CRF, nlu_data(tmp_path, ZH_ENTITIES), tmp_path)
    result = nlu.parse("从广州转到南京")
    assert found(result) == [("city", "广州", "from"), ("city", "南京", "to")]
    assert all(0 < e["confidence_role"] <= 1 for e in result["entities"])


def test_groups_are_learned(tmp_path: Path) -> None:
    data = nlu_data(
        tmp_path,
        """\
    - intent: order
      examples: |
        - 要一张[金卡]{"entity": "card", "group": "1"}和一张[银卡]{"entity": "card", "group": "2"}
        - 要[白金卡]{"entity": "card", "group": "1"}和[普卡]{"entity": "card", "group": "2"}
        - 办[金卡]{"entity": "card", "group": "1"}和[普卡]{"entity": "card", "group": "2"}
        - 办[银卡]{"entity": "card", "group": "1"}和[白金卡]{"entity": "card", "group": "2"}
    - intent: greet
      examples: |
        - 你好
        - 在吗
    """,
    )
    result = trained(CRF, data, tmp_path).parse("要一张银卡和一张金卡")
    assert [(e["value"], e.get("group")) for e in result["entities"]] == [
        ("银卡", "1"),
        ("金卡", "2"),
    ]


def test_spans_map_to_the_original_text_after_normalisation(tmp_path: Path) -> None:
    pipeline = [{"name": "ChineseTextNormalizer"}, *CRF]
    nlu = trained(pipeline, nlu_data(tmp_path, ZH_ENTITIES), tmp_path)
    text = "查下尾号　１２３４的余额"  # full-width digits and space
    result = nlu.parse(text)
    assert [(e["entity"], text[e["start"] : e["end"]]) for e in result["entities"]] == [
        ("card_last4", "１２３４")
    ]


def test_does_not_duplicate_a_rule_based_entity(tmp_path: Path) -> None:
    data = nlu_data(tmp_path, ZH_ENTITIES)
    for order in (
        ["RegexEntityExtractor", "CRFEntityExtractor"],
        ["CRFEntityExtractor", "RegexEntityExtractor"],
    ):
        pipeline = [
            {"name": "JiebaTokenizer", "dictionary_path": None},
            *({"name": n} for n in order),
        ]
        result = trained(pipeline, data, tmp_path).parse("查下尾号1234的余额")
        spans_found = [(e["start"], e["end"]) for e in result["entities"]]
        assert spans_found == [(4, 8)], order
        assert result["entities"][0]["extractor"] == "RegexEntityExtractor"
        message = trained(pipeline, data, tmp_path).process("查下尾号1234的余额")
        assert [(e["extractor"], e["start"]) for e in message.shadowed] == [
            ("CRFEntityExtractor", 4)
        ]  # kept aside for the per-extractor evaluation


def test_persist_and_load_give_the_same_entities(tmp_path: Path) -> None:
    nlu = trained(CRF, nlu_data(tmp_path, ZH_ENTITIES), tmp_path)
    loaded = round_trip(nlu, tmp_path)
    for text in ("从杭州转到上海", "查下尾号2468的余额", "你好"):
        assert loaded.parse(text)["entities"] == nlu.parse(text)["entities"]


def test_tokens_granularity_and_english(tmp_path: Path) -> None:
    def trip(verb: str, a: str, b: str) -> str:
        return (
            f'        - {verb} from [{a}]{{"entity": "city", "role": "from"}} '
            f'to [{b}]{{"entity": "city", "role": "to"}}\n'
        )

    trips = (
        trip("fly", "Berlin", "Paris")
        + trip("go", "Rome", "Oslo")
        + trip("drive", "Paris", "Rome")
        + trip("travel", "Oslo", "Berlin")
    )
    data = nlu_data(
        tmp_path,
        """\
    - intent: move
      examples: |
"""
        + trips
        + """\
    - intent: greet
      examples: |
        - hello there
        - hi
    """,
    )
    pipeline = [
        {"name": "WhitespaceTokenizer"},
        {"name": "CRFEntityExtractor", "granularity": "tokens"},
    ]
    result = trained(pipeline, data, tmp_path, "en").parse("fly from Rome to Berlin")
    assert found(result) == [("city", "Rome", "from"), ("city", "Berlin", "to")]


def test_no_annotations_means_no_entities(tmp_path: Path) -> None:
    data = nlu_data(
        tmp_path,
        """\
    - intent: greet
      examples: |
        - 你好
    - intent: bye
      examples: |
        - 再见
    """,
    )
    assert trained(CRF, data, tmp_path).parse("你好")["entities"] == []


def test_bilou_tags_round_trip() -> None:
    labels = [None, "a", "a", "a", None, "b", "a", "a"]
    tags = bilou(labels, True)
    assert tags == ["O", "B-a", "I-a", "L-a", "O", "U-b", "B-a", "L-a"]
    assert spans(tags, True) == [("a", 1, 4), ("b", 5, 6), ("a", 6, 8)]
    assert spans(bilou(labels, False), False) == [("a", 1, 4), ("b", 5, 6), ("a", 6, 8)]


def test_bad_option_is_one_line(tmp_path: Path) -> None:
    from tests.nlu_helpers import build

    with pytest.raises(ConfigError, match=r"CRFEntityExtractor.*granularity"):
        build([{"name": "CRFEntityExtractor", "granularity": "words"}])


def test_rasa_feature_names_are_accepted(tmp_path: Path) -> None:
    from tests.nlu_helpers import build

    features = [["low"], ["bias", "suffix1", "pos", "text_dense_features", "pattern"], ["low"]]
    nlu = build([{"name": "CRFEntityExtractor", "features": features}])
    assert any("['pos', 'text_dense_features'] are skipped" in n for n in nlu.notes())
    with pytest.raises(ConfigError, match="unknown feature"):
        build([{"name": "CRFEntityExtractor", "features": [["lowercase"]]}])
