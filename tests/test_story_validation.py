"""Stories and rules against the domain, checkpoint structure and conflicts."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli.main import main
from bot.domain import Domain, load_domain
from bot.project import Project
from bot.training.data import Problem
from bot.training.story_validation import configured_max_history, validate_stories
from bot.validation import validate_project

DOMAIN = """\
version: "3.1"
intents: [greet, affirm, deny, faq, bye, query_balance, inform]
entities: [card_last4]
slots:
  card_last4:
    type: text
    mappings: [{type: from_entity, entity: card_last4}]
  vip:
    type: bool
    mappings: [{type: custom}]
  tier:
    type: categorical
    values: [gold, silver]
    mappings: [{type: custom}]
  note:
    type: text
    influence_conversation: false
    mappings: [{type: custom}]
responses:
  utter_greet: [{text: 您好}]
  utter_faq: [{text: 常见问题}]
  utter_vip_faq: [{text: 贵宾问题}]
  utter_ok: [{text: 好的}]
  utter_no: [{text: 不}]
  utter_bye: [{text: 再见}]
  utter_ask_help: [{text: 还需要什么帮助}]
actions: [action_balance, utter_custom, custom_loop]
forms:
  balance_form:
    required_slots: [card_last4]
"""
ALL_INTENTS = {"greet", "affirm", "deny", "faq", "bye", "query_balance", "inform"}


@pytest.fixture
def domain(tmp_path: Path) -> Domain:
    (tmp_path / "domain.yml").write_text(DOMAIN, encoding="utf-8")
    return load_domain(tmp_path / "domain.yml")


def check(tmp_path: Path, domain: Domain, text: str, **kwargs: int) -> list[Problem]:
    path = tmp_path / "stories" / "s.yml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return validate_stories(tmp_path, domain, [path], ALL_INTENTS, **kwargs)


def line_of(text: str, marker: str, nth: int = 1) -> int:
    return [i for i, line in enumerate(text.splitlines(), 1) if marker in line][nth - 1]


def with_text(problems: list[Problem], fragment: str) -> list[Problem]:
    return [p for p in problems if fragment in p.message]


def errors(problems: list[Problem]) -> list[Problem]:
    return [p for p in problems if p.level == "error"]


CLEAN = """\
version: "3.1"
stories:
- story: greet
  steps:
  - intent: greet
  - action: utter_greet
  - or:
    - intent: affirm
    - intent: inform
  - action: utter_ok
- story: balance
  steps:
  - intent: query_balance
    entities:
    - card_last4: "1234"
  - slot_was_set:
    - card_last4: "1234"
  - action: balance_form
  - active_loop: balance_form
  - active_loop: null
  - action: action_balance
- story: vip faq
  steps:
  - intent: greet
  - action: utter_greet
  - intent: deny
  - action: utter_no
rules:
- rule: faq
  steps:
  - intent: faq
  - action: utter_faq
- rule: faq for vips
  condition:
  - slot_was_set:
    - vip: true
  steps:
  - intent: faq
  - action: utter_vip_faq
- rule: bye
  steps:
  - intent: bye
  - action: utter_bye
  - action: custom_loop
  - active_loop: custom_loop
"""


def test_clean_stories_have_no_problems(tmp_path: Path, domain: Domain) -> None:
    assert check(tmp_path, domain, CLEAN) == []


UNKNOWN = """\
stories:
- story: unknowns
  steps:
  - intent: gret
    entities:
    - card_last: "1"
  - action: utter_hello
  - action: action_foo
  - action: utter_custom
  - slot_was_set:
    - vipp: true
    - tier: platinum
    - vip: maybe
  - active_loop: balanc_form
  - or:
    - intent: byee
    - intent: bye
  - action: utter_bye
  - wait: 10
  - user: 你好
- story: defaults are known
  steps:
  - intent: nlu_fallback
  - action: action_default_fallback
  - intent: out_of_scope
  - action: action_two_stage_fallback
"""


def test_names_must_be_in_the_domain(tmp_path: Path, domain: Domain) -> None:
    problems = check(tmp_path, domain, UNKNOWN)

    def one(fragment: str, marker: str, level: str = "error") -> Problem:
        (problem,) = with_text(problems, fragment)
        assert problem.level == level, problem
        assert problem.source is not None
        assert problem.source.file == "stories/s.yml"
        assert problem.source.line == line_of(UNKNOWN, marker), problem
        assert problem.hint
        return problem

    assert "did you mean 'greet'" in one("intent 'gret'", "- intent: gret").message
    assert "card_last4" in one("entity 'card_last'", "- intent: gret").message
    assert "responses:" in one("response 'utter_hello'", "utter_hello").hint
    assert "actions:" in one("action 'action_foo'", "action_foo").hint
    one("'utter_custom' is listed under 'actions:' but has no response", "utter_custom")
    one("slot 'vipp'", "- slot_was_set:")
    one("'platinum' is not one of its values", "- slot_was_set:", "warning")
    one("'maybe' is not true or false", "- slot_was_set:", "warning")
    assert "forms:" in one("active_loop 'balanc_form'", "balanc_form").hint
    one("intent 'byee'", "- intent: byee")
    one("'wait' in story 'unknowns'", "- wait: 10", "warning")
    one("has text but no intent", "- user: 你好")
    assert not with_text(problems, "nlu_fallback") and not with_text(problems, "out_of_scope")


def test_unused_intents_are_warned(tmp_path: Path, domain: Domain) -> None:
    text = "stories:\n- story: s\n  steps:\n  - intent: greet\n  - action: utter_greet\n"
    problems = check(tmp_path, domain, text)
    unused = sorted(p.message.split("'")[1] for p in with_text(problems, "not used in any"))
    assert unused == sorted(ALL_INTENTS - {"greet"})
    assert all(p.level == "warning" for p in problems)


def test_intent_with_nlu_examples_but_not_in_domain_gets_a_precise_fix(
    tmp_path: Path, domain: Domain
) -> None:
    path = tmp_path / "s.yml"
    path.write_text("stories:\n- story: s\n  steps:\n  - intent: thanks\n", encoding="utf-8")
    problems = validate_stories(tmp_path, domain, [path], ALL_INTENTS | {"thanks"})
    (problem,) = with_text(problems, "intent 'thanks'")
    assert "it has NLU examples" in problem.hint


CHECKPOINTS = """\
stories:
- story: start
  steps:
  - intent: greet
  - action: utter_greet
  - checkpoint: menu
  - checkpoint: dangling
- story: menu
  steps:
  - checkpoint: menu
  - intent: faq
  - action: utter_faq
- story: orphan
  steps:
  - checkpoint: never_reached
  - intent: bye
  - action: utter_bye
rules:
- rule: with checkpoint
  steps:
  - checkpoint: menu
  - intent: bye
  - action: utter_bye
- rule: too long
  steps:
  - intent: greet
  - action: utter_greet
  - intent: affirm
  - action: utter_ok
"""


def test_checkpoint_and_rule_structure(tmp_path: Path, domain: Domain) -> None:
    problems = check(tmp_path, domain, CHECKPOINTS)
    (orphan,) = with_text(problems, "never_reached")
    assert orphan.level == "error" and "never used" in orphan.message
    assert orphan.source is not None
    assert orphan.source.line == line_of(CHECKPOINTS, "- checkpoint: never_reached")
    (dangling,) = with_text(problems, "'dangling'")
    assert dangling.level == "warning"
    assert dangling.source is not None
    assert dangling.source.line == line_of(CHECKPOINTS, "- checkpoint: dangling")
    assert not with_text(problems, "checkpoint 'menu', but")
    (rule_cp,) = with_text(problems, "uses checkpoint")
    assert rule_cp.level == "error"
    (long_rule,) = with_text(problems, "has 2 user messages")
    assert long_rule.level == "warning"
    assert long_rule.source is not None
    assert long_rule.source.line == line_of(CHECKPOINTS, "- rule: too long")


def test_duplicate_names_are_warned(tmp_path: Path, domain: Domain) -> None:
    text = (
        "stories:\n- story: s\n  steps:\n  - intent: greet\n  - action: utter_greet\n"
        "- story: s\n  steps:\n  - intent: greet\n  - action: utter_greet\n"
    )
    (dup,) = with_text(check(tmp_path, domain, text), "are named 's'")
    assert dup.level == "warning"


STORY_CONFLICT = """\
stories:
- story: agree
  steps:
  - intent: greet
  - action: utter_greet
  - intent: affirm
  - action: utter_ok
- story: disagree
  steps:
  - intent: greet
  - action: utter_greet
  - intent: affirm
  - action: utter_no
"""


def test_story_conflict_names_both_places(tmp_path: Path, domain: Domain) -> None:
    (conflict,) = errors(check(tmp_path, domain, STORY_CONFLICT))
    assert conflict.source is not None
    assert conflict.source.line == line_of(STORY_CONFLICT, "utter_no")
    assert "story 'disagree' runs 'utter_no'" in conflict.message
    assert f"story 'agree' (stories/s.yml:{line_of(STORY_CONFLICT, 'utter_ok')})" in (
        conflict.message
    )
    assert "runs 'utter_ok'" in conflict.message
    assert "slot_was_set" in conflict.hint


def test_a_distinguishing_slot_or_entity_removes_the_conflict(
    tmp_path: Path, domain: Domain
) -> None:
    with_slot = STORY_CONFLICT.replace(
        "  - intent: affirm\n  - action: utter_no",
        "  - slot_was_set:\n    - vip: true\n  - intent: affirm\n  - action: utter_no",
    )
    assert errors(check(tmp_path, domain, with_slot)) == []
    with_entity = STORY_CONFLICT.replace(
        "  - intent: affirm\n  - action: utter_no",
        "  - intent: affirm\n    entities:\n    - card_last4\n  - action: utter_no",
    )
    assert errors(check(tmp_path, domain, with_entity)) == []


def test_slot_values_count_only_as_the_policies_see_them(tmp_path: Path, domain: Domain) -> None:
    def variant(slot: str, first: str, second: str) -> str:
        return (
            f"stories:\n- story: one\n  steps:\n  - slot_was_set:\n    - {slot}: {first}\n"
            "  - intent: faq\n  - action: utter_faq\n"
            f"- story: two\n  steps:\n  - slot_was_set:\n    - {slot}: {second}\n"
            "  - intent: faq\n  - action: utter_vip_faq\n"
        )

    # A text slot is only "set" for the policies: different values do not tell stories apart.
    assert len(errors(check(tmp_path, domain, variant("card_last4", "'1111'", "'2222'")))) == 1
    # A slot that does not influence the conversation is invisible to them.
    assert len(errors(check(tmp_path, domain, variant("note", "a", "b")))) == 1
    # Bool and categorical values do.
    assert errors(check(tmp_path, domain, variant("vip", "true", "false"))) == []
    assert errors(check(tmp_path, domain, variant("tier", "gold", "silver"))) == []


LONG_PREFIX = """\
stories:
- story: one
  steps:
  - intent: greet
  - action: utter_greet
  - intent: affirm
  - action: utter_ok
  - intent: inform
  - action: utter_ok
  - intent: faq
  - action: utter_faq
- story: two
  steps:
  - intent: deny
  - action: utter_no
  - intent: affirm
  - action: utter_ok
  - intent: inform
  - action: utter_ok
  - intent: faq
  - action: utter_vip_faq
"""


def test_max_history_limits_how_far_back_stories_differ(tmp_path: Path, domain: Domain) -> None:
    # The stories differ in their first turn; the last action is 7 states later.
    assert errors(check(tmp_path, domain, LONG_PREFIX, max_history=8)) == []
    (conflict,) = errors(check(tmp_path, domain, LONG_PREFIX, max_history=3))
    assert "same last 3 turns" in conflict.message


def test_max_history_comes_from_config(tmp_path: Path, domain: Domain) -> None:
    (tmp_path / "config.yml").write_text(
        "policies:\n  - name: RulePolicy\n  - name: MemoizationPolicy\n    max_history: 3\n",
        encoding="utf-8",
    )
    assert configured_max_history(tmp_path / "config.yml") == 3
    assert len(errors(check(tmp_path, domain, LONG_PREFIX))) == 1
    assert configured_max_history(tmp_path / "missing.yml") == 5


RULE_CONFLICTS = """\
stories:
- story: faq then more
  steps:
  - intent: faq
  - action: utter_faq
  - action: utter_ask_help
- story: vip faq
  steps:
  - slot_was_set:
    - vip: true
  - intent: faq
  - action: utter_vip_faq
rules:
- rule: faq
  steps:
  - intent: faq
  - action: utter_faq
- rule: faq again
  steps:
  - intent: faq
  - action: utter_ok
"""


def test_rules_conflict_with_rules_and_stories(tmp_path: Path, domain: Domain) -> None:
    problems = errors(check(tmp_path, domain, RULE_CONFLICTS))
    (rule_rule,) = with_text(problems, "rule 'faq again' runs 'utter_ok' here, but rule 'faq'")
    assert rule_rule.source is not None
    assert rule_rule.source.line == line_of(RULE_CONFLICTS, "utter_ok")
    # The rule waits for the user after utter_faq; the story runs another action.
    listen = with_text(problems, "story 'faq then more' runs 'utter_ask_help'")
    assert len(listen) == 1 and "waits for the user" in listen[0].message
    assert "rules win over stories" in listen[0].hint
    # A rule without a condition also applies when the vip slot is set.
    assert with_text(problems, "story 'vip faq' runs 'utter_vip_faq' here, but rule 'faq'")


RULES_APART = """\
stories:
- story: greet later
  steps:
  - intent: faq
  - action: utter_faq
  - intent: greet
  - action: utter_greet
  - action: utter_ask_help
rules:
- rule: faq
  steps:
  - intent: faq
  - action: utter_faq
- rule: faq for vips
  condition:
  - slot_was_set:
    - vip: true
  steps:
  - intent: faq
  - action: utter_vip_faq
- rule: greet first
  conversation_start: true
  steps:
  - intent: greet
  - action: utter_greet
- rule: ask after greeting
  wait_for_user_input: false
  steps:
  - intent: greet
  - action: utter_greet
  - action: utter_ask_help
"""


def test_rule_conditions_and_conversation_start_keep_rules_apart(
    tmp_path: Path, domain: Domain
) -> None:
    # A condition makes a rule more specific, and a conversation-start rule applies only at
    # the start: none of these disagree, and the later greeting follows the anywhere rule.
    assert errors(check(tmp_path, domain, RULES_APART)) == []
    at_start = RULES_APART.replace(
        "rules:\n",
        "- story: greet at start\n  steps:\n  - intent: greet\n  - action: utter_greet\n"
        "  - action: utter_ask_help\nrules:\n",
    )
    (conflict,) = errors(check(tmp_path, domain, at_start))
    assert conflict.message.startswith(
        "story 'greet at start' runs 'utter_ask_help' here, but rule 'greet first'"
    )
    assert "waits for the user" in conflict.message


def test_conflicts_through_checkpoints_are_reported_once(tmp_path: Path, domain: Domain) -> None:
    text = """\
stories:
- story: a
  steps:
  - intent: greet
  - action: utter_greet
  - checkpoint: x
- story: b
  steps:
  - intent: deny
  - action: utter_no
  - checkpoint: x
- story: c
  steps:
  - checkpoint: x
  - intent: faq
  - action: utter_faq
- story: d
  steps:
  - checkpoint: x
  - intent: faq
  - action: utter_vip_faq
"""
    (conflict,) = errors(check(tmp_path, domain, text))
    assert "story 'a > d' runs 'utter_vip_faq'" in conflict.message
    assert "story 'a > c'" in conflict.message


def test_no_story_files_means_no_story_problems(tmp_path: Path, domain: Domain) -> None:
    assert validate_stories(tmp_path, domain, [], ALL_INTENTS) == []


def test_validate_project_checks_the_stories_folder(tiny_project: Path) -> None:
    stories = tiny_project / "stories" / "nested"
    stories.mkdir(parents=True)
    (stories / "bad.yml").write_text(
        "stories:\n- story: s\n  steps:\n  - intent: greet\n  - action: utter_nope\n  - intnt: x\n",
        encoding="utf-8",
    )
    (tiny_project / "stories" / "ok.yaml").write_text(
        "stories:\n- story: t\n  steps:\n  - intent: gret\n", encoding="utf-8"
    )
    problems = validate_project(Project(tiny_project))
    assert [str(p.source) for p in with_text(problems, "intnt")] == ["stories/nested/bad.yml:6"]
    assert [str(p.source) for p in with_text(problems, "intent 'gret'")] == ["stories/ok.yaml:4"]
    assert main(["data", "validate", "--project", str(tiny_project)]) == 1
