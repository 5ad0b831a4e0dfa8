"""``bot test core``: run test stories through the whole assistant.

Each test story is a fresh conversation (in-memory stores, its own clock). For every user
step the message text goes through the NLU (the expected ``intent`` is checked and then
used, so one NLU miss does not hide the dialogue result), the actions the assistant runs
are compared with the story's actions, and ``slot_was_set`` / ``active_loop`` steps are
checked against the tracker at the end of the turn or the events of the turn (a form that
the message opens and fills is active, then not, in one turn). A retrieval intent is
compared as Rasa writes it, ``chitchat/ask_name``, with the ResponseSelector's choice.
Extensions: story ``metadata: {customer_id: C1001}`` makes the conversation verified;
``- wait: SECONDS`` moves the clock on; ``- resume: true`` hands a paused conversation
back to the bot.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bot.core import events as ev
from bot.core.actions.interfaces import CustomActionExecutor
from bot.core.lock_store import InMemoryLockStore
from bot.core.messages import UserMessage
from bot.core.processor import MessageProcessor
from bot.core.stories import (
    ANY_VALUE,
    ActionStep,
    LoopStep,
    ResumeStep,
    SlotStep,
    Story,
    UserStep,
    WaitStep,
)
from bot.core.tracker import LISTEN
from bot.core.tracker_store import InMemoryTrackerStore
from bot.model import LoadedModel


@dataclass
class StoryResult:
    story: Story
    passed: bool = True
    failure: str | None = None
    intent_errors: list[dict[str, Any]] = field(default_factory=list)
    actions_expected: int = 0
    actions_correct: int = 0
    transcript: list[dict[str, Any]] = field(default_factory=list)


class _Clock:
    def __init__(self, start: float = 1_767_225_600.0) -> None:  # 2026-01-01
        self.now = start

    def __call__(self) -> float:
        self.now += 0.001
        return self.now


def _turns(story: Story) -> list[tuple[Any, list[Any]]]:
    """(opening step, following checks) where the opening step is a user/wait/resume."""
    turns: list[tuple[Any, list[Any]]] = []
    for step in story.steps:
        if isinstance(step, UserStep | WaitStep | ResumeStep):
            turns.append((step, []))
        elif turns:
            turns[-1][1].append(step)
        else:
            turns.append((None, [step]))
    return turns


def _full_intent(parse: dict[str, Any], expected: str | None) -> str | None:
    """The predicted intent as a test story writes it: a retrieval intent with the key
    the ResponseSelector chose (``chitchat/ask_name``), as ``rasa test`` compares them."""
    name = (parse.get("intent") or {}).get("name")
    if not isinstance(name, str) or expected is None or "/" not in expected:
        return name
    selector = parse.get("response_selector")
    if not isinstance(selector, dict):
        return name
    for key in (name, "default"):
        entry = selector.get(key)
        response = entry.get("response") if isinstance(entry, dict) else None
        full = response.get("intent_response_key") if isinstance(response, dict) else None
        if isinstance(full, str) and full.split("/", 1)[0] == name:
            return full
    return name


def _use_expected_intent(parse: dict[str, Any], expected: str) -> None:
    """Go on with the story's intent (a retrieval intent's key as the selector's choice)."""
    base, _, key = expected.partition("/")
    parse["intent"] = {"name": base, "confidence": 1.0}
    if key:
        selector = dict(parse.get("response_selector") or {})
        selector[base] = {
            "response": {
                "intent_response_key": expected,
                "utter_action": f"utter_{expected}",
                "confidence": 1.0,
                "responses": [],
            },
            "ranking": [{"intent_response_key": expected, "confidence": 1.0}],
        }
        parse["response_selector"] = selector


def _slot_holds(expected: Any, values: list[Any]) -> bool:
    if expected is ANY_VALUE:
        return any(v is not None for v in values)
    return expected in values


async def run_story(
    story: Story,
    model: LoadedModel,
    executor: CustomActionExecutor | None,
) -> StoryResult:
    assert model.core is not None and model.domain is not None
    clock = _Clock()
    processor = MessageProcessor(
        model.domain,
        model.core,
        model.nlu,
        InMemoryTrackerStore(),
        InMemoryLockStore(),
        executor,
        clock=clock,
        seed=7,
    )
    sender = f"test-{story.name}"
    customer = story.metadata.get("customer_id")
    result = StoryResult(story)

    def fail(message: str) -> StoryResult:
        result.passed = False
        result.failure = message
        return result

    for opener, checks in _turns(story):
        if isinstance(opener, WaitStep):
            clock.now += opener.seconds
            continue
        if isinstance(opener, ResumeStep):
            await processor.append_events(sender, [ev.resume(clock())])
            continue
        if opener is None:
            return fail("a test story must start with a user message")
        text = opener.text if opener.text is not None else f"/{opener.intent}"
        parse = processor.parse(text)
        if opener.text is None and opener.entities:
            # "- intent: book_flight" with "entities:" (no text): the message has them, with
            # their roles and groups, as Rasa tests such a story
            parse["entities"] = [dict(e) for e in opener.entities if e.get("value") is not None]
        predicted_intent = _full_intent(parse, opener.intent)
        if opener.intent is not None and predicted_intent != opener.intent:
            result.intent_errors.append(
                {"text": text, "expected": opener.intent, "predicted": predicted_intent}
            )
            _use_expected_intent(parse, opener.intent)
        turn = await processor.handle(UserMessage(text, sender, "test", {}, customer), parse)
        ran = [a for a, _, _ in turn.actions if a != LISTEN]
        expected = [s.action for s in checks if isinstance(s, ActionStep) and s.action != LISTEN]
        result.transcript.append(
            {
                "user": text,
                "intent": predicted_intent,
                "actions": ran,
                "bot": [m.get("text") for m in turn.messages],
            }
        )
        result.actions_expected += len(expected)
        result.actions_correct += sum(
            1 for i, a in enumerate(expected) if i < len(ran) and ran[i] == a
        )
        if ran != expected:
            where = f" ({opener.source})" if opener.source else ""
            return fail(f"after '{text}'{where}: expected actions {expected}, got {ran}")
        tracker = await processor.get_tracker(sender)
        # A step holds when the end of the turn has it, or an event of the turn set it: a
        # form that the message opens and fills is active, then not, within one turn.
        turn_slots: dict[str, list[Any]] = {}
        turn_loops: list[str | None] = []
        for event in turn.events:
            if event.get("event") == "slot":
                turn_slots.setdefault(str(event.get("name")), []).append(event.get("value"))
            elif event.get("event") == "active_loop":
                turn_loops.append(event.get("name"))
        for check in checks:
            if isinstance(check, SlotStep):
                for name, value in check.slots:
                    actual = tracker.slots.get(name)
                    if not _slot_holds(value, [actual, *turn_slots.get(name, [])]):
                        return fail(
                            f"after '{text}': slot {name} is {actual!r}, expected {value!r}"
                        )
            elif isinstance(check, LoopStep) and check.loop not in (
                tracker.active_loop.name,
                *turn_loops,
            ):
                return fail(
                    f"after '{text}': active loop is {tracker.active_loop.name!r}, "
                    f"expected {check.loop!r}"
                )
    if result.intent_errors:
        first = result.intent_errors[0]
        return fail(
            f"'{first['text']}' was understood as {first['predicted']}, "
            f"expected {first['expected']}"
        )
    return result


def write_reports(results: list[StoryResult], out: Path) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    passed = sum(r.passed for r in results)
    expected = sum(r.actions_expected for r in results)
    correct = sum(r.actions_correct for r in results)
    report = {
        "total": len(results),
        "passed": passed,
        "failed": len(results) - passed,
        "conversation_accuracy": round(passed / len(results), 4) if results else 0.0,
        "action_accuracy": round(correct / expected, 4) if expected else 0.0,
        "stories": [
            {
                "name": r.story.name,
                "source": str(r.story.source) if r.story.source else None,
                "passed": r.passed,
                "failure": r.failure,
                "intent_errors": r.intent_errors,
                "transcript": r.transcript,
            }
            for r in results
        ],
    }
    (out / "story_report.json").write_text(
        json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8"
    )
    failed = [
        {
            "story": r.story.name,
            "failure": r.failure,
            "steps": [
                {"user": t["user"], "intent": t["intent"], "actions": t["actions"]}
                for t in r.transcript
            ],
        }
        for r in results
        if not r.passed
    ]
    text = "# Failed test stories with what the assistant did (bot test core)\n"
    if failed:
        text += yaml.safe_dump({"stories": failed}, allow_unicode=True, sort_keys=False)
    else:
        text += "stories: []\n"
    (out / "failed_test_stories.yml").write_text(text, encoding="utf-8")
    return report
