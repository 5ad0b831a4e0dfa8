"""``bot kb import``: FAQ files as banks keep them (.xlsx, .csv, .tsv, .json, .md) → YAML."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from openpyxl import Workbook

from bot.cli.main import main
from bot.kb.import_formats import header_key, read_faq_file
from bot.kb.importer import ImportOptions, import_file, stable_id
from bot.kb.sources import load_sources, read_yaml_source

HEADER = ["编号", "分类", "标准问", "相似问法", "答案"]


@pytest.fixture
def kb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BOT_PROJECT", raising=False)
    folder = tmp_path / "kb"
    (folder / "sources").mkdir(parents=True)
    return folder


def xlsx(path: Path, rows: list[list[Any]], title: str = "FAQ", **more: list[list[Any]]) -> Path:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = title
    for row in rows:
        sheet.append(row)
    for name, extra in more.items():
        other = book.create_sheet(name)
        for row in extra:
            other.append(row)
    book.save(path)
    return path


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


def entries_of(path: Path) -> dict[str, dict[str, Any]]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return {e["question"]: e for e in data["entries"]}


# --------------------------------------------------------------------------- Excel


def test_xlsx_as_a_bank_keeps_it(
    kb: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "常见问题.xlsx"
    book = Workbook()
    ws = book.active
    assert ws is not None
    ws.append(["某银行常见问题（2026版）"])  # a title row above the header
    ws.append(["序号", "分类", "标准问", "相似问法", "答案", "备注"])
    ws.append(
        [
            1,
            "转账汇款",
            "手机银行转账限额是多少？",
            "转账限额多少｜一天能转多少\n限额怎么调",
            "单笔5万元。\n可在App调整。",
            "内部",
        ]
    )
    ws.append([2, None, "跨行转账收手续费吗？", "跨行转账要钱吗；跨行手续费", "免费。", None])
    ws.append([None, None, None, None, None, None])  # blank row
    ws.append([3, "信用卡", "信用卡年费多少", "年费怎么收", 300, None])  # a number as answer
    ws.merge_cells("B3:B4")  # 转账汇款 for rows 3 and 4
    book.save(path)

    code, out, err = run(["kb", "import", str(path), "--kb-dir", str(kb)], capsys)
    assert code == 0, err
    target = kb / "sources" / "常见问题.yml"
    text = target.read_text(encoding="utf-8")
    assert text.startswith("# Written by 'bot kb import'")
    assert "转账汇款" in text and "\\u" not in text  # Chinese unescaped
    assert "answer: |-\n    单笔5万元。\n    可在App调整。" in text  # block scalar
    got = entries_of(target)
    first = got["手机银行转账限额是多少？"]
    assert first["similar_questions"] == ["转账限额多少", "一天能转多少", "限额怎么调"]
    assert got["跨行转账收手续费吗？"]["category"] == "转账汇款"  # merged cell filled down
    assert got["跨行转账收手续费吗？"]["similar_questions"] == ["跨行转账要钱吗", "跨行手续费"]
    assert got["信用卡年费多少"]["answer"] == "300"
    assert re.fullmatch(r"faq_[0-9a-f]{10}", first["id"])
    assert first["id"] == stable_id("转账汇款", "手机银行转账限额是多少？")
    assert load_sources(kb).errors == []
    assert "column F '备注' is not read" in err
    assert "row 1 above the header skipped" in err
    assert "Imported 3 new and 0 updated" in out
    assert "rows read" in out and "generated ids" in out  # the summary table
    # the same file again: same ids, nothing changes
    code, out, _ = run(["kb", "import", str(path), "--kb-dir", str(kb)], capsys)
    assert code == 0 and "0 new and 0 updated entries (3 unchanged)" in out
    assert target.read_text(encoding="utf-8") == text


def test_stable_ids_are_ascii_deterministic_and_fold_text() -> None:
    one = stable_id("信用卡", "ETC怎么办理？")
    assert one == stable_id("信用卡", "ETC 怎么办理")  # punctuation, spaces and case folded
    assert one == stable_id("信用卡", "ＥＴＣ怎麼辦理")  # full width, Traditional
    assert re.fullmatch(r"etc_[0-9a-f]{10}", one)
    assert stable_id("借记卡", "ETC怎么办理？") != one
    assert one.isascii()


def test_sheet_choice_and_columns_by_flag(
    kb: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = xlsx(
        tmp_path / "faq.xlsx",
        [["说明"], ["这本簿子的第二页才是问题"]],
        title="说明",
        题库=[
            ["Q", "Variants", "Reply", "Topic", "Code"],
            ["怎么开户", "开户要什么|开户流程", "带身份证到网点。", "开户", 1001],
        ],
    )
    code, _, err = run(["kb", "import", str(path), "--kb-dir", str(kb), "--sheet", "x"], capsys)
    assert code == 1 and "no sheet 'x' (the sheets are: 说明, 题库)" in err
    code, _, err = run(["kb", "import", str(path), "--kb-dir", str(kb), "--sheet", "题库"], capsys)
    assert code == 1
    assert "no question column (the header is: Q, Variants, Reply, Topic, Code)" in err
    assert "--question-col" in err
    code, _, err = run(
        [
            "kb",
            "import",
            str(path),
            "--kb-dir",
            str(kb),
            "--sheet",
            "2",
            "--question-col",
            "Q",
            "--answer-col",
            "3",
            "--similar-col",
            "variants",
            "--category-col",
            "Topic",
            "--id-col",
            "5",
        ],
        capsys,
    )
    assert code == 0, err
    entry = entries_of(kb / "sources" / "faq.yml")["怎么开户"]
    assert entry["id"] == "1001" and entry["category"] == "开户"
    assert entry["similar_questions"] == ["开户要什么", "开户流程"]
    code, _, err = run(
        [
            "kb",
            "import",
            str(path),
            "--kb-dir",
            str(kb),
            "--sheet",
            "题库",
            "--question-col",
            "9",
            "--answer-col",
            "Reply",
        ],
        capsys,
    )
    assert code == 1 and "--question-col 9: the header has 5 column(s)" in err


def test_formulas_are_read_as_their_saved_values(tmp_path: Path) -> None:
    path = xlsx(
        tmp_path / "f.xlsx",
        [["问题", "答案"], ["怎么挂失", '="拨打"&"95555"'], ["怎么销户", "=B5"]],
    )
    # openpyxl stores no value for a formula; give the first one the value Excel would save
    with zipfile.ZipFile(path) as zin:
        parts = {n: zin.read(n) for n in zin.namelist()}
    sheet = parts["xl/worksheets/sheet1.xml"].decode()
    sheet = re.sub(r'<c r="B2">(<f>.*?</f>)<v\s*/>', r'<c r="B2" t="str">\1<v>拨打95555</v>', sheet)
    parts["xl/worksheets/sheet1.xml"] = sheet.encode()
    with zipfile.ZipFile(path, "w") as zout:
        for name, data in parts.items():
            zout.writestr(name, data)
    read = read_faq_file(path)
    assert read.records[0].values["answer"] == "拨打95555"
    assert any("formula cell(s) read as their saved values" in n for n in read.notes)
    [problem] = [str(f) for f in read.findings]
    assert problem.startswith(f"{path}:3: error: cell B3 is a formula without a saved value")
    assert "Fix: open the file in Excel and save it" in problem


def test_cells_merged_across_columns_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "m.xlsx"
    book = Workbook()
    ws = book.active
    assert ws is not None
    ws.append(["问题", "答案"])
    ws.append(["合并的问题", None])
    ws.merge_cells("A2:B2")
    book.save(path)
    read = read_faq_file(path)
    assert any("cells A2:B2 are merged across columns" in str(f) for f in read.findings)
    assert read.records[0].values["answer"] == ""


def test_not_a_workbook_and_old_xls(kb: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(b"not a zip")
    result = import_file(bad, kb)
    assert "cannot read the workbook" in str(result.errors[0])
    old = tmp_path / "old.xls"
    old.write_bytes(b"\xd0\xcf\x11\xe0")
    assert "Excel 'Save as' → .xlsx" in str(import_file(old, kb).errors[0])


def test_row_limit_is_said(kb: Path, tmp_path: Path) -> None:
    rows = [["问题", "答案"]] + [[f"问题{i}", "答"] for i in range(30)]
    path = xlsx(tmp_path / "big.xlsx", rows)
    result = import_file(path, kb, ImportOptions(max_rows=10))
    assert "has 31 rows; the limit is 10" in str(result.errors[0])
    csv_path = tmp_path / "big.csv"
    csv_path.write_text("\n".join(",".join(map(str, r)) for r in rows), encoding="utf-8")
    result = import_file(csv_path, kb, ImportOptions(max_rows=10))
    assert "more than 10 rows" in str(result.errors[0])


# --------------------------------------------------------------------------- CSV / TSV


CSV = '标准问,相似问,答案,类别\n怎么挂失,卡丢了|卡被偷了,"拨打95555，\n或到网点。",银行卡\n'


@pytest.mark.parametrize(
    ("encoding", "note"),
    [
        ("utf-8", None),
        ("utf-8-sig", None),
        ("gbk", "GBK"),
        ("gb18030", "GBK"),
        ("utf-16", "UTF-16"),
    ],
)
def test_csv_encodings(kb: Path, tmp_path: Path, encoding: str, note: str | None) -> None:
    path = tmp_path / "faq.csv"
    path.write_bytes(CSV.encode(encoding))
    result = import_file(path, kb)
    assert result.errors == [] and result.written
    entry = entries_of(kb / "sources" / "faq.yml")["怎么挂失"]
    assert entry["answer"] == "拨打95555，\n或到网点。" and entry["category"] == "银行卡"
    assert entry["similar_questions"] == ["卡丢了", "卡被偷了"]
    if note is None:
        assert result.notes == []
    else:
        assert any(note in n for n in result.notes)


def test_csv_bad_input_gets_a_clear_message(kb: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    assert str(import_file(empty, kb).errors[0]).startswith(f"{empty}:1: error: the file is empty")
    blank = tmp_path / "blank.csv"
    blank.write_text("\n\n,,\n", encoding="utf-8")
    assert "no rows" in str(import_file(blank, kb).errors[0])
    garbage = tmp_path / "garbage.csv"
    garbage.write_bytes("问题,答案\n".encode() + b"\xff\xfe\xfa\xfb\x80\x81\n")
    message = str(import_file(garbage, kb).errors[0])
    assert "neither UTF-8 nor GBK" in message and "CSV UTF-8" in message
    renamed = tmp_path / "book.csv"
    renamed.write_bytes(b"PK\x03\x04rest")
    assert "rename it to .xlsx" in str(import_file(renamed, kb).errors[0])
    semicolon = tmp_path / "semi.csv"
    semicolon.write_text("question;answer;category\n能开发票吗;能;服务\n", encoding="utf-8")
    result = import_file(semicolon, kb)
    assert result.errors == [] and result.added


def test_tsv_keeps_its_format_and_gains_header_names(kb: Path, tmp_path: Path) -> None:
    path = tmp_path / "new.tsv"
    path.write_text(
        "问题\t答案\t分类\t渠道\t生效日期\n怎么预约\t第一行\\n第二行\t网点\tapp|wechat\t2026/1/5\n",
        encoding="utf-8",
    )
    result = import_file(path, kb)
    assert result.errors == [] and result.target.name == "imported.yml"
    entry = entries_of(result.target)["怎么预约"]
    assert entry["answer"] == "第一行\n第二行"
    assert entry["channels"] == ["app", "wechat"] and entry["valid_from"] == "2026-01-05"


# --------------------------------------------------------------------------- JSON / Markdown


def test_json_list_and_entries_object(kb: Path, tmp_path: Path) -> None:
    path = tmp_path / "faq.json"
    items = [
        {
            "question": "怎么开户",
            "similar_questions": ["开户流程", "开户要带什么"],
            "answer": "带身份证。",
            "category": "开户",
            "id": "open_account",
        },
        {"标准问": "营业时间", "答案": "9点到17点", "分类": "网点", "extra": 1},
        {"question": "缺答案", "answer": ""},
    ]
    path.write_text(json.dumps(items, ensure_ascii=False, indent=2), encoding="utf-8")
    result = import_file(path, kb)
    lines = {str(p) for p in result.problems}
    assert any(p.startswith(f"{path}:18: error: empty answer") for p in lines), lines
    assert any("key 'extra' is not read" in p for p in lines)
    path.write_text(json.dumps({"entries": items[:2]}, ensure_ascii=False), encoding="utf-8")
    result = import_file(path, kb)
    assert result.errors == []
    assert set(result.added) == {"open_account", stable_id("网点", "营业时间")}
    got = entries_of(result.target)
    assert got["怎么开户"]["id"] == "open_account" and got["营业时间"]["category"] == "网点"
    path.write_text('{"entries": [1, 2', encoding="utf-8")
    assert "invalid JSON" in str(import_file(path, kb).errors[0])


MARKDOWN = """\
# 银行卡

## 银行卡丢了怎么办？

相似问法：
- 卡丢了
- 银行卡被偷了怎么挂失

请立即拨打 95555 挂失，再到网点补办。

```
## 这不是标题
```

## 怎么修改密码

**Similar:** 改密码｜忘记密码

在 App「我的」→「安全」中修改。

# 转账

## 转账多久到账

实时到账。
"""


def test_markdown_rules(kb: Path, tmp_path: Path) -> None:
    path = tmp_path / "faq.md"
    path.write_text(MARKDOWN, encoding="utf-8")
    result = import_file(path, kb)
    assert result.errors == [], result.problems
    got = entries_of(result.target)
    assert list(got) == ["银行卡丢了怎么办？", "怎么修改密码", "转账多久到账"]
    lost = got["银行卡丢了怎么办？"]
    assert lost["category"] == "银行卡"
    assert lost["similar_questions"] == ["卡丢了", "银行卡被偷了怎么挂失"]
    assert lost["answer"].startswith("请立即拨打 95555") and "## 这不是标题" in lost["answer"]
    assert "相似问法" not in lost["answer"]
    assert got["怎么修改密码"]["similar_questions"] == ["改密码", "忘记密码"]
    assert got["转账多久到账"]["category"] == "转账"
    three = tmp_path / "three.md"
    three.write_text(
        "# 手册\n## 存款\n### 利率多少\n1.5%\n### 能提前取吗\n可以\n", encoding="utf-8"
    )
    got = entries_of(import_file(three, kb).target)
    assert got["利率多少"]["category"] == "存款" and got["能提前取吗"]["answer"] == "可以"
    none = tmp_path / "none.md"
    none.write_text("just text\n", encoding="utf-8")
    assert "no question headings" in str(import_file(none, kb).errors[0])


# --------------------------------------------------------------------------- reports


def test_reports_duplicates_collisions_long_answers_and_categories(
    kb: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    long_answer = "很长的说明。" * 100
    path = xlsx(
        tmp_path / "faq.xlsx",
        [
            ["分类", "问题", "相似问", "答案"],
            ["信用卡", "信用卡怎么申请", "怎么办信用卡", "App申请。"],
            ["信用卡", "信用卡怎么申请", "怎么办信用卡", "App申请。"],  # exact copy
            ["信用卡", "信用卡怎么申请？", "", "网点申请。"],  # same question, other answer
            ["信用卡", "信用卡如何申请额度", "我想申请信用卡的临时额度怎么办", long_answer],
            # row 6 collides with row 5
            ["储蓄卡", "储蓄卡额度", "我想申请信用卡的临时额度怎么办呢", "柜台。"],
            [None, "无分类的问题", "", "答案"],
        ],
    )
    code, out, err = run(["kb", "import", str(path), "--kb-dir", str(kb)], capsys)
    assert code == 1 and "nothing imported" in err
    assert f"{path}:3: warning: an exact copy of row 2; skipped" in err
    assert f"{path}:4: error: the same question '信用卡怎么申请？' (and category) as row 2" in err
    assert not (kb / "sources" / "faq.yml").exists()
    code, out, err = run(["kb", "import", str(path), "--kb-dir", str(kb), "--skip-invalid"], capsys)
    assert code == 0, err
    assert f"{path}:4: warning: row skipped: the same question" in err
    assert re.search(
        rf"{re.escape(str(path))}:6: warning: '我想申请信用卡的临时额度怎么办呢' \(faq_\w+\) is "
        rf"0\.94 similar to '我想申请信用卡的临时额度怎么办' \(faq_\w+, {re.escape(str(path))}:5\)",
        err,
    ), err
    assert f"{path}:5: warning: the answer of" in err and "has 600 characters (limit 500)" in err
    assert "links:" in err  # how to split or link
    assert f"{path}:7: warning: no category; filed under '未分类'" in err
    assert "collision" in out and "long_answer" in out and "missing_category" in out
    assert "rows skipped or in error" in out
    got = entries_of(kb / "sources" / "faq.yml")
    assert got["无分类的问题"]["category"] == "未分类" and len(got) == 4


def test_json_report_for_ci(kb: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "faq.csv"
    path.write_text("question,answer\n能刷卡吗,\n", encoding="utf-8")
    code, out, _ = run(["kb", "import", str(path), "--kb-dir", str(kb), "--json"], capsys)
    data = json.loads(out)
    assert code == 1 and data["written"] is False and data["errors"] == 1
    [problem] = [p for p in data["problems"] if p["level"] == "error"]
    assert problem == {
        "check": "empty_answer",
        "level": "error",
        "file": str(path),
        "line": 2,
        "message": "empty answer for '能刷卡吗'",
        "hint": "write the answer (答案) the bot should give, or delete the row",
        "ids": [],
    }
    assert data["summary"]["empty_answer"]["count"] == 1


# --------------------------------------------------------------------------- writing


def test_never_overwrites_a_trainers_file(kb: Path, tmp_path: Path) -> None:
    own = kb / "sources" / "faq.yml"
    own.write_text(
        'version: "1"\nentries:\n  - id: mine\n    category: 手写\n    question: 我写的\n'
        "    answer: 我的答案\n",
        encoding="utf-8",
    )
    path = tmp_path / "faq.csv"
    path.write_text("问题,答案,分类\n新问题,新答案,新\n", encoding="utf-8")
    result = import_file(path, kb)
    assert "was not written by 'bot kb import'" in str(result.errors[0])
    assert "--force" in str(result.errors[0]) and "我写的" in own.read_text(encoding="utf-8")
    result = import_file(path, kb, ImportOptions(force=True))
    assert result.written and result.kept == ["mine"] and len(result.added) == 1
    assert set(entries_of(own)) == {"我写的", "新问题"}
    result = import_file(path, kb, ImportOptions(replace=True))
    assert result.removed == ["mine"] and set(entries_of(own)) == {"新问题"}


def test_merge_updates_by_id_and_dry_run_writes_nothing(kb: Path, tmp_path: Path) -> None:
    path = tmp_path / "faq.csv"
    path.write_text("id,问题,答案,分类\na1,问一,答一,类\na2,问二,答二,类\n", encoding="utf-8")
    assert import_file(path, kb).added == ["a1", "a2"]
    target = kb / "sources" / "faq.yml"
    before = target.read_text(encoding="utf-8")
    assert "\n\n- id: a2" in before  # a blank line between entries: reviewable diffs
    path.write_text("id,问题,答案,分类\na1,问一,新答一,类\n", encoding="utf-8")
    result = import_file(path, kb, ImportOptions(dry_run=True))
    assert result.updated == ["a1"] and not result.written
    assert target.read_text(encoding="utf-8") == before
    result = import_file(path, kb)
    assert result.updated == ["a1"] and result.kept == ["a2"]
    assert read_yaml_source(target).entries[0].answer == "新答一"


def test_id_elsewhere_and_bad_cells(kb: Path, tmp_path: Path) -> None:
    (kb / "sources" / "base.tsv").write_text(
        "id\tquestion\tsimilar_questions\tanswer\tcategory\ntaken\t旧问题\t\t旧答\t类\n",
        encoding="utf-8",
    )
    path = tmp_path / "faq.csv"
    path.write_text(
        "id,问题,答案,分类,失效日期\ntaken,问,答,类,\nbad id,问2,答,类,\nok,问3,答,类,明天\n",
        encoding="utf-8",
    )
    messages = [str(p) for p in import_file(path, kb).errors]
    assert f"{path}:2: error: duplicate id 'taken': already defined at" in messages[0]
    assert messages[1].startswith(f"{path}:3: error: id 'bad id' has characters")
    assert messages[2].startswith(f"{path}:4: error: valid_to '明天' is not a date. Fix: write")


def test_header_names_are_folded() -> None:
    assert header_key("Similar Questions") == header_key("similar_questions")
    assert header_key("相似问（用|分隔）") == "相似问"
    assert header_key("ＡＮＳＷＥＲ") == "answer"
    assert header_key("No.") == "no"


def test_default_target_is_named_after_the_file(tmp_path: Path) -> None:
    from bot.kb.importer import target_name

    assert target_name(tmp_path / "常见问题 2026.xlsx") == "常见问题_2026.yml"
    assert target_name(tmp_path / "new.tsv") == "imported.yml"
    assert target_name(tmp_path / "...csv") == "imported.yml"


def test_fast_yaml_is_the_same_text_as_the_sources_dumper() -> None:
    from bot.kb.importer import render_yaml
    from bot.kb.sources import KBEntry, dump_yaml_entries

    entries = [
        KBEntry("a", "分类", "问题？", "第一行\n  缩进：“引号” #号\n", ("yes", "1001", ": x")),
        KBEntry("b", "c", "q", "one line", channels=("app",)),
    ]
    text = render_yaml(entries)
    assert text.replace("\n\n- id:", "\n- id:").split("\n", 1)[1] == dump_yaml_entries(entries)


def test_error_cells_and_multi_line_csv_rows_name_their_row(kb: Path, tmp_path: Path) -> None:
    path = xlsx(tmp_path / "e.xlsx", [["问题", "答案"], ["能贷款吗", "#N/A"]])
    [error] = [str(p) for p in import_file(path, kb).errors]
    assert error.startswith(f"{path}:2: error: cell B2 holds the Excel error #N/A")
    csv_path = tmp_path / "multi.csv"
    csv_path.write_text('问题,答案\n能开户吗,"可以，\n带身份证。"\n,缺问题\n', encoding="utf-8")
    [error] = [str(p) for p in import_file(csv_path, kb).errors]
    assert error.startswith(f"{csv_path}:4: error: empty question")
