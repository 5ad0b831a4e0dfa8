"""The trained policy: logistic regression over featurised history, for turns that no rule
or story covers exactly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.core import events as ev
from bot.core.messages import UserMessage
from bot.core.policies.ensemble import policy_class
from bot.core.policies.sklearn_policy import SklearnPolicy, history_features
from bot.core.processor import MessageProcessor
from bot.core.tracker import LISTEN, DialogueStateTracker

DOMAIN = """
version: "3.1"
intents: [greet, query_balance, report_loss, thank]
entities: [account_type]
slots:
  account_type:
    type: categorical
    values: [debit_card, credit_card]
    mappings: [{type: from_entity, entity: account_type}]
responses:
  utter_greet: [{text: 您好}]
  utter_balance: [{text: 余额}]
  utter_loss: [{text: 挂失}]
  utter_thank: [{text: 不客气}]
"""

# Balance questions were only ever asked about a debit card, loss reports only about a
# credit card; both at the start and after a greeting.
STORIES = """
version: "3.1"
stories:
- story: greet then balance
  steps:
  - intent: greet
  - action: utter_greet
  - intent: query_balance
    entities:
    - account_type: debit_card
  - slot_was_set:
    - account_type: debit_card
  - action: utter_balance
  - intent: thank
  - action: utter_thank
- story: balance
  steps:
  - intent: query_balance
    entities:
    - account_type: debit_card
  - slot_was_set:
    - account_type: debit_card
  - action: utter_balance
- story: greet then loss
  steps:
  - intent: greet
  - action: utter_greet
  - intent: report_loss
    entities:
    - account_type: credit_card
  - slot_was_set:
    - account_type: credit_card
  - action: utter_loss
- story: loss
  steps:
  - intent: report_loss
    entities:
    - account_type: credit_card
  - slot_was_set:
    - account_type: credit_card
  - action: utter_loss
  - intent: thank
  - action: utter_thank
"""

SKLEARN = [("SklearnPolicy", {})]


def conversation(domain, *turns: tuple[str, str | None, str | None]) -> DialogueStateTracker:  # type: ignore[no-untyped-def]
    """Turns of (intent, account_type entity or None, bot action or None for 'next')."""
    events: list[dict[str, Any]] = [ev.session_started(timestamp=0.0)]
    for intent, account, action in turns:
        entities = [{"entity": "account_type", "value": account}] if account else []
        events += [
            ev.action(LISTEN, timestamp=0.0),
            ev.user(None, {"intent": {"name": intent}, "entities": entities}, timestamp=0.0),
        ]
        if account:
            events.append(ev.slot("account_type", account, timestamp=0.0))
        if action:
            events += [ev.action(action, timestamp=0.0)]
    return DialogueStateTracker.from_events("s", events, domain)


def test_unseen_combination_gets_a_sensible_action(dialogue) -> None:  # type: ignore[no-untyped-def]
    domain, ensemble = dialogue(DOMAIN, STORIES, [("MemoizationPolicy", {}), *SKLEARN])
    memo, sklearn = ensemble.policies
    # a balance question about a credit card, after a greeting: never in the stories
    tracker = conversation(
        domain, ("greet", None, "utter_greet"), ("query_balance", "credit_card", None)
    )
    states = tracker.past_states()
    assert memo.predict(tracker, states, domain) is None
    prediction = sklearn.predict(tracker, states, domain)
    assert prediction is not None
    assert prediction.action == "utter_balance"
    assert prediction.policy == "SklearnPolicy"
    assert prediction.confidence > ensemble.fallback[0]  # confident enough to be used
    probs = sklearn.probabilities([s for s, _ in states])
    assert max(probs, key=lambda a: probs[a]) == "utter_balance"
    # and a loss report with a debit card gets the loss answer
    for turns in (
        [("report_loss", "debit_card", None)],
        [("greet", None, "utter_greet"), ("report_loss", "debit_card", None)],
    ):
        tracker = conversation(domain, *turns)
        assert sklearn.predict(tracker, tracker.past_states(), domain).action == "utter_loss"


def test_after_a_bot_answer_it_listens(dialogue) -> None:  # type: ignore[no-untyped-def]
    domain, ensemble = dialogue(DOMAIN, STORIES, SKLEARN)
    tracker = conversation(domain, ("report_loss", "debit_card", "utter_loss"))
    assert ensemble.policies[0].predict(tracker, tracker.past_states(), domain).action == LISTEN


async def test_the_processor_uses_it_for_uncovered_turns(dialogue) -> None:  # type: ignore[no-untyped-def]
    p = MessageProcessor(*dialogue(DOMAIN, STORIES))  # the default Rule/Memo/Sklearn policies
    await p.handle(UserMessage("/greet", "s"))
    result = await p.handle(UserMessage('/query_balance{"account_type": "credit_card"}', "s"))
    assert result.actions[0][:2] == ("utter_balance", "SklearnPolicy")
    assert [m["text"] for m in result.messages] == ["余额"]


def test_probabilities_cover_every_trained_action(dialogue) -> None:  # type: ignore[no-untyped-def]
    _domain, ensemble = dialogue(DOMAIN, STORIES, SKLEARN)
    policy = ensemble.policies[0]
    assert set(policy.labels) == {
        LISTEN,
        "utter_greet",
        "utter_balance",
        "utter_loss",
        "utter_thank",
    }
    probs = policy.probabilities([])
    assert sum(probs.values()) == pytest.approx(1.0)
    assert all(0.0 <= p <= 1.0 for p in probs.values())


def test_history_features_are_relative_to_now() -> None:
    states = [(("intent", "greet"),), (("intent", "thank"), ("prev_action", LISTEN))]
    assert history_features(states, 5) == [
        "0|intent=thank",
        f"0|prev_action={LISTEN}",
        "1|intent=greet",
    ]
    assert history_features(states, 1) == ["0|intent=thank", f"0|prev_action={LISTEN}"]


def test_a_single_action_trains_no_model(dialogue) -> None:  # type: ignore[no-untyped-def]
    domain, ensemble = dialogue(DOMAIN, "version: '3.1'\n", SKLEARN)
    policy = ensemble.policies[0]
    assert policy.model is None
    tracker = conversation(domain, ("greet", None, None))
    assert policy.predict(tracker, tracker.past_states(), domain) is None


def test_persist_and_load_give_the_same_probabilities(dialogue, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    domain, ensemble = dialogue(DOMAIN, STORIES, [("SklearnPolicy", {"max_history": 3})])
    policy = ensemble.policies[0]
    policy.persist(tmp_path)
    loaded = SklearnPolicy.load(tmp_path, policy.config)
    tracker = conversation(domain, ("greet", None, "utter_greet"), ("report_loss", None, None))
    states = [s for s, _ in tracker.past_states()]
    assert loaded.probabilities(states) == pytest.approx(policy.probabilities(states))
    assert loaded.config["max_history"] == 3


def test_fast_path_matches_scikit_learn(dialogue) -> None:  # type: ignore[no-untyped-def]
    """The hand-rolled inference equals ``predict_proba`` of the fitted model."""
    from scipy.sparse import csr_matrix

    domain, ensemble = dialogue(DOMAIN, STORIES, SKLEARN)
    policy = ensemble.policies[0]
    tracker = conversation(domain, ("greet", None, "utter_greet"), ("thank", None, None))
    states = [s for s, _ in tracker.past_states()]
    idx = sorted(
        {policy.vocabulary[f] for f in history_features(states, 5) if f in policy.vocabulary}
    )
    x = csr_matrix(([1.0] * len(idx), ([0] * len(idx), idx)), shape=(1, len(policy.vocabulary)))
    expected = dict(zip(policy.model.classes_, policy.model.predict_proba(x)[0], strict=True))
    assert policy.probabilities(states) == pytest.approx(expected)


def test_ted_policy_in_a_rasa_config_means_this_policy() -> None:
    assert policy_class("TEDPolicy") is SklearnPolicy
