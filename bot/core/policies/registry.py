"""Policy names usable under ``policies:`` → classes, Rasa 3.x's names included.

``TEDPolicy`` needs TensorFlow, so it runs as :class:`SklearnPolicy` with its
``max_history``; its neural network options are listed once as not honoured.
``UnexpecTEDIntentPolicy`` is accepted and never predicts (Rasa's only predicts
``action_unlikely_intent``, which needs the same network).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import Any, ClassVar

from bot.core.policies.interfaces import Policy, PolicyPrediction
from bot.core.stories import Story
from bot.core.tracker import DialogueStateTracker, State
from bot.domain import Domain
from bot.errors import ConfigError

# name → "module:Class"; modules are imported only when a config names them.
POLICIES: dict[str, str] = {
    "RulePolicy": "bot.core.policies.rule:RulePolicy",
    "MemoizationPolicy": "bot.core.policies.memoization:MemoizationPolicy",
    "AugmentedMemoizationPolicy": "bot.core.policies.memoization:AugmentedMemoizationPolicy",
    "SklearnPolicy": "bot.core.policies.sklearn_policy:SklearnPolicy",
    "TEDPolicy": "bot.core.policies.sklearn_policy:SklearnPolicy",
    "UnexpecTEDIntentPolicy": "bot.core.policies.registry:UnexpecTEDIntentPolicy",
}
# Rasa names that run as another policy here.
SUBSTITUTES = {"TEDPolicy": "SklearnPolicy"}
# Options every policy takes.
COMMON_OPTIONS = frozenset({"priority"})


class UnexpecTEDIntentPolicy(Policy):
    """Accepted from Rasa configs; abstains on every turn."""

    name = "UnexpecTEDIntentPolicy"
    default_priority = 2
    defaults: ClassVar[dict[str, Any]] = {"max_history": 5}

    def train(self, stories: list[Story], rules: list[Story], domain: Domain) -> None:
        """Nothing to learn."""

    def predict(
        self,
        tracker: DialogueStateTracker,
        states: list[tuple[State, str | None]],
        domain: Domain,
    ) -> PolicyPrediction | None:
        return None


def policy_class(name: str) -> type[Policy]:
    """The class for a ``- name:`` entry; a clear error for unknown names and Python paths."""
    target = POLICIES.get(name)
    if target is None:
        known = ", ".join(sorted(POLICIES))
        if "." in name:
            raise ConfigError(
                f"policy '{name}' is a Python path: custom Rasa policies (GraphComponent "
                f"classes) do not run here. Fix: use one of {known}, or write the behaviour "
                "as rules and custom actions"
            )
        raise ConfigError(f"unknown policy '{name}'. Known policies: {known}")
    module, cls = target.split(":")
    policy: type[Policy] = getattr(import_module(module), cls)
    return policy


@dataclass(frozen=True)
class ResolvedPolicy:
    cls: type[Policy]
    options: dict[str, Any]
    note: str | None = None  # a substitution or options that are not honoured


def resolve(name: str, options: dict[str, Any]) -> ResolvedPolicy:
    """The class and the options it honours for one config entry, and a note on what
    runs differently from Rasa (``None`` when nothing does)."""
    cls = policy_class(name)
    honoured = set(cls.defaults) | COMMON_OPTIONS
    kept = {k: v for k, v in options.items() if k in honoured}
    dropped = sorted(set(options) - honoured)
    notes = []
    if name in SUBSTITUTES:
        notes.append(f"runs as {SUBSTITUTES[name]} (scikit-learn, no TensorFlow)")
    if cls is UnexpecTEDIntentPolicy:
        notes.append("accepted; never predicts action_unlikely_intent")
    if dropped:
        notes.append(f"options not honoured: {', '.join(dropped)}")
    return ResolvedPolicy(cls, kept, f"{name}: " + "; ".join(notes) if notes else None)
