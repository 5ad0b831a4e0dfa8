"""NLU evaluation: metrics on hand-made predictions, reports, cross-validation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bot.config import load_config
from bot.evaluation.nlu import (
    NLUEvaluation,
    Prediction,
    cross_validate,
    evaluate,
    write_reports,
)
from bot.nlu.fallback import FALLBACK_INTENT
from bot.nlu.pipeline import NLUPipeline
from bot.project import Project
from bot.train import load_training_data
from bot.training import read_nlu_file
from bot.training.data import EntityAnnotation, Example, Source

PNG = b"\x89PNG\r\n\x1a\n"


def pred(
    text: str,
    gold: str,
    got: str | None,
    conf: float = 0.9,
    gold_ents: tuple[EntityAnnotation, ...] = (),
    ents: list[dict[str, Any]] | None = None,
    top: str | None = None,
) -> Prediction:
    return Prediction(
        Example(text, gold, gold_ents, Source("t.yml", 3)), got, conf, top or got, ents or []
    )


CARD = EntityAnnotation("card_last4", "1234", 2, 6, "1234")


@pytest.fixture
def evaluation() -> NLUEvaluation:
    return NLUEvaluation(
        [
            pred(
                "尾号1234",
                "query_balance",
                "query_balance",
                gold_ents=(CARD,),
                ents=[{"entity": "card_last4", "start": 2, "end": 6, "value": "1234"}],
            ),
            pred(
                "尾号1234",
                "query_balance",
                "query_balance",
                gold_ents=(CARD,),
                ents=[{"entity": "card_last4", "start": 1, "end": 6, "value": "号1234"}],
            ),
            pred("你好", "greet", "greet"),
            pred("嗯", "greet", FALLBACK_INTENT, 0.4, top="greet"),
            pred(
                "丢了",
                "report_loss",
                "greet",
                0.6,
                ents=[{"entity": "amount", "start": 0, "end": 1, "value": 1}],
            ),
        ]
    )


def test_intent_metrics(evaluation: NLUEvaluation) -> None:
    assert evaluation.accuracy == pytest.approx(3 / 5)
    report = evaluation.intent_report()
    assert report["accuracy"] == pytest.approx(3 / 5)
    assert report["accuracy_without_fallback"] == pytest.approx(4 / 5)
    assert report["fallback_rate"] == pytest.approx(1 / 5)
    assert set(report) >= {"query_balance", "greet", "report_loss", "macro avg", "weighted avg"}
    assert FALLBACK_INTENT not in report  # only the labels of the test data get rows
    assert report["greet"]["recall"] == pytest.approx(1 / 2)
    assert report["greet"]["precision"] == pytest.approx(1 / 2)
    assert report["report_loss"]["f1-score"] == 0.0
    # macro-F1 over the test labels: qb 1.0, greet 0.5, report_loss 0.0
    assert evaluation.macro_f1 == pytest.approx(0.5)


def test_intent_errors(evaluation: NLUEvaluation) -> None:
    errors = evaluation.intent_errors()
    assert [(e["text"], e["intent"], e["intent_prediction"]["name"]) for e in errors] == [
        ("嗯", "greet", FALLBACK_INTENT),
        ("丢了", "report_loss", "greet"),
    ]
    assert errors[0]["source"] == "t.yml:3"


def test_entity_metrics_use_exact_spans(evaluation: NLUEvaluation) -> None:
    counts = evaluation.entity_counts()
    assert counts["card_last4"] == {"tp": 1, "fp": 1, "fn": 1}
    assert counts["amount"] == {"tp": 0, "fp": 1, "fn": 0}
    report = evaluation.entity_report()
    assert report["card_last4"]["precision"] == 0.5
    assert report["card_last4"]["recall"] == 0.5
    assert report["card_last4"]["support"] == 2
    assert report["micro avg"]["precision"] == pytest.approx(round(1 / 3, 4))
    assert report["micro avg"]["recall"] == 0.5
    assert evaluation.entity_f1 == pytest.approx(0.4, abs=1e-4)
    assert len(report["entity_errors"]) == 2


def test_empty_evaluation_does_not_divide_by_zero() -> None:
    empty = NLUEvaluation()
    assert empty.accuracy == 0.0
    assert empty.entity_f1 == 0.0


def test_overlap_with_training(evaluation: NLUEvaluation) -> None:
    evaluation.training_texts = frozenset({"你好", "嗯"})
    overlap = evaluation.overlap()
    assert overlap["also_in_training"] == 2
    assert overlap["unseen"] == 3
    assert overlap["unseen_intent_accuracy"] == pytest.approx(round(2 / 3, 4))


def test_write_reports(evaluation: NLUEvaluation, tmp_path: Path) -> None:
    out = tmp_path / "deep" / "results"
    write_reports(evaluation, out, ["RegexEntityExtractor"])
    for name in ("intent_confusion_matrix.png", "intent_histogram.png"):
        assert (out / name).read_bytes().startswith(PNG)
    report = json.loads((out / "intent_report.json").read_text(encoding="utf-8"))
    assert report["accuracy"] == pytest.approx(0.6)
    errors = json.loads((out / "intent_errors.json").read_text(encoding="utf-8"))
    assert len(errors) == 2 and errors[0]["text"] == "嗯"  # Chinese stays readable
    entity = json.loads((out / "entity_report.json").read_text(encoding="utf-8"))
    assert entity["card_last4"]["support"] == 2
    assert json.loads((out / "RegexEntityExtractor_report.json").read_text()) == entity
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["n"] == 5 and summary["intent_accuracy"] == 0.6


def test_evaluate_runs_the_pipeline(tiny_model: Any) -> None:
    test = read_nlu_file(tiny_model.root / "tests" / "data" / "nlu_test.yml")
    result = evaluate(tiny_model.model.nlu, test.examples)
    assert len(result.predictions) == 5
    for p in result.predictions:
        parsed = tiny_model.model.nlu.parse(p.example.text)
        assert p.intent == parsed["intent"]["name"]
        assert p.entities == parsed["entities"]
    assert result.accuracy >= 0.6
    assert result.entity_counts()["card_last4"]["tp"] == 1


def test_cross_validation_covers_every_example_once(tiny_project: Path) -> None:
    project = Project(tiny_project)
    data = load_training_data(project)
    config = load_config(project.config_file)
    folds: list[tuple[int, int]] = []
    cv = cross_validate(
        data,
        lambda: NLUPipeline.from_config(config, project.root),
        2,
        lambda i, n: folds.append((i, n)),
    )
    assert folds == [(1, 2), (2, 2)]
    assert len(cv.accuracy) == len(cv.macro_f1) == len(cv.entity_f1) == 2
    texts = sorted(p.example.text for p in cv.pooled.predictions)
    assert texts == sorted(e.text for e in data.examples)
    summary = cv.summary()
    assert summary["folds"] == 2
    assert set(summary["test"]) == {"intent_accuracy", "intent_macro_f1", "entity_f1"}
    for stat in summary["test"].values():
        assert 0.0 <= stat["mean"] <= 1.0 and stat["std"] >= 0.0
    assert summary["train"]["intent_accuracy"]["mean"] >= summary["test"]["intent_accuracy"]["mean"]
