"""``bot kb lint`` and the checks it shares with the importer (near-duplicate questions)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
from kb_helpers import write_library_kb
from sklearn.feature_extraction.text import TfidfVectorizer

from bot.cli.main import main
from bot.kb.collisions import fold, near_duplicates
from bot.kb.lint import LintSettings, check_entries, lint_kb
from bot.kb.sources import KBEntry


@pytest.fixture
def kb_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BOT_PROJECT", raising=False)
    return write_library_kb(tmp_path)


def add_source(kb_dir: Path, name: str, text: str) -> Path:
    path = kb_dir / "sources" / name
    path.write_text(text, encoding="utf-8")
    return path


def test_near_duplicates_equal_the_brute_force_pairs() -> None:
    rng = random.Random(7)
    products = ["信用卡", "储蓄卡", "房贷", "理财", "手机银行", "转账", "外汇"]
    actions = ["怎么申请", "如何办理", "挂失", "激活", "限额", "手续费", "利率"]
    ends = ["", "吗", "呢", "？", "啊"]
    texts = [
        rng.choice(["", "请问", "我想问"])
        + rng.choice(products)
        + rng.choice(actions)
        + rng.choice(ends)
        for _ in range(600)
    ]
    owners = [i // 4 for i in range(len(texts))]
    folded = [fold(t) for t in texts]
    x = TfidfVectorizer(
        analyzer="char",
        ngram_range=(1, 3),
        sublinear_tf=True,
        lowercase=False,
        dtype=np.float32,
    ).fit_transform(folded)
    full = (x @ x.T).toarray()
    for threshold in (0.7, 0.9):
        expected = {
            (i, j)
            for i in range(len(texts))
            for j in range(i + 1, len(texts))
            if full[i, j] >= threshold - 1e-5 and owners[i] != owners[j] and folded[i] != folded[j]
        }
        got = {(p.i, p.j) for p in near_duplicates(texts, owners, threshold, block_rows=64)}
        assert got == expected and expected


def test_check_entries_focus_and_settings() -> None:
    a = KBEntry("a", "c", "我想申请信用卡的临时额度怎么办", "答" * 30, ("一", "二", "三"))
    b = KBEntry("b", "c", "我想申请信用卡的临时额度怎么办呢", "答", ("四", "五", "六"))
    c = KBEntry("c", "c", "完全无关的问题", "答", ("七", "八", "九"))
    found = check_entries([a, b, c], LintSettings(max_answer_chars=20))
    assert sorted(f.check for f in found) == ["collision", "long_answer"]
    [collision] = [f for f in found if f.check == "collision"]
    assert collision.ids == ("b", "a")
    assert check_entries([a, b, c], focus={"c"}) == []
    assert check_entries([a, b, c], LintSettings(similarity=0.99)) == []


def test_lint_clean_kb_passes(kb_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["kb", "lint", "--kb-dir", str(kb_dir)]) == 0
    out = capsys.readouterr().out
    assert "0 error(s)" in out and "entries" in out


def test_lint_reports_problems_with_file_line_and_exit_code(
    kb_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    add_source(
        kb_dir,
        "zz_extra.yml",
        'version: "1"\nentries:\n'
        "  - id: borrow_books\n    category: 借阅\n    question: 借书流程\n    answer: 看上面\n"
        "  - id: how_borrow\n    category: 借阅\n    question: 怎么借书\n    answer: 同上\n",
    )
    add_source(
        kb_dir,
        "more.tsv",
        "id\tquestion\tsimilar_questions\tanswer\tcategory\n"
        f"long\t长答案\ta|b|c\t{'字' * 600}\t测试\n",
    )
    assert main(["kb", "lint", "--kb-dir", str(kb_dir)]) == 1
    captured = capsys.readouterr()
    err = captured.err
    assert "sources/zz_extra.yml:3: error: duplicate id 'borrow_books' (first defined at" in err
    assert (
        "sources/zz_extra.yml:7: warning: duplicate question '怎么借书' in 'how_borrow' and "
        "'borrow_books'" in err
    )
    assert "sources/more.tsv:2: warning: the answer of 'long' has 600 characters" in err
    assert "duplicate_id" in captured.out and "long_answer" in captured.out

    assert main(["kb", "lint", "--kb-dir", str(kb_dir), "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False and data["errors"] == 1 and data["entries"] == 9
    assert {"duplicate_id", "duplicate_question", "long_answer"} <= set(data["summary"])
    first = data["problems"][0]
    assert set(first) == {"check", "level", "file", "line", "message", "hint", "ids"}


def test_lint_strict_fails_on_warnings(kb_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    add_source(
        kb_dir,
        "thin.yml",
        'version: "1"\nentries:\n  - id: thin\n    category: 其他\n    question: 有停车场吗\n'
        "    answer: 有。\n",
    )
    assert main(["kb", "lint", "--kb-dir", str(kb_dir)]) == 0
    capsys.readouterr()
    assert main(["kb", "lint", "--kb-dir", str(kb_dir), "--strict", "--json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is False and data["errors"] == 0
    assert data["summary"]["few_similar"]["count"] == 1


def test_lint_invalid_yaml_and_empty_folder(tmp_path: Path) -> None:
    kb = tmp_path / "kb"
    report = lint_kb(kb)
    assert report.errors and "no source files" in str(report.errors[0])
    (kb / "sources").mkdir(parents=True)
    (kb / "sources" / "bad.yml").write_text("entries: [\n", encoding="utf-8")
    report = lint_kb(kb)
    assert report.errors[0].check == "source" and "invalid YAML" in str(report.errors[0])


def test_show_limits_lines_per_check(kb_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    entries = "".join(
        f"  - id: t{i}\n    category: 其他\n    question: 问题编号{i}号\n    answer: 答\n"
        for i in range(5)
    )
    add_source(kb_dir, "thin.yml", 'version: "1"\nentries:\n' + entries)
    assert main(["kb", "lint", "--kb-dir", str(kb_dir), "--show", "2"]) == 0
    err = capsys.readouterr().err
    assert err.count("similar question(s)") == 2 and "3 more line(s) not shown" in err
