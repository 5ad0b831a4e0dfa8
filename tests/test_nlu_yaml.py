"""Reading Rasa 3.x NLU YAML with file:line positions and per-item problems."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.errors import TrainingDataError
from bot.training import Source, load_nlu_files, read_nlu_file

GOOD = """\
version: "3.1"
nlu:
- intent: query_balance
  examples: |
    - 查下尾号[1234](card_last4)的余额

    - 我[工资卡]{"entity": "account_type", "value": "debit_card"}余额
- intent: greet
  examples:
    - 你好
    - 您好
- synonym: debit_card
  examples: |
    - 工资卡
    - 储蓄卡
- regex: card_last4
  examples: |
    - 尾号(?P<value>\\d{4})
- lookup: account_type
  examples: |
    - 工资卡
    - 信用卡
"""


def write(tmp_path: Path, text: str, name: str = "nlu.yml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_reads_every_kind_of_item(tmp_path: Path) -> None:
    data = read_nlu_file(write(tmp_path, GOOD), "nlu.yml")
    assert data.problems == []
    assert [(e.intent, e.text) for e in data.examples] == [
        ("query_balance", "查下尾号1234的余额"),
        ("query_balance", "我工资卡余额"),
        ("greet", "你好"),
        ("greet", "您好"),
    ]
    assert data.examples[1].entities[0].value == "debit_card"
    assert [(s.value, s.examples) for s in data.synonyms] == [("debit_card", ("工资卡", "储蓄卡"))]
    assert [(r.name, r.patterns) for r in data.regexes] == [
        ("card_last4", (r"尾号(?P<value>\d{4})",))
    ]
    assert [(t.name, t.elements) for t in data.lookups] == [("account_type", ("工资卡", "信用卡"))]
    assert data.intents == ["greet", "query_balance"]
    assert data.entity_names == ["account_type", "card_last4"]
    assert data.synonym_map()["工资卡"] == "debit_card"


def test_examples_carry_file_and_line(tmp_path: Path) -> None:
    data = read_nlu_file(write(tmp_path, GOOD), "nlu_data/nlu.yml")
    lines = GOOD.splitlines()
    for example in data.examples:
        assert example.source is not None
        assert example.source.file == "nlu_data/nlu.yml"
        # the line the example is written on (1-based) holds its first character
        assert lines[example.source.line - 1].startswith(f"    - {example.text[0]}")
    assert [e.source.line for e in data.examples if e.source] == [5, 7, 10, 11]
    assert str(data.examples[0].source) == "nlu_data/nlu.yml:5"
    assert [s.source for s in data.synonyms] == [Source("nlu_data/nlu.yml", 12)]
    assert [r.source for r in data.regexes] == [Source("nlu_data/nlu.yml", 16)]


def test_crlf_files_keep_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "crlf.yml"
    path.write_bytes(GOOD.replace("\n", "\r\n").encode("utf-8"))
    data = read_nlu_file(path, "crlf.yml")
    assert [e.source.line for e in data.examples if e.source] == [5, 7, 10, 11]


def test_bad_items_become_problems_with_lines(tmp_path: Path) -> None:
    text = """\
nlu:
- just a string
- intent: a
  synonym: b
  examples: |
    - x
- intent: ""
  examples: |
    - x
- intent: empty_intent
- intent: ok
  examples: |
    - 好的
    - [坏的](bad name)
    -
    - [x]{"entity": }
- synonym: nothing
- regex: nothing_either
  examples: |
"""
    data = read_nlu_file(write(tmp_path, text), "bad.yml")
    found = {(p.source.line if p.source else None, p.level) for p in data.problems}
    assert found == {
        (2, "error"),  # not a mapping
        (3, "error"),  # two kinds
        (7, "error"),  # no name
        (10, "error"),  # intent without examples
        (14, "error"),  # bad entity name
        (15, "error"),  # bare '-'
        (16, "error"),  # bad JSON
        (17, "error"),  # synonym without examples
        (18, "error"),  # regex without examples
    }
    assert all(p.hint for p in data.problems)
    for p in data.problems:
        assert p.source is not None
        assert str(p).startswith(f"bad.yml:{p.source.line}: error: ")
    assert [e.text for e in data.examples] == ["好的"]  # the good line is still read


def test_invalid_yaml_raises_with_position(tmp_path: Path) -> None:
    path = write(tmp_path, "nlu:\n- intent: a\n  examples: |\n    - x\n -bad: [\n")
    with pytest.raises(TrainingDataError, match=r"nlu.yml:5: invalid YAML: [^\n]*Fix: "):
        read_nlu_file(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [("- a\n- b\n", "mapping"), ("nlu: 3\n", "must be a list")],
)
def test_wrong_shapes_raise(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(TrainingDataError, match=message):
        read_nlu_file(write(tmp_path, text))


def test_not_utf8_raises(tmp_path: Path) -> None:
    path = tmp_path / "gbk.yml"
    path.write_bytes("nlu:\n- intent: 余额\n".encode("gbk"))
    with pytest.raises(TrainingDataError, match="UTF-8"):
        read_nlu_file(path)


def test_files_without_nlu_key_contribute_nothing(tmp_path: Path) -> None:
    assert read_nlu_file(write(tmp_path, "stories:\n- story: x\n")).examples == []
    assert read_nlu_file(write(tmp_path, "")).examples == []


def test_load_nlu_files_merges_and_names_files_relative_to_root(tmp_path: Path) -> None:
    (tmp_path / "nlu_data").mkdir()
    a = write(tmp_path / "nlu_data", "nlu:\n- intent: a\n  examples: |\n    - 一\n", "a.yml")
    b = write(tmp_path / "nlu_data", "nlu:\n- intent: b\n  examples: |\n    - 二\n", "b.yml")
    data = load_nlu_files([a, b], tmp_path)
    assert [(e.intent, str(e.source)) for e in data.examples] == [
        ("a", "nlu_data/a.yml:4"),
        ("b", "nlu_data/b.yml:4"),
    ]
