"""Memoization over stories: exact histories up to ``max_history``, the augmented variant
for story snippets in the middle of a conversation, checkpoints and ``or`` steps."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.core import events as ev
from bot.core.messages import UserMessage
from bot.core.policies.memoization import AugmentedMemoizationPolicy, MemoizationPolicy
from bot.core.processor import MessageProcessor
from bot.core.tracker import LISTEN, DialogueStateTracker

DOMAIN = """
version: "3.1"
intents: [greet, query_balance, thank, affirm, deny, report_loss, goodbye]
slots:
  verified:
    type: bool
    mappings: [{type: from_intent, intent: affirm, value: true},
               {type: from_intent, intent: deny, value: false}]
responses:
  utter_greet: [{text: 您好}]
  utter_balance: [{text: 余额}]
  utter_thank: [{text: 不客气}]
  utter_ask_verify: [{text: 验证吗}]
  utter_verified: [{text: 已验证}]
  utter_not_verified: [{text: 未验证}]
  utter_loss: [{text: 挂失}]
  utter_goodbye: [{text: 再见}]
"""

STORIES = """
version: "3.1"
stories:
- story: greet then balance
  steps:
  - intent: greet
  - action: utter_greet
  - intent: query_balance
  - action: utter_balance
  - intent: thank
  - action: utter_thank
- story: verify yes
  steps:
  - intent: report_loss
  - action: utter_ask_verify
  - intent: affirm
  - slot_was_set:
    - verified: true
  - action: utter_verified
- story: verify no
  steps:
  - intent: report_loss
  - action: utter_ask_verify
  - intent: deny
  - slot_was_set:
    - verified: false
  - action: utter_not_verified
"""


def memo(max_history: int = 5, augmented: bool = False) -> list[tuple[str, dict[str, Any]]]:
    name = "AugmentedMemoizationPolicy" if augmented else "MemoizationPolicy"
    return [(name, {"max_history": max_history})]


async def run(p: MessageProcessor, *texts: str, sender: str = "s") -> list[list[str]]:
    out = []
    for text in texts:
        result = await p.handle(UserMessage(text, sender))
        out.append([a for a, _, _ in result.actions])
    return out


async def test_replays_a_story(dialogue) -> None:  # type: ignore[no-untyped-def]
    p = MessageProcessor(*dialogue(DOMAIN, STORIES, memo()))
    result = await p.handle(UserMessage("/greet", "s"))
    assert result.actions == [
        ("utter_greet", "MemoizationPolicy", 1.0),
        (LISTEN, "MemoizationPolicy", 1.0),
    ]
    assert await run(p, "/query_balance", "/thank") == [
        ["utter_balance", LISTEN],
        ["utter_thank", LISTEN],
    ]


async def test_slot_values_in_stories_choose_the_branch(dialogue) -> None:  # type: ignore[no-untyped-def]
    p = MessageProcessor(*dialogue(DOMAIN, STORIES, memo()))
    assert await run(p, "/report_loss", "/affirm", sender="yes") == [
        ["utter_ask_verify", LISTEN],
        ["utter_verified", LISTEN],
    ]
    assert await run(p, "/report_loss", "/deny", sender="no") == [
        ["utter_ask_verify", LISTEN],
        ["utter_not_verified", LISTEN],
    ]


def tracker_for(domain, *steps: tuple[str, str]) -> DialogueStateTracker:  # type: ignore[no-untyped-def]
    """A tracker of (intent, bot action) turns, ready for the next prediction after the last
    intent when its action is empty."""
    events: list[dict[str, Any]] = [ev.session_started(timestamp=0.0)]
    for intent, action in steps:
        events.append(ev.action(LISTEN, timestamp=0.0))
        events.append(
            ev.user(f"/{intent}", {"intent": {"name": intent}, "entities": []}, timestamp=0.0)
        )
        if action:
            events.append(ev.action(action, timestamp=0.0))
            events.append(ev.action(LISTEN, timestamp=0.0))
    return DialogueStateTracker.from_events("s", events[:-1] if steps[-1][1] else events, domain)


def predict(policy: MemoizationPolicy, tracker: DialogueStateTracker, domain) -> str | None:  # type: ignore[no-untyped-def]
    prediction = policy.predict(tracker, tracker.past_states(), domain)
    return None if prediction is None else prediction.action


def test_max_history_limits_what_must_match(dialogue) -> None:  # type: ignore[no-untyped-def]
    # Opening with the story's second question: a history of 5 states does not match the
    # story (it started with a greeting), a history of 1 state does.
    domain, long_memory = dialogue(DOMAIN, STORIES, memo(5))
    _, short_memory = dialogue(DOMAIN, STORIES, memo(1))
    tracker = tracker_for(domain, ("query_balance", ""))
    assert predict(long_memory.policies[0], tracker, domain) is None
    assert predict(short_memory.policies[0], tracker, domain) == "utter_balance"


def test_history_is_padded_at_the_start(dialogue) -> None:  # type: ignore[no-untyped-def]
    _domain, ensemble = dialogue(DOMAIN, STORIES, memo(3))
    policy = ensemble.policies[0]
    assert all(len(key) == 3 for key in policy.lookup)
    assert any(key[0] is None for key in policy.lookup)


def test_ambiguous_histories_are_dropped(dialogue) -> None:  # type: ignore[no-untyped-def]
    stories = """
    version: "3.1"
    stories:
    - story: a
      steps:
      - intent: greet
      - action: utter_greet
    - story: b
      steps:
      - intent: greet
      - action: utter_thank
    - story: c
      steps:
      - intent: thank
      - action: utter_thank
    """
    domain, ensemble = dialogue(DOMAIN, stories, memo())
    policy = ensemble.policies[0]
    assert predict(policy, tracker_for(domain, ("greet", "")), domain) is None
    assert predict(policy, tracker_for(domain, ("thank", "")), domain) == "utter_thank"


def test_augmented_memoization_matches_in_the_middle(dialogue) -> None:  # type: ignore[no-untyped-def]
    domain, plain = dialogue(DOMAIN, STORIES, memo(3))
    _, augmented = dialogue(DOMAIN, STORIES, memo(3, augmented=True))
    assert isinstance(augmented.policies[0], AugmentedMemoizationPolicy)
    # A conversation that starts with loss reporting, then greets: only the augmented
    # policy recognises the greeting story's beginning mid-conversation.
    tracker = tracker_for(
        domain, ("report_loss", "utter_ask_verify"), ("goodbye", "utter_goodbye"), ("greet", "")
    )
    assert predict(plain.policies[0], tracker, domain) is None
    assert predict(augmented.policies[0], tracker, domain) == "utter_greet"
    # and keeps the longest match: after greet → query_balance the story goes on
    tracker = tracker_for(
        domain, ("report_loss", "utter_ask_verify"), ("greet", "utter_greet"), ("query_balance", "")
    )
    assert predict(augmented.policies[0], tracker, domain) == "utter_balance"


async def test_augmented_memoization_through_the_processor(dialogue) -> None:  # type: ignore[no-untyped-def]
    p = MessageProcessor(*dialogue(DOMAIN, STORIES, memo(3, augmented=True)))
    actions = await run(p, "/report_loss", "/goodbye", "/greet", "/query_balance")
    assert actions[2:] == [["utter_greet", LISTEN], ["utter_balance", LISTEN]]


CHECKPOINTS = """
version: "3.1"
stories:
- story: start
  steps:
  - intent: greet
  - action: utter_greet
  - checkpoint: greeted
- story: then balance or loss
  steps:
  - checkpoint: greeted
  - or:
    - intent: query_balance
    - intent: report_loss
  - action: utter_balance
- story: then thanks
  steps:
  - checkpoint: greeted
  - intent: thank
  - action: utter_thank
"""


async def test_checkpoints_and_or_steps_are_expanded(dialogue) -> None:  # type: ignore[no-untyped-def]
    p = MessageProcessor(*dialogue(DOMAIN, CHECKPOINTS, memo()))
    assert await run(p, "/greet", "/query_balance", sender="a") == [
        ["utter_greet", LISTEN],
        ["utter_balance", LISTEN],
    ]
    assert (await run(p, "/greet", "/report_loss", sender="b"))[1] == ["utter_balance", LISTEN]
    assert (await run(p, "/greet", "/thank", sender="c"))[1] == ["utter_thank", LISTEN]


def test_persist_and_load(dialogue, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    domain, ensemble = dialogue(DOMAIN, STORIES, memo(2, augmented=True))
    policy = ensemble.policies[0]
    policy.persist(tmp_path)
    loaded = AugmentedMemoizationPolicy.load(tmp_path, policy.config)
    assert loaded.lookup == policy.lookup
    assert loaded.max_history == 2
    tracker = tracker_for(domain, ("greet", "utter_greet"), ("query_balance", ""))
    assert predict(loaded, tracker, domain) == "utter_balance"


def test_rules_are_not_memoized(dialogue) -> None:  # type: ignore[no-untyped-def]
    rules = """
    version: "3.1"
    rules:
    - rule: greet
      steps:
      - intent: greet
      - action: utter_greet
    """
    _, ensemble = dialogue(DOMAIN, rules, memo())
    assert ensemble.policies[0].lookup == {}
