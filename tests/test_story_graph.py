"""Expanding checkpoints and ``or`` steps into flat stories."""

from __future__ import annotations

import logging

import pytest

from bot.core.stories import (
    ActionStep,
    CheckpointStep,
    LoopStep,
    OrStep,
    SlotStep,
    Step,
    Story,
    UserStep,
    WaitStep,
)
from bot.training.story_graph import expand, flatten


def u(intent: str) -> UserStep:
    return UserStep(intent)


def a(action: str) -> ActionStep:
    return ActionStep(action)


def cp(name: str) -> CheckpointStep:
    return CheckpointStep(name)


def story(name: str, *steps: Step, kind: str = "story") -> Story:
    return Story(name, tuple(steps), kind)  # type: ignore[arg-type]


def names(step_list: tuple[Step, ...]) -> list[str]:
    out = []
    for step in step_list:
        if isinstance(step, UserStep):
            out.append(str(step.intent))
        elif isinstance(step, ActionStep):
            out.append(step.action)
        elif isinstance(step, SlotStep):
            out.append("slot:" + ",".join(n for n, _ in step.slots))
        elif isinstance(step, LoopStep):
            out.append(f"loop:{step.loop}")
        else:
            raise AssertionError(f"not flat: {step!r}")
    return out


def test_story_without_checkpoints_is_kept() -> None:
    s = story("plain", u("greet"), a("utter_greet"), LoopStep(None), SlotStep((("x", 1),)))
    (flat,) = flatten([s])
    assert flat.name == "plain" and flat.steps == s.steps


def test_checkpoint_continues_with_every_story_starting_there() -> None:
    stories = [
        story("start", u("greet"), a("utter_greet"), cp("menu")),
        story("balance", cp("menu"), u("query_balance"), a("action_balance")),
        story("loss", cp("menu"), u("report_loss"), a("utter_loss")),
    ]
    flat = flatten(stories)
    assert [f.name for f in flat] == ["start > balance", "start > loss"]
    assert names(flat[0].steps) == ["greet", "utter_greet", "query_balance", "action_balance"]
    assert names(flat[1].steps) == ["greet", "utter_greet", "report_loss", "utter_loss"]


def test_chains_of_checkpoints_and_several_end_checkpoints() -> None:
    stories = [
        story("a", u("greet"), a("utter_greet"), cp("x"), cp("y")),
        story("b", cp("x"), u("affirm"), a("utter_ok"), cp("z")),
        story("c", cp("y"), u("deny"), a("utter_no")),
        story("d", cp("z"), u("bye"), a("utter_bye")),
    ]
    assert [f.name for f in flatten(stories)] == ["a > b > d", "a > c"]


def test_a_checkpoint_in_the_middle_splits_the_story() -> None:
    stories = [
        story("main", u("greet"), a("utter_greet"), cp("x"), u("bye"), a("utter_bye")),
        story("detour", cp("x"), u("faq"), a("utter_faq")),
    ]
    flat = flatten(stories)
    assert [f.name for f in flat] == ["main", "main > detour"]
    assert names(flat[0].steps) == ["greet", "utter_greet", "bye", "utter_bye"]
    assert names(flat[1].steps) == ["greet", "utter_greet", "faq", "utter_faq"]


def test_checkpoint_that_leads_nowhere_ends_the_story() -> None:
    flat = flatten([story("a", u("greet"), a("utter_greet"), cp("nowhere"))])
    assert [(f.name, names(f.steps)) for f in flat] == [("a", ["greet", "utter_greet"])]


def test_unreachable_checkpoint_story_is_not_standalone() -> None:
    assert flatten([story("orphan", cp("never"), u("bye"), a("utter_bye"))]) == []


def test_cycles_terminate() -> None:
    stories = [
        story("a", u("greet"), a("utter_greet"), cp("loop")),
        story("again", cp("loop"), u("more"), a("utter_more"), cp("loop")),
        story("self", cp("s"), u("x"), a("y"), cp("s")),
    ]
    flat = flatten(stories)
    assert [f.name for f in flat] == ["a > again"]
    assert names(flat[0].steps) == ["greet", "utter_greet", "more", "utter_more"]


def test_mutual_cycle_terminates() -> None:
    stories = [
        story("start", u("greet"), a("utter_greet"), cp("p")),
        story("p", cp("p"), u("a"), a("utter_a"), cp("q")),
        story("q", cp("q"), u("b"), a("utter_b"), cp("p")),
    ]
    flat = flatten(stories)
    assert [f.name for f in flat] == ["start > p > q"]


def test_or_gives_one_story_per_alternative() -> None:
    s = story(
        "thanks",
        u("greet"),
        a("utter_greet"),
        OrStep((u("affirm"), u("thanks"), SlotStep((("happy", True),)))),
        a("utter_welcome"),
    )
    flat = flatten([s])
    assert [f.name for f in flat] == [
        "thanks (or: affirm)",
        "thanks (or: thanks)",
        "thanks (or: happy=True)",
    ]
    assert [names(f.steps)[2] for f in flat] == ["affirm", "thanks", "slot:happy"]


def test_or_and_checkpoints_combine() -> None:
    stories = [
        story("a", OrStep((u("greet"), u("hello"))), a("utter_greet"), cp("x")),
        story("b", cp("x"), OrStep((u("yes"), u("ok"))), a("utter_ok")),
    ]
    flat = flatten(stories)
    assert len(flat) == 4
    assert flat[0].name == "a (or: greet) > b (or: yes)"
    assert {tuple(names(f.steps)[::2]) for f in flat} == {
        ("greet", "yes"),
        ("greet", "ok"),
        ("hello", "yes"),
        ("hello", "ok"),
    }


def test_result_holds_only_flat_steps_and_drops_waits() -> None:
    s = story("t", u("greet"), WaitStep(60.0), a("utter_greet"), cp("end"))
    (flat,) = flatten([s])
    assert all(isinstance(x, UserStep | ActionStep | SlotStep | LoopStep) for x in flat.steps)
    assert names(flat.steps) == ["greet", "utter_greet"]


def test_rules_expand_or_but_not_checkpoints() -> None:
    rule = Story(
        "r",
        (cp("x"), OrStep((u("bye"), u("goodbye"))), a("utter_bye")),
        "rule",
        condition=(SlotStep((("verified", True),)),),
        wait_for_user_input=False,
    )
    other = story("s", cp("x"), u("greet"), a("utter_greet"))
    flat = flatten([rule, other])
    assert [f.name for f in flat] == ["r (or: bye)", "r (or: goodbye)"]
    assert all(f.kind == "rule" and not f.wait_for_user_input for f in flat)
    assert all(f.condition == rule.condition for f in flat)
    assert names(flat[1].steps) == ["goodbye", "utter_bye"]


def test_expansion_is_capped(caplog: pytest.LogCaptureFixture) -> None:
    # 2**12 = 4096 combinations from twelve two-way ``or`` steps.
    steps: list[Step] = []
    for i in range(12):
        steps += [OrStep((u(f"a{i}"), u(f"b{i}"))), a(f"utter_{i}")]
    s = story("wide", *steps)
    flat, truncated = expand([s], max_stories=100)
    assert len(flat) == 100 and truncated
    full, truncated = expand([s], max_stories=5000)
    assert len(full) == 4096 and not truncated
    with caplog.at_level(logging.WARNING, logger="bot.training.story_graph"):
        assert len(flatten([s, s], max_stories=5000)) == 5000
    assert "stopped at 5000" in caplog.text


def test_checkpoint_fan_out_is_capped() -> None:
    # Ten layers of three-way checkpoint branching: 3**10 paths.
    stories = [story("root", u("greet"), a("utter_greet"), cp("l0"))]
    for layer in range(10):
        for branch in range(3):
            stories.append(
                story(
                    f"l{layer}b{branch}",
                    cp(f"l{layer}"),
                    u(f"i{branch}"),
                    a(f"act{branch}"),
                    cp(f"l{layer + 1}"),
                )
            )
    flat, truncated = expand(stories, max_stories=1000)
    assert truncated and len(flat) == 1000
    assert all(len(f.steps) == 22 for f in flat)
