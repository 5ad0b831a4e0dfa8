"""How policy predictions combine (as Rasa): highest confidence, ties to the higher priority,
core fallback below the threshold; policies declared by name in config.yml."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest

from bot.config import ComponentSpec, load_config
from bot.core.messages import UserMessage
from bot.core.policies.ensemble import PolicyEnsemble
from bot.core.policies.interfaces import Policy, PolicyPrediction
from bot.core.policies.memoization import MemoizationPolicy
from bot.core.policies.rule import RulePolicy
from bot.core.policies.sklearn_policy import SklearnPolicy
from bot.core.processor import MessageProcessor
from bot.core.tracker import DialogueStateTracker
from bot.domain import Domain
from bot.errors import ConfigError


class Fixed(Policy):
    """Always predicts ``action`` with ``confidence`` (or abstains when action is None)."""

    name: ClassVar[str] = "Fixed"

    def __init__(
        self, action: str | None, confidence: float, priority: int, name: str = "Fixed"
    ) -> None:
        super().__init__({"priority": priority})
        self.action, self.confidence, self.label = action, confidence, name

    def train(self, stories: Any, rules: Any, domain: Domain) -> None:
        pass

    def predict(self, tracker: Any, states: Any, domain: Domain) -> PolicyPrediction | None:
        if self.action is None:
            return None
        return PolicyPrediction(self.action, self.confidence, self.label, self.priority)


def predict(*policies: Policy) -> PolicyPrediction:
    domain = Domain()
    return PolicyEnsemble(list(policies)).predict(DialogueStateTracker("s", domain), domain)


@pytest.mark.parametrize("reverse", [False, True])
def test_highest_confidence_wins(reverse: bool) -> None:
    policies = [Fixed("utter_a", 0.9, 1, "low_priority"), Fixed("utter_b", 0.6, 6, "high")]
    best = predict(*(reversed(policies) if reverse else policies))
    assert (best.action, best.policy) == ("utter_a", "low_priority")


@pytest.mark.parametrize("reverse", [False, True])
def test_ties_go_to_the_higher_priority(reverse: bool) -> None:
    policies = [
        Fixed("utter_memo", 1.0, 3, "memo"),
        Fixed("utter_rule", 1.0, 6, "rule"),
        Fixed("utter_ml", 1.0, 1, "ml"),
    ]
    best = predict(*(reversed(policies) if reverse else policies))
    assert (best.action, best.policy, best.priority) == ("utter_rule", "rule", 6)


def test_default_priorities_follow_rasa() -> None:
    assert RulePolicy({}).priority > MemoizationPolicy({}).priority > SklearnPolicy({}).priority
    assert RulePolicy({"priority": 2}).priority == 2


def test_below_the_threshold_the_core_fallback_runs() -> None:
    rule = RulePolicy(
        {"core_fallback_threshold": 0.5, "core_fallback_action_name": "action_two_stage_fallback"}
    )
    best = predict(rule, Fixed("utter_guess", 0.45, 1))
    assert best == PolicyPrediction("action_two_stage_fallback", 0.45, "core_fallback", 0)
    assert predict(rule, Fixed("utter_guess", 0.5, 1)).action == "utter_guess"


def test_nobody_predicting_is_a_fallback_too() -> None:
    best = predict(Fixed(None, 0.0, 1))
    assert (best.action, best.policy) == ("action_default_fallback", "core_fallback")
    assert PolicyEnsemble([Fixed(None, 0, 1)]).fallback == (0.3, "action_default_fallback")


async def test_core_fallback_through_the_processor(dialogue) -> None:  # type: ignore[no-untyped-def]
    domain_yaml = """
    intents: [greet, chitchat]
    responses:
      utter_greet: [{text: 您好}]
      utter_default: [{text: 没听懂，换个说法？}]
    """
    rules = """
    rules:
    - rule: greet
      steps:
      - intent: greet
      - action: utter_greet
    """
    domain, ensemble = dialogue(domain_yaml, rules, [("RulePolicy", {})])
    ensemble.policies.append(Fixed("utter_greet", 0.2, 1, "unsure"))
    p = MessageProcessor(domain, ensemble)
    result = await p.handle(UserMessage("/chitchat", "s"))
    assert result.actions[0] == ("action_default_fallback", "core_fallback", 0.2)
    assert [m["text"] for m in result.messages] == ["没听懂，换个说法？"]  # domain's utter_default


def test_from_specs_builds_policies_by_name() -> None:
    ensemble = PolicyEnsemble.from_specs(
        (
            ComponentSpec("RulePolicy", {"core_fallback_threshold": 0.4}),
            ComponentSpec("AugmentedMemoizationPolicy", {"max_history": 3}),
            ComponentSpec("TEDPolicy", {"epochs": 100, "max_history": 4}),
        )
    )
    assert [p.name for p in ensemble.policies] == [
        "RulePolicy",
        "AugmentedMemoizationPolicy",
        "SklearnPolicy",
    ]
    assert ensemble.fallback == (0.4, "action_default_fallback")
    assert ensemble.policies[1].config["max_history"] == 3
    assert "epochs" not in ensemble.policies[2].config  # a neural-network option, ignored
    assert ensemble.policies[2].config["max_history"] == 4


def test_no_policies_means_the_defaults() -> None:
    names = [p.name for p in PolicyEnsemble.from_specs(()).policies]
    # Rasa 3.x default policies; TEDPolicy runs as SklearnPolicy
    assert names == ["MemoizationPolicy", "RulePolicy", "UnexpecTEDIntentPolicy", "SklearnPolicy"]


def test_unknown_policy_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match=r"unknown policy 'KerasPolicy'.*RulePolicy"):
        PolicyEnsemble.from_specs((ComponentSpec("KerasPolicy"),))


def test_policies_from_config_yml(tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    config.write_text(
        """\
language: zh
pipeline:
  - name: JiebaTokenizer
policies:
  - name: RulePolicy
    core_fallback_threshold: 0.35
    core_fallback_action_name: action_two_stage_fallback
  - name: MemoizationPolicy
    max_history: 2
    priority: 7
""",
        encoding="utf-8",
    )
    ensemble = PolicyEnsemble.from_specs(load_config(config).policies)
    assert ensemble.fallback == (0.35, "action_two_stage_fallback")
    assert ensemble.policies[1].priority == 7


async def test_persisted_ensemble_predicts_the_same(dialogue, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    domain_yaml = """
    intents: [greet, thank, bye]
    responses:
      utter_greet: [{text: 您好}]
      utter_thank: [{text: 不客气}]
      utter_bye: [{text: 再见}]
    """
    data = """
    stories:
    - story: s
      steps:
      - intent: greet
      - action: utter_greet
      - intent: thank
      - action: utter_thank
    rules:
    - rule: bye
      steps:
      - intent: bye
      - action: utter_bye
    """
    domain, ensemble = dialogue(domain_yaml, data)
    ensemble.persist(tmp_path / "core")
    loaded = PolicyEnsemble.load(tmp_path / "core")
    assert [p.name for p in loaded.policies] == [p.name for p in ensemble.policies]
    before = MessageProcessor(domain, ensemble)
    after = MessageProcessor(domain, loaded)
    for text in ("/greet", "/thank", "/bye", "/thank"):
        a = await before.handle(UserMessage(text, "s"))
        b = await after.handle(UserMessage(text, "s"))
        assert [x[:2] for x in a.actions] == [x[:2] for x in b.actions]
        assert [x[2] for x in a.actions] == pytest.approx([x[2] for x in b.actions])
