"""``bot kb build | search | eval | import | gaps`` through the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from kb_helpers import REPO, write_library_kb

from bot.cli.main import main


@pytest.fixture
def kb_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The library KB in a folder outside any project (default settings)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BOT_PROJECT", raising=False)
    return write_library_kb(tmp_path)


def test_build_then_skip(kb_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["kb", "build", "--kb-dir", str(kb_dir)]) == 0
    assert "Built 7 entries" in capsys.readouterr().out
    assert (kb_dir / "build" / "dense.faiss").is_file()
    assert main(["kb", "build", "--kb-dir", str(kb_dir)]) == 0
    assert "unchanged" in capsys.readouterr().out
    assert main(["kb", "build", "--kb-dir", str(kb_dir), "--force"]) == 0
    assert "Built 7 entries" in capsys.readouterr().out


def test_search_json_builds_first(kb_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["kb", "search", "书丢了要赔钱吗", "--top", "3", "--json", "--kb-dir", str(kb_dir)]
    assert main(args) == 0
    hits = json.loads(capsys.readouterr().out)
    assert len(hits) == 3 and hits[0]["id"] == "lost_book"
    assert all(set(h) == {"id", "question", "answer", "category", "score"} for h in hits)
    assert main(["kb", "search", "书丢了要赔钱吗", "--kb-dir", str(kb_dir)]) == 0
    out = capsys.readouterr().out
    assert "1. " in out and "lost_book" in out and "decision:" in out


def test_search_by_subprocess(kb_dir: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bot",
            "kb",
            "search",
            "周一闭馆吗",
            "--json",
            "--kb-dir",
            str(kb_dir),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=kb_dir.parent,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)[0]["id"] == "opening_hours"


def test_eval_prints_and_writes_json(kb_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tsv = kb_dir.parent / "eval.tsv"
    tsv.write_text(
        "query\ttopic_id\n借书要带什么\tborrow_books\nwifi连不上\twifi\n几点关门\topening_hours\n"
        "怎么续借\trenew_books\n",
        encoding="utf-8",
    )
    out_dir = kb_dir.parent / "out"
    code = main(["kb", "eval", str(tsv), "--out", str(out_dir), "--kb-dir", str(kb_dir)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "top1=" in printed and "recall@5=" in printed and "mrr=" in printed
    data = json.loads((out_dir / "kb_eval.json").read_text(encoding="utf-8"))
    assert data["n"] == 4 and {"top1", "recall@5", "mrr", "misses"} <= set(data)
    assert 0.0 <= data["top1"] <= 1.0 and data["recall@5"] >= data["top1"]


def test_eval_rejects_a_bad_file(kb_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tsv = kb_dir.parent / "bad.tsv"
    tsv.write_text("question\tanswer\nx\ty\n", encoding="utf-8")
    assert main(["kb", "eval", str(tsv), "--kb-dir", str(kb_dir)]) == 1
    assert "query<TAB>topic_id" in capsys.readouterr().err


HEADER = "id\tquestion\tsimilar_questions\tanswer\tcategory\n"


def test_import_reports_bad_rows_and_writes_nothing(
    kb_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tsv = kb_dir.parent / "new.tsv"
    tsv.write_text(
        HEADER
        + "printing\t能打印吗\t哪里打印|复印多少钱\t二楼。\t服务\n"
        + "broken\tonly\ttwo\n"
        + "wifi\t网络\t\t有\t服务\n"  # id already in library.yml
        + "printing\t重复\t\t答\t服务\n",  # id repeated in the file
        encoding="utf-8",
    )
    assert main(["kb", "import", str(tsv), "--kb-dir", str(kb_dir)]) == 1
    err = capsys.readouterr().err
    assert f"{tsv}:3: error: 3 column(s), expected 5" in err
    assert f"{tsv}:4: error: duplicate id 'wifi': already defined at" in err
    assert f"{tsv}:5: error: duplicate id 'printing'" in err
    assert "nothing imported" in err
    assert not (kb_dir / "sources" / "imported.yml").exists()


def test_import_merges_and_builds(kb_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    tsv = kb_dir.parent / "new.tsv"
    tsv.write_text(
        HEADER
        + "printing\t馆内可以打印吗\t哪里能打印|复印一页多少钱|能扫描吗|打印机在哪\t二楼。\t服务\n",
        encoding="utf-8",
    )
    assert main(["kb", "import", str(tsv), "--kb-dir", str(kb_dir)]) == 0
    assert "Imported 1 new and 0 updated" in capsys.readouterr().out
    tsv.write_text(
        HEADER
        + "printing\t馆内可以打印吗\t哪里能打印|复印一页多少钱|能扫描吗|打印机在哪\t三楼。\t服务\n"
        + "lockers\t有存包柜吗\t包能寄存吗|书包放哪里|储物柜怎么用|怎么借书\t一楼。\t服务\n",
        encoding="utf-8",
    )
    assert main(["kb", "import", str(tsv), "--kb-dir", str(kb_dir)]) == 0
    captured = capsys.readouterr()
    assert "Imported 1 new and 1 updated" in captured.out
    assert "duplicate question '怎么借书'" in captured.err  # a warning: still imported
    text = (kb_dir / "sources" / "imported.yml").read_text(encoding="utf-8")
    assert "三楼。" in text and "二楼。" not in text and "lockers" in text
    assert main(["kb", "search", "打印机在几楼", "--json", "--kb-dir", str(kb_dir)]) == 0
    assert json.loads(capsys.readouterr().out)[0]["id"] == "printing"


def test_gaps_lists_logged_questions(kb_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["kb", "gaps", "--kb-dir", str(kb_dir)]) == 0
    assert "No knowledge gaps" in capsys.readouterr().out
    from bot.kb import KnowledgeBase, build_knowledge_base
    from bot.kb.settings import KBSettings

    build_knowledge_base(kb_dir, {}, None, progress=False)
    kb = KnowledgeBase.load(kb_dir, KBSettings())
    assert kb.decide("股票明天涨不涨 电话13912345678").kind == "none"
    assert main(["kb", "gaps", "--kb-dir", str(kb_dir)]) == 0
    out = capsys.readouterr().out
    assert "股票明天涨不涨" in out and "139****5678" in out and "1 gap(s)" in out
    assert main(["kb", "gaps", "--json", "--kb-dir", str(kb_dir)]) == 0
    item = json.loads(capsys.readouterr().out.splitlines()[0])
    assert {"timestamp", "query", "candidates"} <= set(item)


def test_default_kb_dir_is_the_projects(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = tmp_path / "proj"
    write_library_kb(project, "kb_index")
    (project / "config.yml").write_text(
        "language: zh\npipeline:\n  - name: JiebaTokenizer\n"
        "knowledge_base:\n  thresholds:\n    answer: 0.5\n",
        encoding="utf-8",
    )
    assert main(["kb", "build", "--project", str(project)]) == 0
    assert (project / "kb_index" / "build" / "meta.json").is_file()
    capsys.readouterr()
    assert main(["kb", "search", "借书要带什么", "--json", "--project", str(project)]) == 0
    assert json.loads(capsys.readouterr().out)[0]["id"] == "borrow_books"
