"""Policies from config and how their predictions combine, as in Rasa: the highest
confidence wins, ties go to the higher priority; below the rule policy's
``core_fallback_threshold`` the fallback action runs instead."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bot.config import RASA_DEFAULT_POLICIES, ComponentSpec
from bot.core.policies.interfaces import Policy, PolicyPrediction
from bot.core.policies.registry import POLICIES, policy_class, resolve
from bot.core.stories import Story
from bot.core.tracker import DialogueStateTracker
from bot.domain import Domain

__all__ = ["POLICIES", "PolicyEnsemble", "policy_class"]


class PolicyEnsemble:
    def __init__(self, policies: list[Policy], notes: list[str] | None = None) -> None:
        self.policies = policies
        self._notes = notes or []

    @classmethod
    def from_specs(cls, specs: tuple[ComponentSpec, ...]) -> PolicyEnsemble:
        """The policies of ``specs`` (Rasa's default policies when empty)."""
        policies = []
        notes: list[str] = []
        for spec in specs or RASA_DEFAULT_POLICIES:
            resolved = resolve(spec.name, spec.options)
            policies.append(resolved.cls(resolved.options))
            if resolved.note and resolved.note not in notes:
                notes.append(resolved.note)
        return cls(policies, notes)

    def notes(self) -> list[str]:
        """One line per policy that runs differently from Rasa's (substituted, options
        not honoured)."""
        return list(self._notes)

    def train(self, stories: list[Story], rules: list[Story], domain: Domain) -> None:
        for policy in self.policies:
            policy.train(stories, rules, domain)

    @property
    def fallback(self) -> tuple[float, str]:
        for policy in self.policies:
            if policy.name == "RulePolicy":
                return (
                    float(policy.config["core_fallback_threshold"]),
                    str(policy.config["core_fallback_action_name"]),
                )
        return 0.3, "action_default_fallback"

    def predict(self, tracker: DialogueStateTracker, domain: Domain) -> PolicyPrediction:
        states = tracker.past_states()
        best: PolicyPrediction | None = None
        for policy in self.policies:
            prediction = policy.predict(tracker, states, domain)
            if prediction is None:
                continue
            if best is None or (prediction.confidence, prediction.priority) > (
                best.confidence,
                best.priority,
            ):
                best = prediction
        threshold, action = self.fallback
        if best is None or best.confidence < threshold:
            return PolicyPrediction(
                action, 1.0 if best is None else best.confidence, "core_fallback", 0
            )
        return best

    def persist(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        specs = []
        for i, policy in enumerate(self.policies):
            sub = directory / f"{i}_{policy.name}"
            sub.mkdir()
            policy.persist(sub)
            specs.append({"name": policy.name, **policy.config})
        (directory / "policies.json").write_text(json.dumps(specs, indent=2), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> PolicyEnsemble:
        specs: list[dict[str, Any]] = json.loads(
            (directory / "policies.json").read_text(encoding="utf-8")
        )
        policies = []
        for i, spec in enumerate(specs):
            options = {k: v for k, v in spec.items() if k != "name"}
            policies.append(
                policy_class(spec["name"]).load(directory / f"{i}_{spec['name']}", options)
            )
        return cls(policies)
