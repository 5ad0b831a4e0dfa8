"""Trainer tools: ``bot shell`` (scripted through standard input), ``bot test core`` and
``bot visualize`` on a small trained project."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO, write_tiny_project

from bot.cli.main import main
from bot.project import Project
from bot.train import train

DOMAIN = """\
version: "3.1"
intents: [greet, query_balance, report_loss]
entities: [card_last4, account_type, amount]
slots:
  customer_id:
    type: any
    influence_conversation: false
    mappings: [{type: custom}]
  card_last4:
    type: text
    influence_conversation: false
    mappings: [{type: from_entity, entity: card_last4}]
responses:
  utter_greet:
    - text: "您好{customer_id}"
      buttons: [{title: 查询余额, payload: /query_balance}]
  utter_balance: [{text: 余额请在App查看}]
  utter_loss: [{text: "请拨打热线挂失尾号{card_last4}的卡"}]
"""

STORIES = """\
version: "3.1"
stories:
- story: greet then balance
  steps:
  - intent: greet
  - action: utter_greet
  - intent: query_balance
  - action: utter_balance
rules:
- rule: greet
  steps:
  - intent: greet
  - action: utter_greet
- rule: balance
  steps:
  - intent: query_balance
  - action: utter_balance
- rule: loss
  steps:
  - intent: report_loss
  - action: utter_loss
"""

PASSING = """\
version: "3.1"
stories:
- story: greet and ask the balance
  steps:
  - user: |
      你好
    intent: greet
  - action: utter_greet
  - user: |
      余额多少
    intent: query_balance
  - action: utter_balance
- story: card lost
  steps:
  - user: |
      我的卡丢了 尾号[4321](card_last4)
    intent: report_loss
  - action: utter_loss
  - slot_was_set:
    - card_last4: "4321"
"""

FAILING = """\
version: "3.1"
stories:
- story: wrong expectation
  steps:
  - user: |
      你好
    intent: greet
  - action: utter_balance
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = write_tiny_project(tmp_path_factory.mktemp("cli_dialogue") / "bot")
    (root / "domain.yml").write_text(DOMAIN, encoding="utf-8")
    (root / "stories").mkdir()
    (root / "stories" / "stories.yml").write_text(STORIES, encoding="utf-8")
    (root / "endpoints.yml").write_text("tracker_store: {type: memory}\n", encoding="utf-8")
    assert not train(Project(root)).skipped
    return root


@pytest.fixture
def project(trained: Path, tmp_path: Path) -> Path:
    root = tmp_path / "bot"
    shutil.copytree(trained, root)
    return root


def shell(
    project: Path,
    stdin: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    *options: str,
) -> tuple[int, list[str]]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))  # not a terminal
    code = main(["shell", "--project", str(project), *options])
    return code, capsys.readouterr().out.splitlines()


# --- bot shell ------------------------------------------------------------------------------


def test_shell_reads_one_message_per_line(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = shell(project, "你好\n我的卡丢了 尾号4321\n余额多少\n", monkeypatch, capsys)
    assert code == 0
    assert lines == [
        "你: 你好",
        "🤖 您好",
        "   [查询余额] → /query_balance",
        "你: 我的卡丢了 尾号4321",
        "🤖 请拨打热线挂失尾号4321的卡",
        "你: 余额多少",
        "🤖 余额请在App查看",
    ]


def test_shell_customer_sets_the_verified_customer(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = shell(project, "你好\n", monkeypatch, capsys, "--customer", "C1001")
    assert code == 0
    assert "🤖 您好C1001" in lines
    # a customer id typed as a payload does not count
    code, lines = shell(project, '/greet{"customer_id": "C1002"}\n', monkeypatch, capsys)
    assert "🤖 您好" in lines and not any("C1002" in line for line in lines[1:])


def test_shell_debug_shows_intent_and_actions(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _, lines = shell(project, "我的卡丢了 尾号4321\n", monkeypatch, capsys, "--debug")
    assert any(
        line.strip().startswith("· intent report_loss") and "card_last4=4321" in line
        for line in lines
    )
    assert any("· actions utter_loss [RulePolicy 1.00]" in line for line in lines)


def test_shell_stops_at_exit_and_keeps_the_sender(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "endpoints.yml").unlink()  # the default SQLite store, to look inside
    code, lines = shell(
        project, "你好\n/exit\n余额多少\n", monkeypatch, capsys, "--sender", "trainer-7"
    )
    assert code == 0
    assert lines[-1] == "   [查询余额] → /query_balance"  # nothing after /exit

    import asyncio

    from bot.core.tracker_store import SQLTrackerStore

    async def senders() -> list[str]:
        store = SQLTrackerStore(f"sqlite:///{project / 'data' / 'bankbot.db'}")
        try:
            return await store.senders()
        finally:
            await store.close()

    assert asyncio.run(senders()) == ["trainer-7"]


def test_shell_as_a_real_pipe(project: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "bot", "shell", "--project", str(project), "--customer", "C9"],
        input="你好\n余额多少\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "你: 你好"
    assert lines[1] == "🤖 您好C9"
    assert lines[-2:] == ["你: 余额多少", "🤖 余额请在App查看"]


# --- bot test core ---------------------------------------------------------------------------


def test_core_stories_all_passing(project: Path, tmp_path: Path) -> None:
    stories = tmp_path / "passing.yml"
    stories.write_text(PASSING, encoding="utf-8")
    out = tmp_path / "results"
    code = main(
        ["test", "core", "--project", str(project), "--stories", str(stories), "--out", str(out)]
    )
    assert code == 0
    report = json.loads((out / "story_report.json").read_text(encoding="utf-8"))
    assert (report["total"], report["passed"], report["failed"]) == (2, 2, 0)
    assert report["conversation_accuracy"] == 1.0
    assert report["action_accuracy"] == 1.0
    failed = yaml.safe_load((out / "failed_test_stories.yml").read_text(encoding="utf-8"))
    assert failed == {"stories": []}


def test_core_stories_with_a_failure(
    project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "stories"
    folder.mkdir()
    (folder / "a_passing.yml").write_text(PASSING, encoding="utf-8")
    (folder / "b_failing.yml").write_text(FAILING, encoding="utf-8")
    out = tmp_path / "results"
    code = main(
        ["test", "core", "--project", str(project), "--stories", str(folder), "--out", str(out)]
    )
    assert code == 1
    report = json.loads((out / "story_report.json").read_text(encoding="utf-8"))
    assert (report["total"], report["passed"], report["failed"]) == (3, 2, 1)
    (bad,) = [s for s in report["stories"] if not s["passed"]]
    assert bad["name"] == "wrong expectation"
    assert "utter_balance" in bad["failure"] and "utter_greet" in bad["failure"]
    failed = yaml.safe_load((out / "failed_test_stories.yml").read_text(encoding="utf-8"))
    assert [s["story"] for s in failed["stories"]] == ["wrong expectation"]
    assert failed["stories"][0]["steps"][0]["actions"] == ["utter_greet"]
    assert "wrong expectation" in capsys.readouterr().out


def test_core_stories_relative_paths_and_missing_file(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "tests" / "stories").mkdir(parents=True)
    (project / "tests" / "stories" / "s.yml").write_text(PASSING, encoding="utf-8")
    assert main(["test", "core", "--project", str(project)]) == 0
    assert (project / "results" / "story_report.json").is_file()
    assert main(["test", "core", "--project", str(project), "--stories", "nope.yml"]) == 1
    assert "no test stories" in capsys.readouterr().out


# --- bot visualize ------------------------------------------------------------------------------


def test_visualize_writes_the_graph(project: Path, tmp_path: Path) -> None:
    dot, png = tmp_path / "graph.dot", tmp_path / "graph.png"
    code = main(["visualize", "--project", str(project), "--dot", str(dot), "--out", str(png)])
    assert code == 0
    text = dot.read_text(encoding="utf-8")
    assert text.lstrip().startswith(("digraph", "strict digraph"))
    assert "utter_greet" in text and "query_balance" in text
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_visualize_dot_only(project: Path, tmp_path: Path) -> None:
    dot, png = tmp_path / "only.dot", tmp_path / "only.png"
    assert (
        main(
            [
                "visualize",
                "--project",
                str(project),
                "--dot",
                str(dot),
                "--out",
                str(png),
                "--no-png",
            ]
        )
        == 0
    )
    assert dot.is_file() and not png.exists()


INTENT_ONLY = """\
version: "3.1"
stories:
- story: card lost, written without the text
  steps:
  - intent: report_loss
    entities:
    - card_last4: "4321"
  - action: utter_loss
  - slot_was_set:
    - card_last4: "4321"
"""


def test_core_story_without_text_takes_the_steps_entities(project: Path, tmp_path: Path) -> None:
    """``- intent:`` with ``entities:`` and no ``user:`` text: the message carries them."""
    stories = tmp_path / "intent_only.yml"
    stories.write_text(INTENT_ONLY, encoding="utf-8")
    out = tmp_path / "results"
    code = main(
        ["test", "core", "--project", str(project), "--stories", str(stories), "--out", str(out)]
    )
    report = json.loads((out / "story_report.json").read_text(encoding="utf-8"))
    assert code == 0, report["stories"]
    assert report["stories"][0]["transcript"][0]["bot"] == ["请拨打热线挂失尾号4321的卡"]
