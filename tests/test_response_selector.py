"""ResponseSelector: retrieval intents (chitchat/whoyouare) train the classifiers on the base
intent and the selector on the full key; the parse result has Rasa 3.x's shape."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import ConfigError
from bot.evaluation.nlu import evaluate
from tests.nlu_helpers import build, nlu_data, round_trip, trained

DATA = """\
- intent: chitchat/whoyouare
  examples: |
    - 你是谁
    - 你叫什么名字
    - 你是机器人吗
    - 你是真人吗
- intent: chitchat/weather
  examples: |
    - 今天天气怎么样
    - 明天会下雨吗
    - 外面冷不冷
    - 天气好吗
- intent: faq/opening_hours
  examples: |
    - 营业时间是几点
    - 网点几点开门
    - 周末营业吗
- intent: query_balance
  examples: |
    - 查余额
    - 我卡里还有多少钱
    - 余额多少
    - 看看余额
"""

PIPELINE = [
    {"name": "JiebaTokenizer", "dictionary_path": None},
    {"name": "CountVectorsFeaturizer", "analyzer": "char", "min_ngram": 1, "max_ngram": 2},
    {"name": "DIETClassifier", "epochs": 100},
    {"name": "ResponseSelector", "epochs": 100},
]


def test_data_helpers_use_the_base_intent(tmp_path: Path) -> None:
    data = nlu_data(tmp_path, DATA)
    assert data.intents == ["chitchat", "faq", "query_balance"]
    assert data.retrieval_intents == ["chitchat", "faq"]
    assert data.response_keys == ["chitchat/weather", "chitchat/whoyouare", "faq/opening_hours"]
    assert data.intent_counts()["chitchat"] == 8


def test_parse_result_has_rasa_shape(tmp_path: Path) -> None:
    nlu = trained(PIPELINE, nlu_data(tmp_path, DATA), tmp_path)
    result = nlu.parse("你到底是谁")
    assert result["intent"]["name"] == "chitchat"
    assert {r["name"] for r in result["intent_ranking"]} == {"chitchat", "faq", "query_balance"}
    selector = result["response_selector"]
    assert selector["all_retrieval_intents"] == ["chitchat", "faq"]
    response = selector["default"]["response"]
    assert set(response) == {"responses", "confidence", "intent_response_key", "utter_action"}
    assert response["intent_response_key"] == "chitchat/whoyouare"
    assert response["utter_action"] == "utter_chitchat/whoyouare"
    assert response["responses"] == []
    ranking = selector["default"]["ranking"]
    assert ranking[0] == {
        "confidence": response["confidence"],
        "intent_response_key": "chitchat/whoyouare",
    }
    assert [r["confidence"] for r in ranking] == sorted(
        (r["confidence"] for r in ranking), reverse=True
    )
    assert {r["intent_response_key"] for r in ranking} == {
        "chitchat/whoyouare",
        "chitchat/weather",
        "faq/opening_hours",
    }


def test_retrieval_intent_option_selects_one(tmp_path: Path) -> None:
    pipeline = [
        *PIPELINE[:3],
        {"name": "ResponseSelector", "retrieval_intent": "chitchat"},
        {"name": "ResponseSelector", "retrieval_intent": "faq"},
    ]
    nlu = trained(pipeline, nlu_data(tmp_path, DATA), tmp_path)
    selector = nlu.parse("明天天气怎么样")["response_selector"]
    assert set(selector) == {"all_retrieval_intents", "chitchat", "faq"}
    assert selector["chitchat"]["response"]["intent_response_key"] == "chitchat/weather"
    assert {r["intent_response_key"] for r in selector["chitchat"]["ranking"]} == {
        "chitchat/weather",
        "chitchat/whoyouare",
    }
    # One key only: that key, with confidence 1.
    assert selector["faq"]["response"]["intent_response_key"] == "faq/opening_hours"
    assert selector["faq"]["response"]["confidence"] == 1.0


def test_unknown_retrieval_intent_is_one_line(tmp_path: Path) -> None:
    nlu = build([*PIPELINE[:3], {"name": "ResponseSelector", "retrieval_intent": "smalltalk"}])
    with pytest.raises(ConfigError, match="retrieval_intent 'smalltalk' has no examples"):
        nlu.train(nlu_data(tmp_path, DATA))


def test_evaluation_counts_the_base_intent(tmp_path: Path) -> None:
    data = nlu_data(tmp_path, DATA)
    nlu = trained(PIPELINE, data, tmp_path)
    result = evaluate(nlu, data.examples)
    assert result.accuracy == 1.0
    assert "chitchat" in result.intent_report()
    assert {p.response_key for p in result.predictions} == {
        "chitchat/whoyouare",
        "chitchat/weather",
        "faq/opening_hours",
    }  # default: always one


def test_persist_and_load(tmp_path: Path) -> None:
    nlu = trained(PIPELINE, nlu_data(tmp_path, DATA), tmp_path)
    loaded = round_trip(nlu, tmp_path)
    for text in ("你是谁", "几点开门", "余额"):
        assert loaded.parse(text) == nlu.parse(text)


def test_without_retrieval_intents_the_selector_says_none(tmp_path: Path) -> None:
    data = nlu_data(
        tmp_path,
        """\
    - intent: greet
      examples: |
        - 你好
        - 您好
    - intent: bye
      examples: |
        - 再见
        - 拜拜
    """,
    )
    selector = trained(PIPELINE, data, tmp_path).parse("你好")["response_selector"]
    assert selector["all_retrieval_intents"] == []
    assert selector["default"]["response"]["intent_response_key"] is None
    assert selector["default"]["ranking"] == []


def test_response_selection_report(tmp_path: Path) -> None:
    import json

    from bot.evaluation.nlu import write_reports

    data = nlu_data(tmp_path, DATA)
    nlu = trained(PIPELINE, data, tmp_path)
    result = evaluate(nlu, data.examples)
    write_reports(result, tmp_path / "out", [])
    report = json.loads((tmp_path / "out" / "response_selection_report.json").read_text("utf-8"))
    assert report["accuracy"] == 1.0
    assert report["chitchat/whoyouare"]["support"] == 4
    assert "query_balance" not in report
