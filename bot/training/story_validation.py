"""Stories and rules checked against the domain, and for conflicts (``bot data validate``).

Names: intents, entities, actions, responses, slots and forms must be in ``domain.yml``.
Structure: checkpoints must connect; rules should be short snippets.
Conflicts: after expanding checkpoints and ``or`` steps, two stories must not do different
things after the same last ``max_history`` states (what the memoization policy sees), and a
story must not contradict a rule that applies at the same point (rules win at runtime).
"""

from __future__ import annotations

import difflib
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.core.stories import (
    ANY_VALUE,
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
from bot.domain import REQUESTED_SLOT, Domain
from bot.errors import ConfigError
from bot.settings_file import read_mapping
from bot.training.data import Problem, Source
from bot.training.story_graph import MAX_STORIES, expand
from bot.training.story_reader import load_story_files

MAX_HISTORY = 5
LISTEN = "action_listen"
# Intents Rasa knows without a declaration in domain.yml.
DEFAULT_INTENTS = ("nlu_fallback", "restart", "back", "out_of_scope", "session_start")

_DOMAIN = Source("domain.yml", 1)


def validate_stories(
    project_root: Path,
    domain: Domain,
    story_paths: list[Path],
    nlu_intents: set[str],
    max_history: int | None = None,
) -> list[Problem]:
    """Every problem of the stories and rules in ``story_paths``. ``max_history`` defaults
    to the memoization policy's in ``config.yml`` (else 5)."""
    stories, rules, problems = load_story_files(story_paths, project_root)
    if not stories and not rules:
        return problems
    problems.extend(check_names(stories, rules, domain, nlu_intents))
    problems.extend(check_checkpoints(stories))
    problems.extend(check_rules(rules))
    problems.extend(check_duplicate_names([*stories, *rules]))
    flat, truncated = expand([*stories, *rules], MAX_STORIES)
    if truncated:
        problems.append(
            Problem(
                "warning",
                f"checkpoints and 'or' steps expand to more than {MAX_STORIES} stories; only "
                "the first were checked for conflicts",
                "use fewer checkpoints that fan out (or rules for one-turn snippets)",
                [*stories, *rules][0].source,
            )
        )
    if max_history is None:
        max_history = configured_max_history(project_root / "config.yml")
    flat_stories = [s for s in flat if s.kind != "rule"]
    flat_rules = [s for s in flat if s.kind == "rule"]
    problems.extend(find_conflicts(flat_stories, flat_rules, domain, max_history))
    return problems


def configured_max_history(config_file: Path) -> int:
    """``max_history`` of the memoization policy in ``config.yml``, else 5."""
    try:
        data = read_mapping(config_file)
    except ConfigError:  # a broken config.yml is reported by its own check
        return MAX_HISTORY
    policies = data.get("policies")
    for policy in policies or []:
        if (
            isinstance(policy, dict)
            and "Memoization" in str(policy.get("name"))
            and isinstance(policy.get("max_history"), int)
            and policy["max_history"] > 0
        ):
            return int(policy["max_history"])
    return MAX_HISTORY


# --- names ------------------------------------------------------------------------------


def _all_steps(story: Story) -> Iterator[Step]:
    for step in (*story.condition, *story.steps):
        yield step
        if isinstance(step, OrStep):
            yield from step.alternatives


def _maybe(name: str, options: list[str]) -> str:
    close = difflib.get_close_matches(name, options, n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def check_names(
    stories: list[Story], rules: list[Story], domain: Domain, nlu_intents: set[str]
) -> list[Problem]:
    """Intents, entities, actions, responses, slots and forms must be in the domain."""
    problems: list[Problem] = []
    used_intents: set[str] = set()
    known_intents = [*domain.intents, *DEFAULT_INTENTS]
    for story in [*stories, *rules]:
        what = f"{'rule' if story.kind == 'rule' else 'story'} '{story.name}'"
        for step in _all_steps(story):
            src = step.source or story.source
            if isinstance(step, UserStep):
                problems.extend(_user_problems(step, what, domain, known_intents, nlu_intents, src))
                if step.intent:
                    used_intents.add(step.intent)
            elif isinstance(step, ActionStep):
                problems.extend(_action_problems(step.action, domain, src))
            elif isinstance(step, SlotStep):
                problems.extend(_slot_problems(step, domain, src))
            elif isinstance(step, LoopStep) and step.loop is not None:
                if (
                    step.loop not in domain.forms
                    and step.loop not in domain.actions
                    and (step.loop != "action_two_stage_fallback")
                ):
                    problems.append(
                        Problem(
                            "error",
                            f"active_loop '{step.loop}' is not a form of domain.yml"
                            f"{_maybe(step.loop, list(domain.forms))}",
                            "declare it under 'forms:' with 'required_slots', list it under "
                            "'actions:' if it is a custom loop action, or fix the name",
                            src,
                        )
                    )
            elif isinstance(step, WaitStep):
                problems.append(
                    Problem(
                        "warning",
                        f"'wait' in {what} only means something in test stories",
                        "remove it (training ignores it) or move the story to tests/",
                        src,
                    )
                )
    for intent in sorted((set(domain.intents) | nlu_intents) - used_intents - set(DEFAULT_INTENTS)):
        problems.append(
            Problem(
                "warning",
                f"intent '{intent}' is not used in any story or rule",
                f"add a story or rule for '{intent}' so the bot knows what to do when a "
                "customer says it (fine if a form's slot mapping consumes it)",
                _DOMAIN,
            )
        )
    return problems


def _user_problems(
    step: UserStep,
    what: str,
    domain: Domain,
    known_intents: list[str],
    nlu_intents: set[str],
    src: Source | None,
) -> list[Problem]:
    problems = []
    if step.intent is None:
        problems.append(
            Problem(
                "error",
                f"a user step of {what} has text but no intent",
                "add 'intent: name' under the 'user:' text (the bot trains on intents)",
                src,
            )
        )
    elif step.intent not in known_intents:
        hint = (
            f"add '- {step.intent}' under 'intents:' in domain.yml (it has NLU examples)"
            if step.intent in nlu_intents
            else f"fix the name, or add '- {step.intent}' under 'intents:' in domain.yml and "
            "write NLU examples for it"
        )
        problems.append(
            Problem(
                "error",
                f"intent '{step.intent}' is not declared in domain.yml"
                f"{_maybe(step.intent, known_intents)}",
                hint,
                src,
            )
        )
    for entity in step.entities:
        name = str(entity.get("entity"))
        if name not in domain.entities:
            problems.append(
                Problem(
                    "error",
                    f"entity '{name}' is not declared in domain.yml"
                    f"{_maybe(name, list(domain.entities))}",
                    f"add '- {name}' under 'entities:' in domain.yml or fix the name",
                    src,
                )
            )
    return problems


def _action_problems(action: str, domain: Domain, src: Source | None) -> list[Problem]:
    if action.startswith("utter_"):
        if action in domain.responses or domain.retrieval_intent_of(action):
            return []
        if action in domain.actions:
            message = f"'{action}' is listed under 'actions:' but has no response"
        else:
            message = (
                f"response '{action}' is not defined in domain.yml"
                f"{_maybe(action, list(domain.responses))}"
            )
        return [
            Problem(
                "error",
                message,
                f"add '{action}:' with '- text: ...' under 'responses:' in domain.yml, "
                "or fix the name",
                src,
            )
        ]
    if action in domain.action_names:
        return []
    return [
        Problem(
            "error",
            f"action '{action}' is not in domain.yml{_maybe(action, domain.action_names)}",
            f"list '- {action}' under 'actions:' in domain.yml (a custom action) or fix the name",
            src,
        )
    ]


def _slot_problems(step: SlotStep, domain: Domain, src: Source | None) -> list[Problem]:
    problems = []
    for name, value in step.slots:
        slot = domain.slots.get(name)
        if slot is None:
            problems.append(
                Problem(
                    "error",
                    f"slot '{name}' is not declared in domain.yml"
                    f"{_maybe(name, list(domain.slots))}",
                    f"declare '{name}:' with a 'type' under 'slots:' in domain.yml or fix the name",
                    src,
                )
            )
        elif (
            slot.type == "categorical"
            and isinstance(value, str | int | float | bool)
            and str(value) not in slot.values
        ):
            problems.append(
                Problem(
                    "warning",
                    f"slot '{name}' is categorical and {value!r} is not one of its values "
                    f"({', '.join(slot.values)})",
                    "use one of the values, or add it under the slot's 'values:'",
                    src,
                )
            )
        elif slot.type == "bool" and value is not None and not _is_bool(value):
            problems.append(
                Problem(
                    "warning",
                    f"slot '{name}' is a bool slot and {value!r} is not true or false",
                    "write 'true' or 'false'",
                    src,
                )
            )
    return problems


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool) or value is ANY_VALUE


# --- structure --------------------------------------------------------------------------


def check_checkpoints(stories: list[Story]) -> list[Problem]:
    """Every story starting at a checkpoint must be reachable; end checkpoints should lead
    somewhere."""
    starts: dict[str, list[tuple[Story, Source | None]]] = {}
    ends: dict[str, list[tuple[Story, Source | None]]] = {}
    for story in stories:
        leading = True
        for i, step in enumerate(story.steps):
            if not isinstance(step, CheckpointStep):
                leading = False
                continue
            src = step.source or story.source
            if leading:
                starts.setdefault(step.name, []).append((story, src))
            else:
                ends.setdefault(step.name, []).append((story, src))
                if any(not isinstance(s, CheckpointStep) for s in story.steps[i + 1 :]):
                    starts.setdefault(step.name, []).append((story, src))  # a split
    problems = []
    for name, places in starts.items():
        if name not in ends:
            for story, src in places:
                problems.append(
                    Problem(
                        "error",
                        f"story '{story.name}' starts at checkpoint '{name}', but no story "
                        "ends with it, so the story is never used",
                        f"end the story that should lead here with '- checkpoint: {name}', "
                        "or remove the checkpoint",
                        src,
                    )
                )
    for name, places in ends.items():
        if name not in starts:
            for story, src in places:
                problems.append(
                    Problem(
                        "warning",
                        f"story '{story.name}' ends at checkpoint '{name}', but no story "
                        "starts with it",
                        f"start the continuing story with '- checkpoint: {name}', or remove it",
                        src,
                    )
                )
    return problems


def check_rules(rules: list[Story]) -> list[Problem]:
    """Rules are short snippets: no checkpoints and at most one user message."""
    problems = []
    for rule in rules:
        for step in (*rule.condition, *rule.steps):
            if isinstance(step, CheckpointStep):
                problems.append(
                    Problem(
                        "error",
                        f"rule '{rule.name}' uses checkpoint '{step.name}'",
                        "rules cannot have checkpoints: remove it, or write a story instead",
                        step.source or rule.source,
                    )
                )
        turns = sum(_is_user_turn(s) for s in rule.steps)
        if turns > 1:
            problems.append(
                Problem(
                    "warning",
                    f"rule '{rule.name}' has {turns} user messages; rules are meant for one "
                    "turn, not to hard-code a conversation",
                    "split it into one-turn rules, or write it as a story",
                    rule.source,
                )
            )
    return problems


def _is_user_turn(step: Step) -> bool:
    if isinstance(step, UserStep):
        return True
    return isinstance(step, OrStep) and any(isinstance(a, UserStep) for a in step.alternatives)


def check_duplicate_names(stories: list[Story]) -> list[Problem]:
    counts = Counter((s.kind == "rule", s.name) for s in stories)
    problems = []
    reported: set[tuple[bool, str]] = set()
    for story in stories:
        key = (story.kind == "rule", story.name)
        if counts[key] > 1 and key not in reported:
            reported.add(key)
            what = "rule" if story.kind == "rule" else "story"
            problems.append(
                Problem(
                    "warning",
                    f"{counts[key]} {what}s are named '{story.name}'",
                    f"give each {what} its own name so reports can tell them apart",
                    story.source,
                )
            )
    return problems


# --- conflicts --------------------------------------------------------------------------


# One moment of a conversation as the policies see it: intent and entity names, the previous
# action, slot features and the active loop.
State = frozenset[tuple[str, Any]]


@dataclass(frozen=True)
class _Origin:
    """An action that follows a state, and where it was written."""

    action: str
    source: Source | None
    in_steps: bool = True  # a rule's ``steps`` (not its ``condition``)
    implied: bool = False  # the wait for the first user message of a rule


@dataclass(frozen=True)
class _Turn:
    story: Story
    states: tuple[State, ...]  # states[i] is the state before origins[i]
    origins: tuple[_Origin, ...]


def _hashable(value: Any) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def _slot_feature(domain: Domain, name: str, value: Any) -> Any:
    """What the policies can tell apart: text/list slots only "set", bool/categorical/float
    their value; slots that do not influence the conversation nothing (``None``)."""
    if value is None:
        return None
    slot = domain.slots.get(name)
    if slot is None:  # undeclared (reported elsewhere): compare the written value
        return "__set__" if value is ANY_VALUE else _hashable(value)
    if not slot.influence_conversation or name == REQUESTED_SLOT:
        return None
    if value is ANY_VALUE or slot.type in ("text", "list", "any"):
        return "__set__"
    return _hashable(value)


def _turns(story: Story, domain: Domain) -> _Turn:
    """The state before every action of ``story``, as a conversation would log them:
    ``action_listen`` before each user message and after the last action."""
    intent: str | None = None
    entities: tuple[str, ...] = ()
    prev_action: str | None = None
    slots: dict[str, Any] = {}
    loop: str | None = None
    states: list[State] = []
    origins: list[_Origin] = []

    def act(origin: _Origin) -> None:
        items: set[tuple[str, Any]] = {("active_loop", loop)}
        if intent is not None:
            items.add(("intent", intent))
        items.update(("entity", e) for e in entities)
        if prev_action is not None:
            items.add(("prev_action", prev_action))
        items.update(("slot", kv) for kv in slots.items())
        states.append(frozenset(items))
        origins.append(origin)

    last_was_action = False
    seen_user = False
    last_source = story.source
    for in_steps, steps in ((False, story.condition), (True, story.steps)):
        for step in steps:
            last_source = step.source or last_source
            if isinstance(step, UserStep):
                act(_Origin(LISTEN, step.source, in_steps, implied=not seen_user))
                prev_action, seen_user, last_was_action = LISTEN, True, False
                intent = step.intent
                entities = tuple(sorted({str(e.get("entity")) for e in step.entities}))
            elif isinstance(step, ActionStep):
                act(_Origin(step.action, step.source, in_steps))
                prev_action, last_was_action = step.action, True
            elif isinstance(step, SlotStep):
                for name, value in step.slots:
                    feature = _slot_feature(domain, name, value)
                    if feature is None:
                        slots.pop(name, None)
                    else:
                        slots[name] = feature
            elif isinstance(step, LoopStep):
                loop = step.loop
    if last_was_action and story.wait_for_user_input:
        act(_Origin(LISTEN, last_source))
    return _Turn(story, tuple(states), tuple(origins))


def _does(action: str) -> str:
    return "waits for the user" if action == LISTEN else f"runs '{action}'"


def _label(story: Story) -> str:
    return f"{'rule' if story.kind == 'rule' else 'story'} '{story.name}'"


def _at(source: Source | None) -> str:
    return f" ({source})" if source else ""


@dataclass(frozen=True)
class _RulePrediction:
    window: tuple[State, ...]
    anchored: bool  # ``conversation_start``: the window starts the conversation
    origin: _Origin
    rule: Story


def _rule_predictions(turn: _Turn) -> list[_RulePrediction]:
    """What a rule predicts and the (partial) states it needs, from its first state that
    says something (a previous action or an intent) on."""
    out = []
    anchored = turn.story.conversation_start
    telling = [
        k
        for k, state in enumerate(turn.states)
        if any(key in ("prev_action", "intent") for key, _ in state)
    ]
    first = telling[0] if telling else None
    for i, origin in enumerate(turn.origins):
        if not origin.in_steps or origin.implied:
            continue
        if anchored:
            window = turn.states[: i + 1]
        elif first is None or first > i:
            continue  # "anywhere": too vague to compare
        else:
            window = turn.states[first : i + 1]
        out.append(_RulePrediction(window, anchored, origin, turn.story))
    return out


def _prev_action(state: State) -> Any:
    return next((v for k, v in state if k == "prev_action"), None)


def find_conflicts(
    stories: list[Story], rules: list[Story], domain: Domain, max_history: int = MAX_HISTORY
) -> list[Problem]:
    """Flat stories/rules that do different things in the same situation."""
    problems: list[Problem] = []
    reported: set[frozenset[tuple[Source | None, str]]] = set()

    def report(here: _Origin, story: Story, there: _Origin, message: str, hint: str) -> None:
        key = frozenset({(here.source, here.action), (there.source, there.action)})
        if key in reported:
            return
        reported.add(key)
        problems.append(Problem("error", message, hint, here.source or story.source))

    story_turns = [_turns(s, domain) for s in stories]
    # Stories against stories: the memoization key (last ``max_history`` states).
    seen: dict[tuple[State | None, ...], tuple[_Origin, Story]] = {}
    for turn in story_turns:
        for i, origin in enumerate(turn.origins):
            window = turn.states[max(0, i + 1 - max_history) : i + 1]
            key = (None,) * (max_history - len(window)) + window
            first = seen.setdefault(key, (origin, turn.story))
            if first[0].action != origin.action:
                report(
                    origin,
                    turn.story,
                    first[0],
                    f"{_label(turn.story)} {_does(origin.action)} here, but "
                    f"{_label(first[1])}{_at(first[0].source)} {_does(first[0].action)} after "
                    f"the same last {max_history} turns",
                    "make the two agree, or tell them apart within the last "
                    f"{max_history} turns (a slot_was_set step, an entity, another intent)",
                )

    predictions = [p for r in rules for p in _rule_predictions(_turns(r, domain))]
    # Rules against rules: the same situation, different actions.
    by_window: dict[tuple[bool, tuple[State, ...]], _RulePrediction] = {}
    for pred in predictions:
        first_pred = by_window.setdefault((pred.anchored, pred.window), pred)
        if first_pred.origin.action != pred.origin.action:
            report(
                pred.origin,
                pred.rule,
                first_pred.origin,
                f"{_label(pred.rule)} {_does(pred.origin.action)} here, but "
                f"{_label(first_pred.rule)}{_at(first_pred.origin.source)} "
                f"{_does(first_pred.origin.action)} in the same situation",
                "merge the two rules, or add a condition (slot_was_set / active_loop) that "
                "tells them apart",
            )

    # Stories against rules: a rule that applies where a story does something else.
    index: dict[Any, list[_RulePrediction]] = {}
    for pred in predictions:
        index.setdefault(_prev_action(pred.window[-1]), []).append(pred)
    longest = max((len(p.window) for p in predictions), default=0)
    checked: set[tuple[Any, ...]] = set()
    for turn in story_turns:
        sets = turn.states
        for i, origin in enumerate(turn.origins):
            start = max(0, i + 1 - longest)
            memo = (tuple(sets[start : i + 1]), i if i < longest else -1, origin.action)
            if memo in checked:
                continue
            checked.add(memo)
            candidates = [*index.get(_prev_action(sets[i]), []), *index.get(None, [])]
            for pred in candidates:
                if pred.origin.action == origin.action or not _applies(pred, sets, i):
                    continue
                report(
                    origin,
                    turn.story,
                    pred.origin,
                    f"{_label(turn.story)} {_does(origin.action)} here, but "
                    f"{_label(pred.rule)}{_at(pred.origin.source)} applies and "
                    f"{_does(pred.origin.action)}",
                    "rules win over stories: make the story follow the rule, or add a "
                    "condition to the rule so it does not apply here",
                )
    return problems


def _applies(pred: _RulePrediction, sets: tuple[State, ...], i: int) -> bool:
    size = len(pred.window)
    if size > i + 1 or (pred.anchored and size != i + 1):
        return False
    offset = i + 1 - size
    return all(need <= sets[offset + k] for k, need in enumerate(pred.window))
