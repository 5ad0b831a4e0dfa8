"""Reads Rasa 3.x ``stories:`` and ``rules:`` YAML (and test stories) with file:line positions.

Every problem with one item (an unknown step key, a missing name, a value of the wrong type)
becomes a :class:`Problem` naming the line and a fix; the item is skipped and reading goes
on, so ``bot data validate`` reports everything at once.
"""

from __future__ import annotations

import difflib
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.core.stories import (
    ANY_VALUE,
    ActionStep,
    CheckpointStep,
    LoopStep,
    OrStep,
    ResumeStep,
    SlotStep,
    Step,
    Story,
    StoryFile,
    UserStep,
    WaitStep,
)
from bot.training.data import Problem, Source
from bot.training.markup import MarkupError, parse_markup

STEP_KEYS = (
    "intent",
    "user",
    "action",
    "slot_was_set",
    "active_loop",
    "checkpoint",
    "or",
    "wait",
    "resume",
)
_USER_KEYS = {"intent", "user", "entities"}
_STORY_KEYS = {"story", "steps", "metadata"}
_RULE_KEYS = {"rule", "steps", "metadata", "condition", "conversation_start", "wait_for_user_input"}
_CONDITION_KEYS = ("slot_was_set", "active_loop")
# Top-level keys of Rasa 3.x files that other readers own (a file may mix NLU and stories).
_KNOWN_TOP = {
    "version",
    "nlu",
    "stories",
    "rules",
    "intents",
    "entities",
    "slots",
    "responses",
    "actions",
    "forms",
    "session_config",
    "e2e_actions",
}
_NULL = "tag:yaml.org,2002:null"
_STR = "tag:yaml.org,2002:str"

Kind = Literal["story", "rule", "test"]


def _suggest(key: str, options: tuple[str, ...] | set[str]) -> str:
    close = difflib.get_close_matches(key, sorted(options), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


class _Reader:
    """Turns composed YAML nodes into stories, collecting problems on the way."""

    def __init__(self, file: str, check_top: bool = True) -> None:
        self.file = file
        self.check_top = check_top
        self.problems: list[Problem] = []
        self._constructor = SafeConstructor()

    def src(self, node: Node) -> Source:
        return Source(self.file, node.start_mark.line + 1)

    def error(self, message: str, hint: str, node: Node) -> None:
        self.problems.append(Problem("error", message, hint, self.src(node)))

    def warn(self, message: str, hint: str, node: Node) -> None:
        self.problems.append(Problem("warning", message, hint, self.src(node)))

    def value(self, node: Node) -> Any:
        return self._constructor.construct_document(node)

    def fields(self, node: MappingNode) -> dict[str, Node]:
        out: dict[str, Node] = {}
        for key, value in node.value:
            if not isinstance(key, ScalarNode):
                self.error("a key is not a plain name", "write 'key: value'", key)
                continue
            if key.value in out:
                self.error(f"key '{key.value}' appears twice", "keep one of them", key)
            out[key.value] = value
        return out

    def name(self, node: Node, key: str) -> str | None:
        """A non-empty scalar name, else a problem and ``None``."""
        if isinstance(node, ScalarNode) and node.tag != _NULL and node.value.strip():
            return str(node.value).strip()
        self.error(f"'{key}' has no name", f"write '{key}: a_name'", node)
        return None

    # --- files and stories ----------------------------------------------------------------

    def read(self, root: Node | None) -> StoryFile:
        result = StoryFile()
        if root is None:
            return result
        if not isinstance(root, MappingNode):
            self.error(
                "the file is not a mapping", "start the file with 'stories:' or 'rules:'", root
            )
            return result
        top = self.fields(root)
        for key, node in top.items():
            if self.check_top and key not in _KNOWN_TOP:
                self.warn(
                    f"unknown top-level key '{key}'{_suggest(key, _KNOWN_TOP)}",
                    "story files hold 'version', 'stories' and 'rules'",
                    node,
                )
        version = top.get("version")
        if isinstance(version, ScalarNode) and not str(version.value).startswith("3"):
            self.warn(
                f"version '{version.value}' is not a Rasa 3.x format",
                "write 'version: \"3.1\"' and use the Rasa 3.x step syntax",
                version,
            )
        for key, kind in (("stories", "story"), ("rules", "rule")):
            items = top.get(key)
            if items is None or (isinstance(items, ScalarNode) and items.tag == _NULL):
                continue
            if not isinstance(items, SequenceNode):
                self.error(
                    f"'{key}:' is not a list", f"write '{key}:' then '- {kind}: name' items", items
                )
                continue
            target = result.stories if kind == "story" else result.rules
            for item in items.value:
                story = self.story(item, "story" if kind == "story" else "rule")
                if story is not None:
                    target.append(story)
        return result

    def story(self, item: Node, kind: Kind) -> Story | None:
        other = "rule" if kind == "story" else "story"
        if not isinstance(item, MappingNode):
            self.error(f"a {kind} is not a mapping", f"write '- {kind}: name' and 'steps:'", item)
            return None
        errors_before = self._errors()
        fields = self.fields(item)
        if kind not in fields:
            if other in fields:
                self.error(
                    f"a '{other}' is listed under '{'stories' if kind == 'story' else 'rules'}:'",
                    f"move it under '{'rules' if other == 'rule' else 'stories'}:'",
                    item,
                )
            else:
                self.error(
                    f"{kind} item without '{kind}:' name", f"start it with '- {kind}: name'", item
                )
            return None
        name = self.name(fields[kind], kind)
        if name is None:
            return None
        allowed = _STORY_KEYS if kind == "story" else _RULE_KEYS
        for key, node in fields.items():
            if key not in allowed:
                self.error(
                    f"{kind} '{name}' has an unknown key '{key}'{_suggest(key, allowed)}",
                    f"a {kind} has {', '.join(sorted(allowed))}",
                    node,
                )
        steps_node = fields.get("steps")
        if steps_node is None:
            self.error(
                f"{kind} '{name}' has no 'steps:'", "add 'steps:' with at least one step", item
            )
            return None
        steps = self.steps(steps_node, f"{kind} '{name}'")
        if _empty(steps_node):
            self.error(f"{kind} '{name}' has no steps", "add steps or delete it", steps_node)
        metadata: dict[str, Any] = {}
        if "metadata" in fields:
            raw = self.value(fields["metadata"])
            if isinstance(raw, dict):
                metadata = {str(k): v for k, v in raw.items()}
            elif raw is not None:
                self.error(
                    f"'metadata' of {kind} '{name}' is not a mapping",
                    "write 'metadata:' with 'key: value' lines",
                    _key(item, "metadata"),
                )
        story_kind: Kind = kind
        if kind == "story" and _has_user_text(steps):
            story_kind = "test"
        story = Story(name, tuple(steps), story_kind, self.src(item), metadata=metadata)
        if kind == "rule":
            story = self.rule_options(story, fields)
        # A story missing a step would train (and be checked) as something else: drop it.
        return None if self._errors() > errors_before else story

    def _errors(self) -> int:
        return sum(p.level == "error" for p in self.problems)

    def rule_options(self, rule: Story, fields: dict[str, Node]) -> Story:
        condition: list[Step] = []
        if "condition" in fields:
            condition = self.steps(
                fields["condition"], f"rule '{rule.name}' condition", allowed=_CONDITION_KEYS
            )
        flags: dict[str, bool] = {}
        for key, default in (("conversation_start", False), ("wait_for_user_input", True)):
            if key not in fields:
                flags[key] = default
                continue
            raw = self.value(fields[key])
            if isinstance(raw, bool):
                flags[key] = raw
            else:
                self.error(
                    f"'{key}' of rule '{rule.name}' is {raw!r}, not true or false",
                    f"write '{key}: {str(not default).lower()}' or remove it",
                    fields[key],
                )
                flags[key] = default
        return replace(
            rule,
            condition=tuple(condition),
            conversation_start=flags["conversation_start"],
            wait_for_user_input=flags["wait_for_user_input"],
        )

    # --- steps ----------------------------------------------------------------------------

    def steps(self, node: Node, where: str, allowed: tuple[str, ...] = STEP_KEYS) -> list[Step]:
        if isinstance(node, ScalarNode) and node.tag == _NULL:
            return []
        if not isinstance(node, SequenceNode):
            self.error(
                f"the steps of {where} are not a list", "write each step as '- intent: x'", node
            )
            return []
        out: list[Step] = []
        for item in node.value:
            step = self.step(item, where, allowed)
            if step is not None:
                out.append(step)
        return out

    def step(self, node: Node, where: str, allowed: tuple[str, ...]) -> Step | None:
        hint = f"write one of: {', '.join(f'- {k}: ...' for k in allowed)}"
        if not isinstance(node, MappingNode):
            self.error(f"a step of {where} is not a mapping", hint, node)
            return None
        fields = self.fields(node)
        kinds = [k for k in STEP_KEYS if k in fields]
        unknown = [k for k in fields if k not in STEP_KEYS and k != "entities"]
        for key in unknown:
            self.error(f"unknown step key '{key}' in {where}{_suggest(key, STEP_KEYS)}", hint, node)
        if unknown:
            return None
        if not kinds:
            self.error(f"a step of {where} has no step key", hint, node)
            return None
        if set(kinds) <= {"intent", "user"}:
            kind = "intent" if "intent" in kinds else "user"
        elif len(kinds) > 1:
            self.error(
                f"a step of {where} has several step keys ({', '.join(kinds)})",
                "write one step per '- ' item",
                node,
            )
            return None
        else:
            kind = kinds[0]
        if kind not in allowed and not (kind == "user" and "intent" in allowed):
            self.error(f"'{kind}' is not allowed in {where}", hint, node)
            return None
        if "entities" in fields and kind not in ("intent", "user"):
            self.error(
                f"'entities' belongs to an intent step, not to '{kind}'",
                "move 'entities:' under the '- intent:' step",
                _key(node, "entities"),
            )
            return None
        src = self.src(node)
        value = fields[kind]
        if kind in ("intent", "user"):
            return self.user_step(fields, src)
        if kind == "action":
            action = self.name(value, "action")
            return ActionStep(action, src) if action else None
        if kind == "checkpoint":
            checkpoint = self.name(value, "checkpoint")
            return CheckpointStep(checkpoint, src) if checkpoint else None
        if kind == "active_loop":
            if isinstance(value, ScalarNode) and value.tag == _NULL:
                return LoopStep(None, src)
            loop = self.name(value, "active_loop")
            return LoopStep(loop, src) if loop else None
        if kind == "slot_was_set":
            return self.slot_step(value, src)
        if kind == "or":
            return self.or_step(value, where, src)
        if kind == "resume":
            return ResumeStep(src)
        return self.wait_step(value, src)

    def user_step(self, fields: dict[str, Node], src: Source) -> UserStep | None:
        intent: str | None = None
        if "intent" in fields:
            intent = self.name(fields["intent"], "intent")
            if intent is None:
                return None
        text: str | None = None
        markup_entities: tuple[dict[str, Any], ...] = ()
        if "user" in fields:
            node = fields["user"]
            if not isinstance(node, ScalarNode) or node.tag == _NULL or not node.value.strip():
                self.error(
                    "'user' has no text", "write 'user: |' and the message on the next line", node
                )
                return None
            try:
                text, annotations = parse_markup(node.value.strip())
            except MarkupError as exc:
                # A block scalar's text starts on the line after the ``|`` indicator.
                line = node.start_mark.line + (2 if node.style in ("|", ">") else 1)
                self.problems.append(
                    Problem(
                        "error",
                        str(exc),
                        'annotate as [text](entity) or [text]{"entity": '
                        '"name", "value": "canonical"}',
                        Source(self.file, line),
                    )
                )
                return None
            markup_entities = tuple(
                {"entity": a.entity, "value": a.value}
                | ({"role": a.role} if a.role else {})
                | ({"group": a.group} if a.group else {})
                for a in annotations
            )
        entities = markup_entities
        if "entities" in fields:
            parsed = self.entities(fields["entities"])
            if parsed is None:
                return None
            entities = parsed
        return UserStep(intent, entities, text, src)

    def entities(self, node: Node) -> tuple[dict[str, Any], ...] | None:
        """``- name: value``, ``- name`` or ``- entity: name`` (``value``/``role``/``group``).

        A bare name means "present with any value" and has ``value: None``.
        """
        hint = "write each entity as '- entity_name: value' or '- entity_name'"
        if isinstance(node, ScalarNode) and node.tag == _NULL:
            return ()
        if not isinstance(node, SequenceNode):
            self.error("'entities' is not a list", hint, node)
            return None
        out: list[dict[str, Any]] = []
        for item in node.value:
            if isinstance(item, ScalarNode) and item.tag != _NULL and item.value.strip():
                out.append({"entity": item.value.strip(), "value": None})
                continue
            raw = self.value(item) if isinstance(item, MappingNode) else None
            if isinstance(raw, dict) and "entity" in raw:
                extra = set(raw) - {"entity", "value", "role", "group"}
                if extra or not isinstance(raw["entity"], str) or not raw["entity"]:
                    self.error(f"cannot read entity {raw!r}", hint, item)
                    return None
                out.append(
                    {"entity": raw["entity"], "value": raw.get("value")}
                    | {k: raw[k] for k in ("role", "group") if raw.get(k) is not None}
                )
            elif isinstance(raw, dict) and len(set(raw) - {"role", "group"}) == 1:
                # Rasa 3: ``- city: Madrid`` with ``role:`` / ``group:`` beside it
                ((entity, value),) = ((k, v) for k, v in raw.items() if k not in ("role", "group"))
                out.append(
                    {"entity": str(entity), "value": value}
                    | {k: raw[k] for k in ("role", "group") if raw.get(k) is not None}
                )
            else:
                self.error("cannot read an entity of 'entities'", hint, item)
                return None
        return tuple(out)

    def slot_step(self, node: Node, src: Source) -> SlotStep | None:
        hint = "write '- slot_was_set:' then lines '  - slot_name: value' (or '  - slot_name')"
        if not isinstance(node, SequenceNode) or not node.value:
            self.error("'slot_was_set' is not a list of slots", hint, node)
            return None
        slots: list[tuple[str, Any]] = []
        for item in node.value:
            if isinstance(item, ScalarNode) and item.tag != _NULL and item.value.strip():
                slots.append((item.value.strip(), ANY_VALUE))
                continue
            raw = self.value(item) if isinstance(item, MappingNode) else None
            if not isinstance(raw, dict) or not raw:
                self.error("cannot read a slot of 'slot_was_set'", hint, item)
                return None
            slots.extend((str(name), value) for name, value in raw.items())
        return SlotStep(tuple(slots), src)

    def or_step(self, node: Node, where: str, src: Source) -> OrStep | None:
        hint = "list the alternatives as '- intent: x' or '- slot_was_set: [...]' items"
        if not isinstance(node, SequenceNode) or not node.value:
            self.error("'or' is not a list of alternatives", hint, node)
            return None
        alternatives: list[UserStep | SlotStep] = []
        for item in node.value:
            step = self.step(item, f"the 'or' of {where}", ("intent", "slot_was_set"))
            if isinstance(step, UserStep | SlotStep):
                alternatives.append(step)
            elif step is not None:  # pragma: no cover - step() only returns allowed kinds
                self.error("an 'or' alternative must be an intent or slot_was_set", hint, item)
        if len(alternatives) != len(node.value):
            return None
        if len(alternatives) < 2:
            self.warn("'or' has a single alternative", "write the step without 'or'", node)
        return OrStep(tuple(alternatives), src)

    def wait_step(self, node: Node, src: Source) -> WaitStep | None:
        raw = self.value(node)
        if isinstance(raw, bool) or not isinstance(raw, int | float) or raw < 0:
            self.error(
                f"'wait' is {raw!r}, not a number of seconds",
                "write '- wait: 3600' (seconds the clock moves on)",
                node,
            )
            return None
        return WaitStep(float(raw), src)


def _key(node: MappingNode, name: str) -> Node:
    """The key node ``name`` of a mapping (its line is where the trainer wrote ``name:``)."""
    return next(k for k, _ in node.value if isinstance(k, ScalarNode) and k.value == name)


def _empty(node: Node) -> bool:
    if isinstance(node, ScalarNode):
        return node.tag == _NULL
    return isinstance(node, SequenceNode) and not node.value


def _has_user_text(steps: list[Step]) -> bool:
    return any(isinstance(s, UserStep) and s.text is not None for s in steps)


def read_story_file(
    path: Path, display_name: str | None = None, check_top: bool = True
) -> tuple[StoryFile, list[Problem]]:
    """The stories and rules of ``path``. Stories whose steps carry ``user:`` text are
    test stories (``kind="test"``). Unreadable files give a problem and no stories. Without
    ``check_top`` unknown top-level keys are left to the caller (training data files are
    checked once for every reader by ``bot.training.nlu_yaml.check_data_file``)."""
    file = display_name or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        return StoryFile(), [
            Problem(
                "error", f"not UTF-8 text ({exc.reason})", "save the file as UTF-8", Source(file, 1)
            )
        ]
    except OSError as exc:
        return StoryFile(), [
            Problem(
                "error", f"cannot read the file ({exc.strerror})", "check the path", Source(file, 1)
            )
        ]
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else 1
        message = str(getattr(exc, "problem", None) or exc).split("\n")[0]
        return StoryFile(), [
            Problem(
                "error", f"invalid YAML: {message}", "correct the YAML syntax", Source(file, line)
            )
        ]
    reader = _Reader(file, check_top)
    result = reader.read(root)
    return result, reader.problems


def _shown(path: Path, root: Path | None) -> str:
    return str(path.relative_to(root)) if root and path.is_relative_to(root) else str(path)


def load_story_files(
    paths: list[Path], root: Path | None = None, check_top: bool = False
) -> tuple[list[Story], list[Story], list[Problem]]:
    """Stories, rules and problems of every file (training data files: a file's ``nlu`` and
    ``responses`` keys are other readers'); file names relative to ``root``."""
    stories: list[Story] = []
    rules: list[Story] = []
    problems: list[Problem] = []
    for path in paths:
        result, found = read_story_file(path, _shown(path, root), check_top)
        stories.extend(result.stories)
        rules.extend(result.rules)
        problems.extend(found)
    return stories, rules, problems


def load_test_stories(
    paths: list[Path], root: Path | None = None
) -> tuple[list[Story], list[Problem]]:
    """The test stories of ``paths`` (all ``kind="test"``) and problems. Rules in test
    files are not run as tests and give a warning."""
    stories: list[Story] = []
    problems: list[Problem] = []
    for path in paths:
        result, found = read_story_file(path, _shown(path, root))
        problems.extend(found)
        stories.extend(replace(s, kind="test") for s in result.stories)
        problems.extend(
            Problem(
                "warning",
                f"rule '{r.name}' in a test file is not run as a test",
                "move it to the stories/ folder, or write it as a test story",
                r.source,
            )
            for r in result.rules
        )
    return stories, problems
