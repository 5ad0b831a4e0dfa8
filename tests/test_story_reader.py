"""Reading Rasa 3.x stories, rules and test stories with file:line problems."""

from __future__ import annotations

from pathlib import Path

from bot.core.stories import (
    ANY_VALUE,
    ActionStep,
    CheckpointStep,
    LoopStep,
    OrStep,
    SlotStep,
    UserStep,
    WaitStep,
)
from bot.training.data import Problem, Source
from bot.training.story_reader import load_story_files, load_test_stories, read_story_file

GOOD = """\
version: "3.1"
stories:
- story: balance
  metadata:
    customer_id: C001
  steps:
  - intent: query_balance
    entities:
    - card_last4: "1234"
    - account_type
    - entity: amount
      value: 500
      role: limit
  - action: utter_balance
  - slot_was_set:
    - card_last4: "1234"
    - verified
    - vip: true
  - active_loop: transfer_form
  - active_loop: null
  - or:
    - intent: affirm
    - slot_was_set:
      - confirmed: true
  - checkpoint: after_balance
rules:
- rule: greet at start
  conversation_start: true
  wait_for_user_input: false
  condition:
  - active_loop: null
  - slot_was_set:
    - verified: true
  steps:
  - intent: greet
  - action: utter_greet
"""


def write(tmp_path: Path, text: str, name: str = "stories.yml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def line_of(text: str, marker: str, nth: int = 1) -> int:
    return [i for i, line in enumerate(text.splitlines(), 1) if marker in line][nth - 1]


def test_reads_every_step_kind_with_lines(tmp_path: Path) -> None:
    result, problems = read_story_file(write(tmp_path, GOOD), "stories.yml")
    assert problems == []
    (story,) = result.stories
    assert story.name == "balance" and story.kind == "story"
    assert story.metadata == {"customer_id": "C001"}
    assert story.source == Source("stories.yml", line_of(GOOD, "- story: balance"))
    user, action, slots, loop, no_loop, alt, checkpoint = story.steps
    assert isinstance(user, UserStep) and user.intent == "query_balance" and user.text is None
    assert user.entities == (
        {"entity": "card_last4", "value": "1234"},
        {"entity": "account_type", "value": None},
        {"entity": "amount", "value": 500, "role": "limit"},
    )
    assert user.source == Source("stories.yml", line_of(GOOD, "- intent: query_balance"))
    assert action == ActionStep("utter_balance", Source("stories.yml", 14))
    assert isinstance(slots, SlotStep)
    assert slots.slots[0] == ("card_last4", "1234")
    assert slots.slots[1][0] == "verified" and slots.slots[1][1] is ANY_VALUE
    assert slots.slots[2] == ("vip", True)
    assert isinstance(loop, LoopStep) and loop.loop == "transfer_form"
    assert isinstance(no_loop, LoopStep) and no_loop.loop is None
    assert isinstance(alt, OrStep)
    assert [type(a) for a in alt.alternatives] == [UserStep, SlotStep]
    assert isinstance(checkpoint, CheckpointStep) and checkpoint.name == "after_balance"


def test_reads_rule_options(tmp_path: Path) -> None:
    result, problems = read_story_file(write(tmp_path, GOOD))
    assert problems == []
    (rule,) = result.rules
    assert rule.kind == "rule" and rule.name == "greet at start"
    assert rule.conversation_start is True and rule.wait_for_user_input is False
    assert [type(s) for s in rule.condition] == [LoopStep, SlotStep]
    assert [type(s) for s in rule.steps] == [UserStep, ActionStep]


def test_rule_defaults(tmp_path: Path) -> None:
    text = "rules:\n- rule: r\n  steps:\n  - intent: bye\n  - action: utter_bye\n"
    result, problems = read_story_file(write(tmp_path, text))
    assert problems == []
    (rule,) = result.rules
    assert rule.conversation_start is False and rule.wait_for_user_input is True
    assert rule.condition == ()


TEST_STORIES = """\
version: "3.1"
stories:
- story: lost card
  metadata:
    customer_id: C042
  steps:
  - user: |
      我的[信用卡]{"entity": "account_type", "value": "credit_card"}丢了
    intent: report_loss
  - action: utter_confirm_loss
  - wait: 3600
  - user: |
      尾号[1234](card_last4)
    intent: inform
    entities:
    - card_last4: "1234"
  - user: 随便说说
rules:
- rule: not a test
  steps:
  - intent: greet
  - action: utter_greet
"""


def test_test_stories_carry_text_and_expected_intent(tmp_path: Path) -> None:
    path = write(tmp_path, TEST_STORIES, "tests/test_stories.yml")
    result, problems = read_story_file(path)
    assert problems == []
    (story,) = result.stories
    assert story.kind == "test" and story.metadata == {"customer_id": "C042"}
    first, _, wait, second, free = story.steps
    assert isinstance(first, UserStep)
    assert first.text == "我的信用卡丢了" and first.intent == "report_loss"
    assert first.entities == ({"entity": "account_type", "value": "credit_card"},)
    assert isinstance(wait, WaitStep) and wait.seconds == 3600.0
    assert isinstance(second, UserStep) and second.text == "尾号1234"
    assert second.entities == ({"entity": "card_last4", "value": "1234"},)
    assert isinstance(free, UserStep) and free.intent is None and free.text == "随便说说"


def test_load_test_stories_marks_tests_and_warns_about_rules(tmp_path: Path) -> None:
    path = write(tmp_path, TEST_STORIES, "tests/test_stories.yml")
    plain = write(tmp_path, "stories:\n- story: s\n  steps:\n  - intent: greet\n", "tests/b.yml")
    stories, problems = load_test_stories([path, plain], tmp_path)
    assert [s.kind for s in stories] == ["test", "test"]
    assert stories[0].source == Source("tests/test_stories.yml", 3)
    (warning,) = problems
    assert warning.level == "warning" and "not a test" in warning.message
    assert warning.source == Source("tests/test_stories.yml", line_of(TEST_STORIES, "- rule:"))


BROKEN = """\
version: "3.1"
stories:
- story: typo
  steps:
  - intnt: greet
  - action: utter_greet
- story: no action name
  steps:
  - intent: greet
  - action:
- story: bad slots
  steps:
  - slot_was_set: verified
- story: two keys
  steps:
  - intent: greet
    action: utter_greet
- story: bad wait
  steps:
  - wait: soon
- story: bad entities
  steps:
  - intent: greet
    entities: card_last4
- story: unknown key
  unknown_key: 1
  steps:
  - intent: greet
- story: no steps
- rule: in the wrong list
  steps:
  - intent: greet
- story: bad markup
  steps:
  - user: |
      [尾号1234]{"entity": card}
    intent: inform
- story: entities on action
  steps:
  - action: utter_greet
    entities:
    - card_last4
- story: fine
  steps:
  - intent: greet
  - action: utter_greet
rules:
- rule: bad flag
  wait_for_user_input: maybe
  steps:
  - intent: greet
- rule: intent in condition
  condition:
  - intent: greet
  steps:
  - action: utter_greet
"""


def find(problems: list[Problem], text: str) -> Problem:
    matches = [p for p in problems if text in p.message]
    assert matches, f"no problem mentions {text!r}: {[str(p) for p in problems]}"
    return matches[0]


def test_every_problem_has_file_line_and_fix(tmp_path: Path) -> None:
    result, problems = read_story_file(write(tmp_path, BROKEN), "stories/broken.yml")
    assert all(p.source is not None and p.source.file == "stories/broken.yml" for p in problems)
    assert all(p.hint for p in problems)

    def at(text: str) -> int:
        source = find(problems, text).source
        assert source is not None
        return source.line

    typo = find(problems, "intnt")
    assert "did you mean 'intent'" in typo.message
    assert at("intnt") == line_of(BROKEN, "- intnt: greet")
    assert at("'action' has no name") == line_of(BROKEN, "- action:", 2)
    assert at("'slot_was_set' is not a list") == line_of(BROKEN, "slot_was_set: verified")
    assert at("several step keys") == line_of(BROKEN, "- intent: greet", 2)
    assert at("'wait' is 'soon'") == line_of(BROKEN, "- wait: soon")
    assert at("'entities' is not a list") == line_of(BROKEN, "entities: card_last4")
    assert at("unknown key 'unknown_key'") == line_of(BROKEN, "unknown_key: 1")
    assert at("'no steps' has no 'steps:'") == line_of(BROKEN, "- story: no steps")
    assert at("a 'rule' is listed under 'stories:'") == line_of(BROKEN, "- rule: in the wrong")
    assert at("not valid JSON") == line_of(BROKEN, "[尾号1234]")
    assert at("'entities' belongs to an intent step") == line_of(BROKEN, "    entities:", 2)
    assert at("'wait_for_user_input' of rule 'bad flag'") == line_of(BROKEN, "maybe")
    assert at("'intent' is not allowed in rule") == line_of(BROKEN, "- intent: greet", 8)
    assert all(p.level == "error" for p in problems)
    # Stories with an error are dropped (they would train as something else); the rest stay.
    assert [s.name for s in result.stories] == ["fine"]
    assert [r.name for r in result.rules] == []


def test_invalid_yaml_is_a_problem_with_its_line(tmp_path: Path) -> None:
    text = "stories:\n- story: a\n  steps:\n  - intent: [greet\n  - action: x\n"
    result, problems = read_story_file(write(tmp_path, text), "s.yml")
    assert result.stories == [] and result.rules == []
    (problem,) = problems
    assert problem.level == "error" and "invalid YAML" in problem.message
    assert problem.source is not None and problem.source.line >= 4


def test_wrong_shapes_are_problems_not_crashes(tmp_path: Path) -> None:
    for text, fragment in [
        ("- just a list\n", "not a mapping"),
        ("stories: hello\n", "'stories:' is not a list"),
        ("stories:\n- plain string\n", "a story is not a mapping"),
        ("stories:\n- story: s\n  steps: 5\n", "are not a list"),
        (
            "stories:\n- story: s\n  steps:\n  - or: [{intent: a}, {action: b}]\n",
            "'action' is not allowed",
        ),
        ("storys:\n- story: s\n", "unknown top-level key 'storys'"),
        ("stories:\n- story: s\n  steps:\n  - slot_was_set:\n    - [a, b]\n", "cannot read a slot"),
        (
            "stories:\n- story: s\n  steps:\n  - intent: greet\n"
            "    entities:\n    - {a: 1, b: 2}\n",
            "cannot read an entity",
        ),
        ("stories:\n- story: s\n  metadata: [1]\n  steps:\n  - intent: a\n", "'metadata'"),
    ]:
        _, problems = read_story_file(write(tmp_path, text), "s.yml")
        find(problems, fragment)


def test_other_keys_of_a_mixed_file_are_ignored(tmp_path: Path) -> None:
    text = 'version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - 你好\n'
    result, problems = read_story_file(write(tmp_path, text))
    assert problems == [] and result.stories == [] and result.rules == []


def test_empty_file_and_single_alternative(tmp_path: Path) -> None:
    assert read_story_file(write(tmp_path, ""))[1] == []
    text = "stories:\n- story: s\n  steps:\n  - or:\n    - intent: a\n"
    result, problems = read_story_file(write(tmp_path, text))
    assert [p.level for p in problems] == ["warning"]
    assert len(result.stories) == 1


def test_load_story_files_names_files_relative_to_root(tmp_path: Path) -> None:
    a = write(tmp_path, GOOD, "stories/a.yml")
    b = write(tmp_path, "stories:\n- story: s\n  steps:\n  - intnt: x\n", "stories/b.yml")
    stories, rules, problems = load_story_files([a, b], tmp_path)
    assert [s.name for s in stories] == ["balance"]
    assert [r.name for r in rules] == ["greet at start"]
    assert stories[0].source is not None and stories[0].source.file == "stories/a.yml"
    assert [str(p.source) for p in problems] == ["stories/b.yml:4"]
