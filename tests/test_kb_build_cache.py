"""Fast rebuilds: the per-text analysis cache and incremental builds after a small change."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kb_helpers import LIBRARY_YML, write_library_kb

from bot.kb import KnowledgeBase, build_knowledge_base
from bot.kb.build import CACHE_DIR, read_meta
from bot.kb.settings import KBSettings


def test_one_changed_entry_rebuilds_incrementally(tmp_path: Path) -> None:
    kb_dir = write_library_kb(tmp_path)
    first = build_knowledge_base(kb_dir, {}, None, progress=False)
    first_id = read_meta(first.build_dir)["build_id"]
    assert read_meta(first.build_dir)["incremental"] is None
    cache = json.loads((kb_dir / CACHE_DIR / "analysis.json").read_text(encoding="utf-8"))
    assert "怎么借书？" in cache["items"]

    source = kb_dir / "sources" / "library.yml"
    source.write_text(LIBRARY_YML.replace("免费使用。", "免费使用，限速10M。"), encoding="utf-8")
    again = build_knowledge_base(kb_dir, {}, None, progress=False)
    meta = read_meta(again.build_dir)
    assert not again.skipped and meta["incremental"]["changed_entries"] == 1
    assert meta["incremental"]["from_build"] == first_id
    kb = KnowledgeBase.load(kb_dir, KBSettings())
    hit = kb.search("wifi密码是多少", top=1)[0]
    assert hit.id == "wifi" and "限速10M" in hit.answer

    forced = build_knowledge_base(kb_dir, {}, None, force=True, progress=False)
    assert read_meta(forced.build_dir)["incremental"] is None


def test_many_changes_refit_everything(tmp_path: Path) -> None:
    kb_dir = write_library_kb(tmp_path)
    build_knowledge_base(kb_dir, {}, None, progress=False)
    changed = LIBRARY_YML.replace("借期30天", "借期45天").replace("9:00-21:00", "8:30-21:00")
    (kb_dir / "sources" / "library.yml").write_text(changed, encoding="utf-8")
    result = build_knowledge_base(kb_dir, {}, None, progress=False)
    assert read_meta(result.build_dir)["incremental"] is None  # 2 of 7 entries: a full build
    kb = KnowledgeBase.load(kb_dir, KBSettings())
    assert "8:30" in kb.search("周末几点开门", top=1)[0].answer


def test_other_settings_never_reuse_the_previous_build(tmp_path: Path) -> None:
    kb_dir = write_library_kb(tmp_path)
    build_knowledge_base(kb_dir, {}, None, progress=False)
    source = kb_dir / "sources" / "library.yml"
    source.write_text(LIBRARY_YML.replace("免费使用。", "免费。"), encoding="utf-8")
    result = build_knowledge_base(kb_dir, {"index": "flat"}, None, progress=False)
    assert read_meta(result.build_dir)["incremental"] is None


def test_incremental_build_keeps_the_refined_classifier(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import numpy as np

    from bot.kb import classifier

    monkeypatch.setattr(classifier, "WARM_EPOCHS", 0)  # warm start only: unchanged columns stay
    kb_dir = write_library_kb(tmp_path)
    first = build_knowledge_base(kb_dir, {}, None, progress=False)
    before = classifier.EntryClassifier.load(first.build_dir)
    source = kb_dir / "sources" / "library.yml"
    source.write_text(LIBRARY_YML.replace("免费使用。", "免费使用，限速10M。"), encoding="utf-8")
    again = build_knowledge_base(kb_dir, {}, None, progress=False)
    assert read_meta(again.build_dir)["incremental"]["changed_entries"] == 1
    after = classifier.EntryClassifier.load(again.build_dir)
    assert after.featurizer.words.vocab == before.featurizer.words.vocab
    same = [c for c in range(before.classes.size) if c != 0]
    kept = sum(
        np.allclose(after.weights[:, c].toarray(), before.weights[:, c].toarray()) for c in same
    )
    assert kept >= len(same) - 1  # every entry but the changed one keeps its refined weights


def test_incremental_build_keeps_an_hnsw_index_while_its_rows_line_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A one-entry change keeps the previous HNSW index when every entry keeps its number of
    questions (the changed rows count as stale, and the changed entry is still found by its
    new wording); a change in the number of questions, or too many stale rows, rebuilds it."""
    from bot.kb import build
    from bot.kb.index import DenseIndex

    built: list[int] = []
    real_build = DenseIndex.build.__func__  # type: ignore[attr-defined]

    def counting(cls: type[DenseIndex], vectors: object, *args: object, **kw: object) -> object:
        built.append(1)
        return real_build(cls, vectors, *args, **kw)

    monkeypatch.setattr(DenseIndex, "build", classmethod(counting))
    monkeypatch.setattr(build, "INDEX_STALE_MAX", 0.05)
    config = {"index": "hnsw"}
    kb_dir = write_library_kb(tmp_path)
    source = kb_dir / "sources" / "library.yml"
    build_knowledge_base(kb_dir, config, None, progress=False)
    assert len(built) == 1

    # an answer changed: no question row changed, the index is kept as it is
    source.write_text(LIBRARY_YML.replace("免费使用。", "免费使用，限速10M。"), encoding="utf-8")
    result = build_knowledge_base(kb_dir, config, None, progress=False)
    meta = read_meta(result.build_dir)
    assert meta["incremental"]["changed_entries"] == 1 and len(built) == 1
    assert meta["index"] == {"kind": "hnsw", "vectors": meta["variants"], "stale_rows": 0}

    # one question reworded: its row is stale in the kept index, the entry is still found
    reworded = LIBRARY_YML.replace("免费使用。", "免费使用，限速10M。").replace(
        "自助借书机怎么用", "自助借阅终端如何操作"
    )
    source.write_text(reworded, encoding="utf-8")
    result = build_knowledge_base(kb_dir, config, None, progress=False)
    assert len(built) == 1 and read_meta(result.build_dir)["index"]["stale_rows"] == 1
    kb = KnowledgeBase.load(kb_dir, KBSettings.from_config(config))
    assert kb.search("自助借阅终端如何操作", top=1)[0].id == "borrow_books"

    # one more question: the rows no longer line up, the index is rebuilt
    source.write_text(
        reworded.replace("      - 借书要押金吗\n", "      - 借书要押金吗\n      - 借书收费吗\n"),
        encoding="utf-8",
    )
    result = build_knowledge_base(kb_dir, config, None, progress=False)
    meta = read_meta(result.build_dir)
    assert meta["incremental"]["changed_entries"] == 1
    assert len(built) == 2 and meta["index"]["stale_rows"] == 0

    # stale rows add up over builds: past the limit the index is rebuilt
    monkeypatch.setattr(build, "INDEX_STALE_MAX", 0.0)
    source.write_text(
        source.read_text(encoding="utf-8").replace("借书收费吗", "借书要钱吗"), encoding="utf-8"
    )
    result = build_knowledge_base(kb_dir, config, None, progress=False)
    assert len(built) == 3 and read_meta(result.build_dir)["index"]["stale_rows"] == 0


def test_meta_records_wall_and_cpu_seconds_per_stage(tmp_path: Path) -> None:
    kb_dir = write_library_kb(tmp_path)
    result = build_knowledge_base(kb_dir, {}, None, progress=False)
    meta = read_meta(result.build_dir)
    wall, cpu = meta["stage_seconds"], meta["stage_cpu_seconds"]
    assert set(wall) == set(cpu) and {"tokenising", "calibration", "classifier"} <= set(cpu)
    assert all(v >= 0 for v in cpu.values()) and sum(cpu.values()) > 0


def test_incremental_build_continues_the_low_rank_model_at_the_warm_rate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full build trains the low-rank model at the full rate; an incremental one continues
    the previous model at the (lower) warm rate, so a few rows cannot pull it their way."""
    from bot.kb import lowrank

    rates: list[object] = []
    real_fit = lowrank.LowRankSoftmax.fit.__func__  # type: ignore[attr-defined]

    def spy(cls: type, *args: object, **kw: object) -> object:
        rates.append((kw.get("rate"), kw.get("start") is not None))
        return real_fit(cls, *args, **kw)

    monkeypatch.setattr(lowrank.LowRankSoftmax, "fit", classmethod(spy))
    kb_dir = write_library_kb(tmp_path)
    build_knowledge_base(kb_dir, {}, None, progress=False)
    assert rates and all(rate is None and not warm for rate, warm in rates)  # RATE, fresh
    rates.clear()
    source = kb_dir / "sources" / "library.yml"
    source.write_text(LIBRARY_YML.replace("借书要押金吗", "借书要交押金吗"), encoding="utf-8")
    build_knowledge_base(kb_dir, {}, None, progress=False)
    assert rates == [(lowrank.WARM_RATE, True)] and lowrank.WARM_RATE < lowrank.RATE
