"""LogisticRegressionClassifier: ranking, calibrated confidences, persistence."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bot.nlu.classifier import LogisticRegressionClassifier, _softmax, fit_temperature, to_matrix
from bot.nlu.fallback import FALLBACK_INTENT
from bot.nlu.interfaces import Message
from bot.nlu.pipeline import NLUPipeline

TEXTS = ["查下尾号5678的余额", "你好", "我的卡丢了 快挂失", "卡", "随便说点什么", "😀"]


def classifier_of(pipeline: NLUPipeline) -> LogisticRegressionClassifier:
    (clf,) = [c for c in pipeline.components if isinstance(c, LogisticRegressionClassifier)]
    return clf


def features_of(pipeline: NLUPipeline, text: str) -> Message:
    """The message as it reaches the classifier."""
    message = Message(text)
    for component in pipeline.components:
        if isinstance(component, LogisticRegressionClassifier):
            return message
        component.process(message)
    raise AssertionError("no classifier in the pipeline")


def classifier_ranking(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in result["intent_ranking"] if r["name"] != FALLBACK_INTENT]


@pytest.mark.parametrize("text", TEXTS)
def test_ranking_is_complete_sorted_and_sums_to_one(tiny_model: Any, text: str) -> None:
    ranking = classifier_ranking(tiny_model.model.nlu.parse(text))
    assert sorted(r["name"] for r in ranking) == ["greet", "query_balance", "report_loss"]
    confidences = [r["confidence"] for r in ranking]
    assert confidences == sorted(confidences, reverse=True)
    assert all(0.0 <= c <= 1.0 for c in confidences)
    assert sum(confidences) == pytest.approx(1.0, abs=1e-5)


def test_top_intents_of_the_tiny_model(tiny_model: Any) -> None:
    parse = tiny_model.model.nlu.parse
    assert parse("查下尾号5678的余额")["intent"]["name"] == "query_balance"
    assert parse("您好呀")["intent"]["name"] == "greet"
    assert parse("卡丢了要挂失")["intent"]["name"] == "report_loss"


def test_shipped_ranking_is_the_top_ten_of_a_distribution(shipped: Any) -> None:
    pipeline = shipped.model.nlu
    clf = classifier_of(pipeline)
    assert len(clf.labels) == 13
    for text in ["查下尾号1234的余额", "我要投诉", "今天天气怎么样", "嗯"]:
        result = pipeline.parse(text)
        ranking = classifier_ranking(result)
        full = _softmax(clf.scores(features_of(pipeline, text).features), clf.temperature)
        assert full.sum() == pytest.approx(1.0)
        assert len(ranking) == 10  # ranking_length default, as in Rasa
        assert [r["confidence"] for r in ranking] == [
            round(float(c), 6) for c in sorted(full, reverse=True)[:10]
        ]
        if result["intent"]["name"] != FALLBACK_INTENT:
            assert result["intent"] == ranking[0]


def test_ranking_length_truncates(tiny_model: Any) -> None:
    clf = classifier_of(tiny_model.model.nlu)
    short = LogisticRegressionClassifier(
        {**clf.config, "ranking_length": 2}, clf.model, clf.temperature
    )
    message = features_of(tiny_model.model.nlu, "查余额")
    short.process(message)
    assert len(message.intent_ranking) == 2
    assert message.intent == message.intent_ranking[0]


def test_empty_text_has_no_intent(tiny_model: Any) -> None:
    clf = classifier_of(tiny_model.model.nlu)
    message = features_of(tiny_model.model.nlu, "  ")
    clf.process(message)
    assert message.intent is None
    assert message.intent_ranking == []


def test_calibrated_temperature_is_persisted_and_reloaded(tiny_model: Any, tmp_path: Path) -> None:
    clf = classifier_of(tiny_model.model.nlu)
    assert clf.temperature > 0
    assert clf.temperature != 1.0  # calibration ran: the tiny project has 6 examples per intent
    clf.persist(tmp_path)
    stored = json.loads((tmp_path / "calibration.json").read_text(encoding="utf-8"))
    assert stored["temperature"] == clf.temperature
    loaded = LogisticRegressionClassifier.load(tmp_path, clf.config)
    assert loaded.temperature == clf.temperature
    assert loaded.labels == clf.labels
    for text in TEXTS:
        a = features_of(tiny_model.model.nlu, text)
        b = features_of(tiny_model.model.nlu, text)
        clf.process(a)
        loaded.process(b)
        assert a.intent_ranking == b.intent_ranking


def test_calibration_can_be_turned_off(tiny_project: Path) -> None:
    from bot.config import load_config
    from bot.project import Project
    from bot.train import load_training_data

    project = Project(tiny_project)
    config = load_config(project.config_file)
    pipeline = NLUPipeline.from_config(config, project.root)
    clf = classifier_of(pipeline)
    clf.config["calibration_folds"] = 0
    pipeline.train(load_training_data(project))
    assert clf.temperature == 1.0


def test_fast_scores_match_scikit_learn(tiny_model: Any) -> None:
    pipeline = tiny_model.model.nlu
    clf = classifier_of(pipeline)
    for text in TEXTS:
        features = features_of(pipeline, text).features
        expected = clf.model.decision_function(to_matrix([features]))[0]
        np.testing.assert_allclose(clf.scores(features), expected, rtol=1e-9, atol=1e-9)
        probs = _softmax(clf.scores(features), 1.0)
        np.testing.assert_allclose(
            probs, clf.model.predict_proba(to_matrix([features]))[0], atol=1e-9
        )


def test_binary_problem_gives_logistic_probabilities(tiny_project: Path) -> None:
    from bot.config import load_config
    from bot.project import Project
    from bot.train import load_training_data

    project = Project(tiny_project)
    data = load_training_data(project)
    data.examples = [e for e in data.examples if e.intent != "greet"]
    pipeline = NLUPipeline.from_config(load_config(project.config_file), project.root)
    pipeline.train(data)
    clf = classifier_of(pipeline)
    assert clf.labels == ["query_balance", "report_loss"]
    features = features_of(pipeline, "卡丢了").features
    expected = clf.model.predict_proba(to_matrix([features]))[0]
    np.testing.assert_allclose(_softmax(clf.scores(features), 1.0), expected, atol=1e-9)
    ranking = pipeline.parse("卡丢了")["intent_ranking"]
    assert sum(r["confidence"] for r in ranking if r["name"] != FALLBACK_INTENT) == (
        pytest.approx(1.0, abs=1e-5)
    )


def test_softmax_sums_to_one_and_temperature_flattens() -> None:
    scores = np.array([3.0, 1.0, -2.0])
    sharp, flat = _softmax(scores, 0.5), _softmax(scores, 5.0)
    assert sharp.sum() == pytest.approx(1.0) and flat.sum() == pytest.approx(1.0)
    assert sharp[0] > flat[0]
    assert list(np.argsort(-sharp)) == list(np.argsort(-flat)) == [0, 1, 2]


def test_fit_temperature_cools_overconfident_and_warms_underconfident_scores() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, size=300)
    onehot = np.eye(3)[labels]
    # overconfident: huge margins, but 30% of the labels disagree with the top score
    noisy = labels.copy()
    flip = rng.random(300) < 0.3
    noisy[flip] = (noisy[flip] + 1) % 3
    assert fit_temperature(onehot * 10.0, noisy) > 1.5
    # underconfident: tiny margins, always right
    assert fit_temperature(onehot * 0.2, labels) < 0.5


def test_untrained_classifier_refuses_to_process() -> None:
    with pytest.raises(RuntimeError, match="not trained"):
        LogisticRegressionClassifier({}).process(Message("x", norm="x"))
