"""Entity F1 per extractor (``<Extractor>_report.json``) with roles counted as Rasa does
(``entity#role``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bot.evaluation.nlu import NLUEvaluation, Prediction, entity_extractors, write_reports
from bot.training.data import EntityAnnotation, Example
from tests.nlu_helpers import build

FROM = EntityAnnotation("city", "上海", 1, 3, "上海", role="from")
TO = EntityAnnotation("city", "北京", 4, 6, "北京", role="to")


def ent(start: int, end: int, extractor: str, role: str | None = None) -> dict[str, object]:
    out: dict[str, object] = {
        "entity": "city",
        "start": start,
        "end": end,
        "value": "x",
        "extractor": extractor,
    }
    if role:
        out["role"] = role
    return out


def evaluation() -> NLUEvaluation:
    example = Example("从上海到北京", "transfer", (FROM, TO))
    return NLUEvaluation(
        [
            Prediction(
                example,
                "transfer",
                0.9,
                "transfer",
                [
                    ent(1, 3, "CRFEntityExtractor", "from"),
                    ent(4, 6, "CRFEntityExtractor", "from"),  # right span, wrong role
                    ent(4, 6, "RegexEntityExtractor"),  # no role: city, not city#to
                ],
            )
        ]
    )


def test_roles_count_as_entity_and_role() -> None:
    report = evaluation().entity_report("CRFEntityExtractor")
    assert report["city#from"] == {
        "precision": 0.5,
        "recall": 1.0,
        "f1-score": 0.6667,
        "support": 1,
    }
    assert report["city#to"]["recall"] == 0.0


def test_reports_per_extractor(tmp_path: Path) -> None:
    result = evaluation()
    write_reports(result, tmp_path, ["CRFEntityExtractor", "RegexEntityExtractor"])
    crf = json.loads((tmp_path / "CRFEntityExtractor_report.json").read_text("utf-8"))
    regex = json.loads((tmp_path / "RegexEntityExtractor_report.json").read_text("utf-8"))
    assert crf["micro avg"]["f1-score"] == 0.5
    assert regex["micro avg"]["precision"] == 0.0
    summary = json.loads((tmp_path / "summary.json").read_text("utf-8"))
    assert summary["entity_f1_per_extractor"] == {
        "CRFEntityExtractor": 0.5,
        "RegexEntityExtractor": 0.0,
    }


def test_entity_extractors_of_a_pipeline() -> None:
    nlu = build(
        [
            {"name": "JiebaTokenizer"},
            {"name": "RegexEntityExtractor"},
            {"name": "DIETClassifier"},
            {"name": "MitieEntityExtractor"},
            {"name": "EntitySynonymMapper"},
        ]
    )
    assert entity_extractors(nlu) == [
        "RegexEntityExtractor",
        "DIETClassifier",
        "MitieEntityExtractor",
    ]


def test_bot_test_nlu_prints_f1_per_extractor(
    tiny_model: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.cli.main import main

    out = tmp_path / "results"
    test_file = tiny_model.root / "tests" / "data" / "nlu_test.yml"
    assert (
        main(
            [
                "test",
                "nlu",
                "--project",
                str(tiny_model.root),
                "--nlu",
                str(test_file),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "RegexEntityExtractor: entity F1" in printed
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert set(summary["entity_f1_per_extractor"]) == {"RegexEntityExtractor"}


def test_a_role_and_the_same_span_without_one_count_once_in_the_combined_report() -> None:
    """The parse result keeps a learned entity with a role beside the rule-based entity
    without one on the same span (for the slot mappings); scored together they are one."""
    example = Example("从上海到北京", "transfer", (FROM, TO))
    result = NLUEvaluation(
        [
            Prediction(
                example,
                "transfer",
                0.9,
                "transfer",
                [
                    ent(1, 3, "CRFEntityExtractor", "from"),
                    ent(1, 3, "RegexEntityExtractor"),
                    ent(4, 6, "CRFEntityExtractor", "to"),
                    ent(4, 6, "RegexEntityExtractor"),
                ],
            )
        ]
    )
    assert result.entity_report()["micro avg"]["f1-score"] == 1.0
    assert result.entity_report("RegexEntityExtractor")["micro avg"]["precision"] == 0.0
