"""``bot visualize``: stories as a prefix-merged graph, written as .dot and PNG."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from bot.cli import visualize_cmd
from bot.core.stories import ActionStep, CheckpointStep, LoopStep, SlotStep, Story, UserStep
from bot.errors import BotError
from bot.training.visualize import (
    END,
    START,
    build_graph,
    layout,
    step_label,
    to_dot,
    write_visualization,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def stories() -> list[Story]:
    return [
        Story(
            "balance",
            (
                UserStep("greet"),
                ActionStep("utter_greet"),
                UserStep("query_balance", ({"entity": "card_last4", "value": "1"},)),
                ActionStep("action_balance"),
            ),
        ),
        Story(
            "loss",
            (
                UserStep("greet"),
                ActionStep("utter_greet"),
                UserStep("report_loss"),
                ActionStep("loss_form"),
                LoopStep("loss_form"),
            ),
        ),
        Story("vip", (SlotStep((("vip", True),)), UserStep("greet"), ActionStep("utter_vip"))),
    ]


def parse_dot(text: str) -> tuple[dict[str, str], set[tuple[str, str]]]:
    """Node id → label, and edges as (label, label)."""
    labels = dict(re.findall(r'^  (\w+) \[label="((?:[^"\\]|\\.)*)"', text, re.M))
    edges = {(labels[a], labels[b]) for a, b in re.findall(r"^  (\w+) -> (\w+);", text, re.M)}
    return labels, edges


def test_common_beginnings_are_merged() -> None:
    graph = build_graph(stories())
    labels = [n.label for n in graph.nodes.values()]
    assert labels.count("greet") == 2  # after START, and after the vip slot
    assert labels.count("utter_greet") == 1
    kinds = {n.label: n.kind for n in graph.nodes.values()}
    assert kinds["greet"] == "intent" and kinds["utter_greet"] == "action"
    assert kinds["vip=True"] == "slot" and kinds["active_loop: loss_form"] == "loop"
    assert kinds["query_balance {card_last4}"] == "intent"
    assert kinds["START"] == "start" and kinds["END"] == "end"
    assert len(graph.edges) == len(graph.nodes) - 2 + len(stories())  # tree + one END per story


def test_dot_has_nodes_edges_and_styles(tmp_path: Path) -> None:
    dot, png = tmp_path / "out" / "stories.dot", tmp_path / "out" / "stories.png"
    write_visualization(stories(), dot, png)
    assert png.read_bytes().startswith(PNG_MAGIC) and png.stat().st_size > 5000
    text = dot.read_text(encoding="utf-8")
    assert text.startswith("digraph stories {") and text.rstrip().endswith("}")
    labels, edges = parse_dot(text)
    assert labels[START] == "START" and labels[END] == "END"
    assert {
        ("START", "greet"),
        ("greet", "utter_greet"),
        ("utter_greet", "query_balance {card_last4}"),
        ("query_balance {card_last4}", "action_balance"),
        ("action_balance", "END"),
        ("utter_greet", "report_loss"),
        ("report_loss", "loss_form"),
        ("loss_form", "active_loop: loss_form"),
        ("active_loop: loss_form", "END"),
        ("START", "vip=True"),
        ("vip=True", "greet"),
        ("greet", "utter_vip"),
        ("utter_vip", "END"),
    } == edges
    # Intents and actions are styled differently.
    greet_line = next(line for line in text.splitlines() if 'label="greet"' in line)
    action_line = next(line for line in text.splitlines() if 'label="utter_greet"' in line)
    assert "rounded" in greet_line and "rounded" not in action_line


def test_dot_escapes_labels() -> None:
    graph = build_graph([Story("q", (UserStep(None, text='say "hi"'),))])
    labels, _ = parse_dot(to_dot(graph))
    assert r"say \"hi\"" in " ".join(labels.values())


def test_layout_is_layered() -> None:
    graph = build_graph(stories())
    pos = layout(graph)
    assert set(pos) == set(graph.nodes)
    for parent, kids in graph.children.items():
        for kid in kids:
            assert pos[kid][1] == pos[parent][1] - 1  # one row per step
        if kids:
            xs = [pos[k][0] for k in kids]
            assert pos[parent][0] == (xs[0] + xs[-1]) / 2
    assert pos[END][1] < min(y for node, (_, y) in pos.items() if node != END)
    leaves = [n for n, kids in graph.children.items() if not kids]
    assert sorted(pos[n][0] for n in leaves) == [0.0, 1.0, 2.0]


def test_empty_story_goes_from_start_to_end(tmp_path: Path) -> None:
    graph = write_visualization([Story("empty", ())], tmp_path / "g.dot", tmp_path / "g.png")
    assert set(graph.edges) == {(START, END)}
    assert (tmp_path / "g.png").exists()


def test_huge_graphs_get_only_the_dot_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bot.training.visualize.MAX_PNG_NODES", 5)
    graph = write_visualization(stories(), tmp_path / "g.dot", tmp_path / "g.png")
    assert len(graph.nodes) > 5
    assert (tmp_path / "g.dot").exists() and not (tmp_path / "g.png").exists()


def test_unflattened_steps_are_refused() -> None:
    with pytest.raises(TypeError, match="flatten"):
        step_label(CheckpointStep("x"))


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    visualize_cmd.register(parser.add_subparsers())
    args = parser.parse_args(["visualize", *argv])
    code: int = args.handler(args)
    return code


STORIES = """\
stories:
- story: greet
  steps:
  - intent: greet
  - action: utter_greet
  - checkpoint: asked
- story: yes
  steps:
  - checkpoint: asked
  - intent: affirm
  - action: utter_ok
- story: no
  steps:
  - checkpoint: asked
  - intent: deny
  - action: utter_no
rules:
- rule: not drawn
  steps:
  - intent: bye
  - action: utter_bye
"""


def test_cli_writes_dot_and_png(
    tiny_project: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tiny_project / "stories").mkdir()
    (tiny_project / "stories" / "s.yml").write_text(STORIES, encoding="utf-8")
    dot, png = tmp_path / "g.dot", tmp_path / "g.png"
    assert run_cli("--project", str(tiny_project), "--out", str(png), "--dot", str(dot)) == 0
    assert png.read_bytes().startswith(PNG_MAGIC)
    labels, edges = parse_dot(dot.read_text(encoding="utf-8"))
    assert ("utter_greet", "affirm") in edges and ("utter_greet", "deny") in edges
    assert list(labels.values()).count("utter_greet") == 1  # checkpoint paths merged
    assert "utter_bye" not in labels.values()
    assert "2 stories" in capsys.readouterr().out

    only_dot = tmp_path / "only.dot"
    assert (
        run_cli(
            "--project",
            str(tiny_project),
            "--dot",
            str(only_dot),
            "--no-png",
            "--out",
            str(tmp_path / "none.png"),
        )
        == 0
    )
    assert only_dot.exists() and not (tmp_path / "none.png").exists()


def test_cli_without_stories_is_a_clear_error(tiny_project: Path, tmp_path: Path) -> None:
    with pytest.raises(BotError, match="no stories found"):
        run_cli("--project", str(tiny_project), "--dot", str(tmp_path / "g.dot"))
