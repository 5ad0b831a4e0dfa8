"""``bot data validate``: every check names file:line and a fix; exit code 1 on errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli.main import main
from bot.project import Project
from bot.training.data import Problem
from bot.validation import validate_project

REPO = Path(__file__).resolve().parents[1]

BROKEN = """\
version: "3.1"
nlu:
- intent: greet
  examples: |
    - 你好
    - 查余额
- intent: query_balance
  examples: |
    - 查余额
    - 查下尾号12[34](card_last4)的余额
    - 我的[钱包](wallet)余额
    - 查一下余额
    - 查下余额
    - 　\u200b
- intent: report_loss
- intent: say_bye
  examples: |
    - 再见
    - 拜拜
- intent: lonely
  examples: |
    - 孤单
- synonym: debit_card
  examples: |
    - 工资卡
- synonym: credit_card
  examples: |
    - 工资卡
- regex: card_last4
  examples: |
    - 尾号(?P<value>\\d{4}
- lookup: colour
  examples: |
    - 红色
"""


def line_of(text: str, marker: str, nth: int = 1) -> int:
    lines = [i for i, line in enumerate(text.splitlines(), 1) if marker in line]
    return lines[nth - 1]


@pytest.fixture
def broken(tiny_project: Path) -> Path:
    (tiny_project / "nlu_data" / "broken.yml").write_text(BROKEN, encoding="utf-8")
    domain = tiny_project / "domain.yml"
    domain.write_text(
        domain.read_text(encoding="utf-8").replace(
            "  - report_loss\n", "  - report_loss\n  - lonely\n  - goodbye\n"
        ),
        encoding="utf-8",
    )
    return tiny_project


def find(problems: list[Problem], level: str, *words: str) -> Problem:
    for problem in problems:
        if problem.level == level and all(w in problem.message for w in words):
            return problem
    raise AssertionError(f"no {level} with {words}: " + "\n".join(map(str, problems)))


@pytest.fixture
def problems(broken: Path) -> list[Problem]:
    return validate_project(Project(broken))


@pytest.mark.parametrize(
    ("level", "words", "marker", "nth"),
    [
        ("error", ("say_bye", "not declared in domain.yml"), "- 再见", 1),
        ("error", ("wallet", "not declared in domain.yml"), "[钱包](wallet)", 1),
        ("error", ("查余额", "also of", "greet"), "- 查余额", 2),
        ("error", ("[34](card_last4)", "does not line up"), "12[34]", 1),
        ("error", ("report_loss", "no examples"), "- intent: report_loss", 1),
        ("error", ("lonely", "only 1 example"), "- 孤单", 1),
        ("error", ("regex 'card_last4'", "invalid"), "- regex: card_last4", 1),
        ("error", ("工资卡", "credit_card", "debit_card"), "- synonym: credit_card", 1),
        ("error", ("empty after normalisation",), "　\u200b", 1),
        ("warning", ("lookup table 'colour'",), "- lookup: colour", 1),
        ("warning", ("say_bye", "only 2 examples"), "- 再见", 1),
    ],
)
def test_each_check_names_file_line_and_fix(
    problems: list[Problem], level: str, words: tuple[str, ...], marker: str, nth: int
) -> None:
    problem = find(problems, level, *words)
    assert problem.source is not None
    assert problem.source.file == "nlu_data/broken.yml"
    assert problem.source.line == line_of(BROKEN, marker, nth)
    assert problem.hint
    assert str(problem) == (
        f"nlu_data/broken.yml:{problem.source.line}: {level}: {problem.message}. "
        f"Fix: {problem.hint}"
    )


def test_domain_intent_without_examples_is_a_warning(problems: list[Problem]) -> None:
    problem = find(problems, "warning", "goodbye", "no NLU examples")
    assert problem.source is not None and problem.source.file == "domain.yml"


def test_same_intent_duplicate_is_only_a_warning(tiny_project: Path) -> None:
    extra = tiny_project / "nlu_data" / "extra.yml"
    extra.write_text(
        "nlu:\n- intent: greet\n  examples: |\n    - ＨＩ\n    - hi\n", encoding="utf-8"
    )
    problems = validate_project(Project(tiny_project))
    problem = find(problems, "warning", "'hi' duplicates nlu_data/extra.yml:4")
    assert problem.source is not None and problem.source.line == 5
    assert not [p for p in problems if p.level == "error"]


def test_yaml_syntax_error_reports_the_problem_line(tiny_project: Path) -> None:
    bad = tiny_project / "nlu_data" / "bad.yml"
    bad.write_text("nlu:\n- intent: greet\n  examples: |\n    - 嗨\n -oops: [\n", encoding="utf-8")
    problem = find(validate_project(Project(tiny_project)), "error", "invalid YAML")
    assert problem.source is not None
    assert (problem.source.file, problem.source.line) == ("nlu_data/bad.yml", 5)


def test_tiny_project_is_clean(tiny_project: Path) -> None:
    problems = validate_project(Project(tiny_project), min_examples=5)
    assert problems == []


def test_cli_exit_code_and_output(broken: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["data", "validate", "--project", str(broken)])
    out = capsys.readouterr().out
    assert code == 1
    assert f"nlu_data/broken.yml:{line_of(BROKEN, '[钱包](wallet)')}: error: entity 'wallet'" in out
    assert "Fix: " in out
    last = out.strip().splitlines()[-1]
    assert last.endswith("warning(s)") and not last.startswith("0 error")


def test_cli_warnings_fail_only_when_asked(
    tiny_project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["data", "validate", "--project", str(tiny_project)]) == 0  # 6 < 10: warnings
    out = capsys.readouterr().out
    assert "0 error(s), 3 warning(s)" in out
    assert main(["data", "validate", "--project", str(tiny_project), "--fail-on-warnings"]) == 1
    capsys.readouterr()
    assert main(["data", "validate", "--project", str(tiny_project), "--min-examples", "6"]) == 0
    assert "0 error(s), 0 warning(s)" in capsys.readouterr().out


def test_shipped_project_validates_without_errors(capsys: pytest.CaptureFixture[str]) -> None:
    problems = validate_project(Project(REPO))
    assert [str(p) for p in problems if p.level == "error"] == []
    assert main(["data", "validate", "--project", str(REPO)]) == 0
    assert "0 error(s)" in capsys.readouterr().out


SUB_WORD = """\
version: "3.1"
nlu:
- intent: request_weather
  examples: |
    - [今天](date_time)天气怎么样
    - 查[明天](date_time)的
"""


def _with_pipeline(project: Path, extractor: str) -> Path:
    (project / "nlu_data" / "weather.yml").write_text(SUB_WORD, encoding="utf-8")
    domain = project / "domain.yml"
    domain.write_text(
        domain.read_text(encoding="utf-8")
        .replace("  - report_loss\n", "  - report_loss\n  - request_weather\n")
        .replace("  - amount\n", "  - amount\n  - date_time\n"),
        encoding="utf-8",
    )
    config = project / "config.yml"
    config.write_text(
        config.read_text(encoding="utf-8").replace("  - name: RegexEntityExtractor\n", extractor),
        encoding="utf-8",
    )
    return project


@pytest.mark.parametrize(
    "extractor",
    [
        "  - name: RegexEntityExtractor\n",
        "  - name: DIETClassifier\n    epochs: 100\n",
        "  - name: CRFEntityExtractor\n",
    ],
)
def test_sub_word_annotations_are_fine_for_character_extractors(
    tiny_project: Path, extractor: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``[今天]天气`` (jieba's word 今天天气) is how Rasa users annotate Chinese; the CRF on
    characters and the annotation patterns tag it."""
    project = _with_pipeline(tiny_project, extractor)
    problems = validate_project(Project(project))
    assert [str(p) for p in problems if "line up" in p.message] == []
    assert main(["data", "validate", "--project", str(project)]) == 0
    assert "0 error(s)" in capsys.readouterr().out


def test_sub_word_annotations_warn_with_token_based_extractors(tiny_project: Path) -> None:
    project = _with_pipeline(
        tiny_project, "  - name: CRFEntityExtractor\n    granularity: tokens\n"
    )
    problems = [p for p in validate_project(Project(project)) if "line up" in p.message]
    assert problems and all(p.level == "warning" for p in problems)
    assert "[今天](date_time)" in problems[0].message


def test_no_alignment_check_without_an_entity_extractor(tiny_project: Path) -> None:
    project = _with_pipeline(tiny_project, "")
    assert [p for p in validate_project(Project(project)) if "line up" in p.message] == []
