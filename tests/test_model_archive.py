"""Model archives: contents, fingerprint-based skipping, loading on their own."""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from pathlib import Path
from typing import Any

import pytest

from bot.config import load_config
from bot.errors import ConfigError, ModelNotFoundError
from bot.model import latest_model, load_model, read_meta, save_model, training_fingerprint
from bot.model.archive import FORMAT_VERSION
from bot.nlu.pipeline import NLUPipeline
from bot.project import Project
from bot.train import load_training_data, train, train_nlu_pipeline

PROBES = ["查下尾号5678的工资卡余额", "你好", "我的储蓄卡丢了", "转500元", "", "😀 hello"]


def members(archive: Path) -> set[str]:
    with tarfile.open(archive, "r:gz") as tar:
        return set(tar.getnames())


def meta_json(archive: Path) -> dict[str, Any]:
    with tarfile.open(archive, "r:gz") as tar:
        member = tar.extractfile("model.json")
        assert member is not None
        data: dict[str, Any] = json.load(io.TextIOWrapper(member, encoding="utf-8"))
        return data


def test_archive_layout(tiny_model: Any) -> None:
    names = members(tiny_model.archive)
    assert "model.json" in names
    assert "nlu/pipeline.json" in names
    components = [c.name for c in tiny_model.model.nlu.components]
    folders = {n.split("/")[1] for n in names if n.count("/") >= 1 and n.startswith("nlu/")}
    assert {f"{i}_{name}" for i, name in enumerate(components)} <= folders
    for i, name in enumerate(components):
        assert f"nlu/{i}_{name}" in names  # one folder per component, even when empty
    assert "nlu/4_LogisticRegressionClassifier/calibration.json" in names
    assert "nlu/1_JiebaTokenizer/userdict.txt" in names
    assert tiny_model.archive.parent == tiny_model.root / "models"
    assert not list((tiny_model.root / "models").glob("*.partial"))


def test_model_json_holds_resolved_config_and_fingerprint(tiny_model: Any) -> None:
    meta = meta_json(tiny_model.archive)
    project = Project(tiny_model.root)
    config = load_config(project.config_file)
    assert meta["format_version"] == FORMAT_VERSION
    assert meta["fingerprints"]["nlu"] == training_fingerprint(project, config)
    pipeline = meta["config"]["pipeline"]
    assert [c["name"] for c in pipeline] == [s.name for s in config.pipeline]
    clf = pipeline[4]
    assert clf["name"] == "LogisticRegressionClassifier"
    assert clf["C"] == 20.0 and clf["calibration_folds"] == 5  # defaults filled in
    assert pipeline[1]["dictionary_path"] == "nlu_data/userdict.txt"
    assert "project_root" not in json.dumps(pipeline)
    assert meta["config"]["language"] == "zh"
    assert meta["training"]["examples"] == 18
    assert meta["training"]["intents"] == ["greet", "query_balance", "report_loss"]
    assert read_meta(tiny_model.archive).fingerprint == meta["fingerprint"]
    assert tiny_model.archive.name.endswith(f"-{meta['fingerprint'][:8]}.tar.gz")


def test_second_train_is_skipped_and_changes_retrain(tiny_project: Path) -> None:
    project = Project(tiny_project)
    first = train(project)
    assert not first.skipped and first.examples == 18 and first.intents == 3
    again = train(project)
    assert again.skipped and again.archive == first.archive
    assert len(list(project.models_dir.glob("*.tar.gz"))) == 1

    nlu_file = tiny_project / "nlu_data" / "intents.yml"
    nlu_file.write_text(nlu_file.read_text(encoding="utf-8") + "    - 晚上好\n", encoding="utf-8")
    changed = train(project)
    assert not changed.skipped and changed.examples == 19
    assert latest_model(project.models_dir) == changed.archive
    assert load_model(project.models_dir).path == changed.archive
    assert train(project).skipped

    forced = train(project, force=True)
    assert not forced.skipped and forced.archive != changed.archive
    assert latest_model(project.models_dir) == forced.archive


@pytest.mark.parametrize(
    ("path", "edit"),
    [
        ("nlu_data/userdict.txt", lambda t: t + "挂失卡 3000\n"),  # default dictionary_path
        ("config.yml", lambda t: t.replace("threshold: 0.3", "threshold: 0.35")),
        ("nlu_data/extra.yaml", lambda t: "nlu:\n- intent: greet\n  examples: |\n    - 嘿\n"),
    ],
)
def test_what_the_fingerprint_covers(tiny_project: Path, path: str, edit: Any) -> None:
    project = Project(tiny_project)
    before = training_fingerprint(project, load_config(project.config_file))
    target = tiny_project / path
    target.write_text(
        edit(target.read_text(encoding="utf-8") if target.exists() else ""), encoding="utf-8"
    )
    after = training_fingerprint(project, load_config(project.config_file))
    assert after != before


def test_fingerprint_ignores_unrelated_files(tiny_project: Path) -> None:
    project = Project(tiny_project)
    before = training_fingerprint(project, load_config(project.config_file))
    (tiny_project / "README.md").write_text("notes", encoding="utf-8")
    (tiny_project / "tests" / "data" / "nlu_test.yml").write_text("nlu: []\n", encoding="utf-8")
    assert training_fingerprint(project, load_config(project.config_file)) == before


def test_loaded_archive_parses_like_the_trained_pipeline(
    tiny_project: Path, tmp_path: Path
) -> None:
    project = Project(tiny_project)
    data = load_training_data(project)
    pipeline = train_nlu_pipeline(project, data)
    archive = save_model(tmp_path / "a", pipeline, "f" * 64, {"language": "zh"}, {})
    alone = tmp_path / "elsewhere"
    alone.mkdir()
    copied = Path(shutil.copy(archive, alone / archive.name))
    shutil.rmtree(tiny_project)  # the project is not needed to load the model
    loaded = load_model(copied)
    assert loaded.path == copied
    assert loaded.meta.fingerprint == "f" * 64
    assert [c.name for c in loaded.nlu.components] == [c.name for c in pipeline.components]
    for text in PROBES:
        assert loaded.nlu.parse(text) == pipeline.parse(text)
    # loading twice (from the unpacked cache) gives the same again
    assert load_model(copied).nlu.parse(PROBES[0]) == pipeline.parse(PROBES[0])


def test_latest_model_follows_training_order_within_one_second(
    tiny_model: Any, tmp_path: Path
) -> None:
    pipeline = tiny_model.model.nlu
    first = save_model(tmp_path, pipeline, "f" * 64, {}, {})
    second = save_model(tmp_path, pipeline, "0" * 64, {}, {})  # sorts before "f" by fingerprint
    assert first != second
    assert latest_model(tmp_path) == second
    assert load_model(tmp_path).meta.fingerprint == "0" * 64


def test_no_model_is_a_clear_error(tmp_path: Path) -> None:
    assert latest_model(tmp_path / "missing") is None
    with pytest.raises(ModelNotFoundError, match="bot train"):
        load_model(tmp_path)
    with pytest.raises(ModelNotFoundError, match="bot train"):
        load_model(tmp_path / "nothing.tar.gz")


def test_other_format_version_is_refused(tiny_model: Any, tmp_path: Path) -> None:
    archive = tmp_path / "20200101-000000-oldmodel.tar.gz"
    with tarfile.open(tiny_model.archive, "r:gz") as src, tarfile.open(archive, "w:gz") as dst:
        for member in src.getmembers():
            payload = src.extractfile(member) if member.isfile() else None
            if member.name == "model.json" and payload is not None:
                meta = json.load(payload)
                meta["format_version"] = FORMAT_VERSION - 1
                raw = json.dumps(meta).encode()
                member.size = len(raw)
                payload = io.BytesIO(raw)
            dst.addfile(member, payload)
    with pytest.raises(ModelNotFoundError, match="retrain"):
        load_model(archive)


def test_unknown_component_in_config_stops_training(tiny_project: Path) -> None:
    config = tiny_project / "config.yml"
    config.write_text(
        config.read_text(encoding="utf-8").replace(
            "- name: EntitySynonymMapper", "- name: EntitySynonymMaper"
        ),
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="unknown pipeline component 'EntitySynonymMaper'"):
        train(Project(tiny_project))
    assert not (tiny_project / "models").exists() or not list(
        (tiny_project / "models").glob("*.tar.gz")
    )


def test_pipeline_persist_and_load_round_trip(tiny_model: Any, tmp_path: Path) -> None:
    tiny_model.model.nlu.persist(tmp_path / "nlu")
    again = NLUPipeline.load(tmp_path / "nlu")
    for text in PROBES:
        assert again.parse(text) == tiny_model.model.nlu.parse(text)
