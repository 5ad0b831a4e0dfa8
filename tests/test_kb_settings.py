"""The knowledge_base section of config.yml, the calibrator and the gap log."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from kb_helpers import REPO

from bot.errors import ConfigError
from bot.kb.calibration import FEATURES, Calibrator, feature_matrix
from bot.kb.gaps import GapLog
from bot.kb.settings import KBSettings, read_settings


def test_shipped_config_section_is_valid() -> None:
    settings = read_settings(REPO / "config.yml")
    assert settings.embedder["name"] == "tfidf_svd" and settings.index == "auto"
    t = settings.thresholds
    assert 0 < t.candidate <= t.clarify < t.answer <= 1


def test_section_or_whole_config_and_defaults() -> None:
    whole = KBSettings.from_config({"language": "zh", "knowledge_base": {"index": "flat"}})
    assert whole.index == "flat"
    assert KBSettings.from_config({"index": "hnsw"}).index == "hnsw"
    assert KBSettings.from_config({"language": "zh"}) == KBSettings()
    assert KBSettings.from_config({"knowledge_base": {"embedder": "tfidf_svd"}}).embedder == {
        "name": "tfidf_svd"
    }


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"indx": "flat"}, "unknown option 'knowledge_base.indx'"),
        ({"thresholds": {"answer": 2}}, "must be a number in"),
        ({"thresholds": {"anwser": 0.5}}, "unknown option 'knowledge_base.thresholds.anwser'"),
        ({"embedder": {"dimensions": 3}}, "needs a 'name'"),
        ({"flat_max_vectors": "many"}, "whole number"),
    ],
)
def test_bad_settings_name_the_option(section: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        KBSettings.from_config({"knowledge_base": section})


def test_calibrator_is_monotone_and_round_trips(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    dense = rng.random(400).astype(np.float32)
    x = feature_matrix(dense, dense * 0.5, np.zeros(400, np.float32), np.zeros(400, np.float32))
    assert x.shape == (400, len(FEATURES))
    y = (dense + 0.2 * rng.standard_normal(400) > 0.6).astype(np.int64)
    calibrator = Calibrator.fit(x, y, queries=100)
    assert (calibrator.weights >= 0).all() and calibrator.fitted_on == 100
    probs = calibrator(x)
    assert ((probs >= 0) & (probs <= 1)).all()
    assert probs[np.argmax(dense)] > probs[np.argmin(dense)]
    calibrator.save(tmp_path)
    assert np.allclose(Calibrator.load(tmp_path)(x), probs, atol=1e-5)
    assert Calibrator.fit(x[:5], y[:5], queries=3).fitted_on == 0  # too little: defaults


def test_gap_log_masks_and_appends(tmp_path: Path) -> None:
    log = GapLog.in_dir(tmp_path)
    log.record("我的卡号6222021234567890123 身份证110101199003077758", [("a", "问", 0.12345)])
    log.record("第二条", [], channel="app")
    (tmp_path / "gaps.jsonl").open("a").write("not json\n")
    items = list(log.read())
    assert len(items) == 2
    assert "6222021234567890123" not in items[0]["query"] and items[0]["query"].count("*") >= 8
    assert items[0]["candidates"] == [{"id": "a", "question": "问", "score": 0.1235}]
    assert items[1]["channel"] == "app"
    raw = (tmp_path / "gaps.jsonl").read_text(encoding="utf-8").splitlines()[0]
    assert json.loads(raw)["timestamp"]
