"""Rule policy: rules, forms (active loops) and fallbacks, as Rasa's ``RulePolicy``.

A rule becomes *snippets*: partial states (only what the rule says) and the action that
follows each. A snippet applies when the tracker's last states contain those features and
the same actions ran in between; the longest, most specific snippet wins.

Loops: while a loop (form) is active, the loop action gets the customer's message first.
Only rules that name the active loop in a condition can pre-empt it. When the loop rejects
the message (it did not fill the requested slot), other rules, stories and the trained policy
handle it, and then the loop is predicted again so the form resumes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self

from bot.core.policies.interfaces import Policy, PolicyPrediction
from bot.core.stories import ANY_VALUE, ActionStep, LoopStep, SlotStep, Story, UserStep
from bot.core.tracker import LISTEN, DialogueStateTracker, State, slot_feature
from bot.domain import Domain
from bot.nlu.fallback import FALLBACK_INTENT

_UNSET = "__unset__"


@dataclass
class PartialState:
    intent: str | None = None
    entities: tuple[str, ...] = ()
    prev_action: str | None = None
    slots: dict[str, Any] = field(default_factory=dict)
    active_loop: str | None = _UNSET

    def to_json(self) -> dict[str, Any]:
        return {
            "intent": self.intent,
            "entities": list(self.entities),
            "prev_action": self.prev_action,
            "slots": self.slots,
            "active_loop": self.active_loop,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PartialState:
        return cls(
            data["intent"],
            tuple(data["entities"]),
            data["prev_action"],
            dict(data["slots"]),
            data["active_loop"],
        )

    def size(self) -> int:
        return (
            (self.intent is not None)
            + len(self.entities)
            + (self.prev_action is not None)
            + len(self.slots)
            + (self.active_loop != _UNSET)
        )

    def matches(self, state: dict[str, Any], action: str | None = None) -> bool:
        """Whether ``state`` has these features; ``action`` is the action that ran in
        ``state`` (None for the state being predicted)."""
        if self.intent is not None and state.get("intent") != self.intent:
            return False
        if self.prev_action is not None and state.get("prev_action") != self.prev_action:
            return False
        if (
            self.active_loop != _UNSET
            and state.get("active_loop") != self.active_loop
            # A loop is active while its action runs: a form that the customer's message
            # opens and fills at once was active in the state it ran in, as for Rasa's
            # "condition: active_loop: form / action: form / active_loop: null" rule.
            and not (state.get("active_loop") is None and action == self.active_loop)
        ):
            return False
        if self.entities and not set(self.entities) <= state["entities"]:
            return False
        slots = state["slots"]
        return all(slots.get(name) == value for name, value in self.slots.items())


@dataclass
class Snippet:
    rule: str
    states: list[PartialState]
    actions: list[str]  # actions[i] follows states[i]; the last one is predicted
    conversation_start: bool = False

    @property
    def specificity(self) -> tuple[int, int]:
        # A conversation_start rule also matches "nothing before": one state more, so it
        # wins over the same rule without that condition, whatever their order.
        return len(self.states) + self.conversation_start, sum(s.size() for s in self.states)

    def mentions_loop(self, loop: str) -> bool:
        return any(s.active_loop == loop for s in self.states)


_STATE_DICTS: dict[State, dict[str, Any]] = {}
_STATE_DICTS_MAX = 50_000


def _state_dict(state: State) -> dict[str, Any]:
    """``state`` as a dict for :meth:`PartialState.matches` (read-only: it is shared, one per
    distinct state, since conversations go through the same few states again and again)."""
    out = _STATE_DICTS.get(state)
    if out is None:
        out = _build_state_dict(state)
        if len(_STATE_DICTS) >= _STATE_DICTS_MAX:
            _STATE_DICTS.clear()
        _STATE_DICTS[state] = out
    return out


def _build_state_dict(state: State) -> dict[str, Any]:
    out: dict[str, Any] = {"entities": set(), "slots": {}, "active_loop": None}
    for key, value in state:
        if key == "entity":
            out["entities"].add(value)
        elif key == "slot":
            out["slots"][value[0]] = value[1]
        else:
            out[key] = value
    return out


def rule_snippets(rule: Story, domain: Domain) -> list[Snippet]:
    current = PartialState()
    states: list[PartialState] = []
    actions: list[str] = []
    snippets: list[Snippet] = []

    def emit(action: str) -> None:
        states.append(PartialState(**{**current.__dict__, "slots": dict(current.slots)}))
        actions.append(action)
        snippets.append(Snippet(rule.name, list(states), list(actions), rule.conversation_start))

    def set_slots(step: SlotStep) -> None:
        for name, value in step.slots:
            feature = slot_feature(domain, name, "__set__" if value is ANY_VALUE else value)
            current.slots[name] = feature

    for step in rule.condition:
        if isinstance(step, SlotStep):
            set_slots(step)
        elif isinstance(step, LoopStep):
            current.active_loop = step.loop
    last_action = False
    for step in rule.steps:
        if isinstance(step, UserStep):
            current.intent = step.intent
            current.entities = tuple(sorted(str(e.get("entity")) for e in step.entities))
            current.prev_action = LISTEN
            last_action = False
        elif isinstance(step, ActionStep):
            emit(step.action)
            current.prev_action = step.action
            last_action = True
        elif isinstance(step, SlotStep):
            set_slots(step)
        elif isinstance(step, LoopStep):
            current.active_loop = step.loop
    if last_action and rule.wait_for_user_input:
        emit(LISTEN)
    # Only the snippets whose prediction is the rule's own: the first is always kept.
    return snippets


class RulePolicy(Policy):
    name = "RulePolicy"
    default_priority = 6
    defaults: ClassVar[dict[str, Any]] = {
        "core_fallback_threshold": 0.3,
        "core_fallback_action_name": "action_default_fallback",
        "enable_fallback_prediction": True,
    }

    def __init__(self, config: dict[str, Any], snippets: list[Snippet] | None = None) -> None:
        super().__init__(config)
        self.snippets = snippets or []
        self._index()

    def _index(self) -> None:
        """Snippets by the intent of their last state (None: any intent)."""
        self._by_intent: dict[str | None, list[Snippet]] = {}
        for snippet in self.snippets:
            self._by_intent.setdefault(snippet.states[-1].intent, []).append(snippet)
        for group in self._by_intent.values():
            group.sort(key=lambda s: s.specificity, reverse=True)
        # A match reads only the last `_longest` states (and actions) and whether an earlier
        # state has an intent, so its result is remembered under exactly that.
        self._longest = max((len(s.states) for s in self.snippets), default=0)
        self._matches: dict[tuple[Any, ...], Snippet | None] = {}

    def _match_recent(
        self, states: list[tuple[State, str | None]], only_loop: str | None = None
    ) -> Snippet | None:
        """:meth:`_match` over ``states``, remembered by what it depends on."""
        window = tuple(states[-self._longest :]) if self._longest else ()
        before = len(states) - len(window)
        earlier_intent = any(
            _state_dict(state).get("intent") is not None for state, _ in states[:before]
        )
        key = (only_loop, earlier_intent, window)
        try:
            return self._matches[key]
        except KeyError:
            pass
        found = self._match(states, [_state_dict(s) for s, _ in states], only_loop)
        if len(self._matches) >= 50_000:
            self._matches.clear()
        self._matches[key] = found
        return found

    def train(self, stories: list[Story], rules: list[Story], domain: Domain) -> None:
        self.snippets = [s for rule in rules for s in rule_snippets(rule, domain)]
        self._index()

    def _match(
        self,
        states: list[tuple[State, str | None]],
        dicts: list[dict[str, Any]],
        only_loop: str | None = None,
    ) -> Snippet | None:
        intent = dicts[-1].get("intent")
        candidates = [*self._by_intent.get(intent, []), *self._by_intent.get(None, [])]
        best: Snippet | None = None
        for snippet in candidates:
            if only_loop is not None and not snippet.mentions_loop(only_loop):
                continue
            n = len(snippet.states)
            if n > len(states):
                continue
            offset = len(states) - n
            if not all(
                snippet.states[i].matches(dicts[offset + i], states[offset + i][1])
                for i in range(n)
            ):
                continue
            if any(states[offset + i][1] != snippet.actions[i] for i in range(n - 1)):
                continue
            if snippet.conversation_start and any(
                d.get("intent") is not None for d in dicts[:offset]
            ):
                continue
            if best is None or snippet.specificity > best.specificity:
                best = snippet
        return best

    def predict(
        self,
        tracker: DialogueStateTracker,
        states: list[tuple[State, str | None]],
        domain: Domain,
    ) -> PolicyPrediction | None:
        if tracker.followup_action:
            return self._prediction(tracker.followup_action, 1.0)
        loop = tracker.active_loop.name
        prev = tracker.latest_action_name
        if loop:
            if prev == LISTEN and not tracker.active_loop.rejected:
                snippet = self._match_recent(states, only_loop=loop)
                return self._prediction(snippet.actions[-1] if snippet else loop, 1.0)
            if prev == loop:
                return self._prediction(LISTEN, 1.0)
            if tracker.active_loop.rejected and prev not in (LISTEN, loop):
                # The interruption was handled: unless a rule says more, resume the loop.
                snippet = self._match_recent(states)
                if snippet is not None and snippet.actions[-1] != LISTEN:
                    return self._prediction(snippet.actions[-1], 1.0)
                return self._prediction(loop, 1.0)
        snippet = self._match_recent(states)
        if snippet is not None:
            return self._prediction(snippet.actions[-1], 1.0)
        if (
            self.config["enable_fallback_prediction"]
            and prev == LISTEN
            and tracker.latest_intent == FALLBACK_INTENT
        ):
            return self._prediction(self.config["core_fallback_action_name"], 1.0)
        return None

    def persist(self, directory: Path) -> None:
        data = [
            {
                "rule": s.rule,
                "states": [p.to_json() for p in s.states],
                "actions": s.actions,
                "conversation_start": s.conversation_start,
            }
            for s in self.snippets
        ]
        (directory / "rules.json").write_text(
            json.dumps(data, ensure_ascii=False), encoding="utf-8"
        )

    @classmethod
    def load(cls, directory: Path, config: dict[str, Any]) -> Self:
        data = json.loads((directory / "rules.json").read_text(encoding="utf-8"))
        snippets = [
            Snippet(
                d["rule"],
                [PartialState.from_json(p) for p in d["states"]],
                d["actions"],
                d["conversation_start"],
            )
            for d in data
        ]
        return cls(config, snippets)
