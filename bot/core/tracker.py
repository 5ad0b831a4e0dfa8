"""The conversation state, derived from its events (Rasa's ``DialogueStateTracker``).

State is recomputed by replaying the *applied* events: ``restart`` and
``session_started`` start afresh, ``rewind`` removes the last user message, what
followed it and the ``action_listen`` just before it (as Rasa's ``UserUtteranceReverted``),
``undo`` removes the last action and what followed it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.core.events import Event
from bot.domain import REQUESTED_SLOT, Domain

# Featurised state of one moment in the conversation: (key, value) pairs, hashable.
State = tuple[tuple[str, Any], ...]
LISTEN = "action_listen"


@dataclass
class ActiveLoop:
    name: str | None = None
    rejected: bool = False  # the loop action refused the latest user message
    interrupted: bool = False


def applied_events(events: list[Event]) -> list[Event]:
    applied: list[Event] = []
    for event in events:
        kind = event.get("event")
        if kind in ("restart", "session_started"):
            applied = [event] if kind == "session_started" else []
        elif kind == "rewind":
            _undo_till(applied, "user")
            # The listen that led to the message goes too: the bot's last action is latest.
            if (
                applied
                and applied[-1].get("event") == "action"
                and (applied[-1].get("name") == LISTEN)
            ):
                del applied[-1]
        elif kind == "undo":
            _undo_till(applied, "action")
        else:
            applied.append(event)
    return applied


def _undo_till(applied: list[Event], kind: str) -> None:
    for i in range(len(applied) - 1, -1, -1):
        if applied[i].get("event") == kind:
            del applied[i:]
            return


# Events after which the applied history is not the previous one plus the event.
_REPLAYING = frozenset({"rewind", "undo", "restart", "session_started"})


@dataclass
class _StatesCache:
    events: list[Event]  # the list featurised (a replaced list starts afresh)
    seen: int  # how many of its events
    last: Event | None  # the last of them (the list was not cut and refilled)
    folder: _StateFolder


@dataclass
class DialogueStateTracker:
    sender_id: str
    domain: Domain
    events: list[Event] = field(default_factory=list)
    slots: dict[str, Any] = field(default_factory=dict)
    latest_message: dict[str, Any] = field(default_factory=dict)
    latest_action: dict[str, Any] = field(default_factory=dict)
    active_loop: ActiveLoop = field(default_factory=ActiveLoop)
    paused: bool = False
    followup_action: str | None = None
    latest_input_channel: str | None = None
    _states: _StatesCache | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_events(
        cls, sender_id: str, events: list[Event], domain: Domain
    ) -> DialogueStateTracker:
        tracker = cls(sender_id, domain)
        tracker.events = list(events)
        tracker._replay()
        return tracker

    def _reset_state(self) -> None:
        self.slots = {name: slot.initial_value for name, slot in self.domain.slots.items()}
        self.latest_message = {}
        self.latest_action = {}
        self.active_loop = ActiveLoop()
        self.followup_action = None
        self.latest_input_channel = None

    def _replay(self) -> None:
        self._reset_state()
        self.paused = False
        for event in self.events:  # pause state survives rewinds, like Rasa
            if event.get("event") == "pause":
                self.paused = True
            elif event.get("event") in ("resume", "restart"):
                self.paused = False
        for event in applied_events(self.events):
            self._apply(event)

    def _apply(self, event: Event) -> None:
        kind = event.get("event")
        if kind == "user":
            self.latest_message = {
                "text": event.get("text"),
                **(event.get("parse_data") or {}),
            }
            self.latest_message.setdefault("intent", {})
            self.latest_message.setdefault("entities", [])
            self.latest_input_channel = event.get("input_channel")
            self.active_loop.rejected = False
        elif kind == "action":
            name = event.get("name")
            self.latest_action = {"action_name": name}
            if self.followup_action == name:
                self.followup_action = None
            if name is not None and name == self.active_loop.name:
                self.active_loop.rejected = False  # the loop ran again (as Rasa)
        elif kind == "slot":
            name = event.get("name")
            slot = self.domain.slots.get(str(name))
            value = event.get("value")
            self.slots[str(name)] = slot.coerce(value) if slot else value
        elif kind == "active_loop":
            self.active_loop = ActiveLoop(event.get("name"))
        elif kind == "action_execution_rejected":
            if event.get("name") == self.active_loop.name:
                self.active_loop.rejected = True
        elif kind == "loop_interrupted":
            self.active_loop.interrupted = bool(event.get("is_interrupted"))
        elif kind == "reset_slots":
            self.slots = {n: s.initial_value for n, s in self.domain.slots.items()}
        elif kind == "followup":
            self.followup_action = event.get("name")
        elif kind == "pause":
            self.paused = True
        elif kind == "resume":
            self.paused = False
        elif kind == "restart":
            self._reset_state()

    def update(self, event: Event) -> None:
        """Append one event and bring the state up to date."""
        self.events.append(event)
        if event.get("event") in ("rewind", "undo", "restart", "session_started"):
            self._replay()
        else:
            self._apply(event)

    def extend(self, events: list[Event]) -> None:
        for event in events:
            self.update(event)

    # -- views -------------------------------------------------------------------------

    @property
    def latest_intent(self) -> str | None:
        intent = self.latest_message.get("intent") or {}
        name = intent.get("name")
        return str(name) if name is not None else None

    @property
    def latest_action_name(self) -> str | None:
        name = self.latest_action.get("action_name")
        return str(name) if name is not None else None

    @property
    def latest_event_time(self) -> float | None:
        return float(self.events[-1]["timestamp"]) if self.events else None

    def get_slot(self, name: str) -> Any:
        return self.slots.get(name)

    def user_turns_since(self, event_kind: str, name: str | None = None) -> int:
        """User messages after the last event of ``event_kind`` (and ``name``)."""
        count = 0
        for event in reversed(applied_events(self.events)):
            if event.get("event") == event_kind and (name is None or event.get("name") == name):
                return count
            if event.get("event") == "user":
                count += 1
        return count

    def current_state(self) -> dict[str, Any]:
        """The tracker JSON of docs/rasa-compat.md (what an action server receives)."""
        loop = (
            {"name": self.active_loop.name, "validate": True, "rejected": self.active_loop.rejected}
            if self.active_loop.name
            else {}
        )
        latest_action_name = self.latest_action_name
        return {
            "sender_id": self.sender_id,
            "slots": dict(self.slots),
            "latest_message": self.latest_message or {"intent": {}, "entities": [], "text": None},
            "latest_event_time": self.latest_event_time,
            "followup_action": self.followup_action,
            "paused": self.paused,
            "events": list(self.events),
            "latest_input_channel": self.latest_input_channel,
            "active_loop": loop,
            "latest_action": self.latest_action,
            "latest_action_name": latest_action_name,
        }

    # -- featurisation for the policies ---------------------------------------------------

    def past_states(self) -> list[tuple[State, str | None]]:
        """``(state before the action, action name)`` for every action of the applied
        events, then the current state with ``None``.

        The featurisation is kept between calls and continued over the events appended
        since; an event that changes the applied history (rewind, undo, restart, session
        start) or a replaced ``events`` list starts it afresh."""
        events = self.events
        cache = self._states
        seen = cache.seen if cache is not None else 0
        if (
            cache is None
            or cache.events is not events
            or seen > len(events)
            or (seen and events[seen - 1] is not cache.last)
            or any(e.get("event") in _REPLAYING for e in events[seen:])
        ):
            folder = _StateFolder(self.domain)
            for event in applied_events(events):
                folder.feed(event)
        else:
            folder = cache.folder
            for event in events[seen:]:
                folder.feed(event)
        self._states = _StatesCache(events, len(events), events[-1] if events else None, folder)
        return folder.states()


def slot_feature(domain: Domain, name: str, value: Any) -> Any:
    slot = domain.slots.get(name)
    if slot is None or not slot.influence_conversation or value is None:
        return None
    if slot.type == "bool":
        return bool(value)
    if slot.type == "categorical":
        return str(value) if str(value) in slot.values else "__other__"
    return "set"


class _StateFolder:
    """Folds applied events into featurised states, one event at a time (so a tracker can
    continue where it stopped instead of replaying its whole history for every prediction)."""

    __slots__ = ("domain", "entities", "intent", "loop", "out", "prev_action", "slots")

    def __init__(self, domain: Domain) -> None:
        self.domain = domain
        self.intent: str | None = None
        self.entities: tuple[str, ...] = ()
        self.prev_action: str | None = None
        self.slots: dict[str, Any] = {}
        self.loop: str | None = None
        self.out: list[tuple[State, str | None]] = []

    def state(self) -> State:
        items: list[tuple[str, Any]] = []
        if self.intent is not None:
            items.append(("intent", self.intent))
        items.extend(("entity", e) for e in self.entities)
        if self.prev_action is not None:
            items.append(("prev_action", self.prev_action))
        items.extend(("slot", (k, v)) for k, v in sorted(self.slots.items()))
        items.append(("active_loop", self.loop))
        return tuple(items)

    def feed(self, event: Event) -> None:
        kind = event.get("event")
        if kind == "user":
            parse = event.get("parse_data") or {}
            self.intent = (parse.get("intent") or {}).get("name")
            self.entities = tuple(
                sorted({str(e.get("entity")) for e in parse.get("entities") or []})
            )
        elif kind == "action":
            name = str(event.get("name"))
            if name in ("action_session_start",):
                return
            self.out.append((self.state(), name))
            self.prev_action = name
        elif kind == "slot":
            name = str(event.get("name"))
            if name == REQUESTED_SLOT:
                return
            feature = slot_feature(self.domain, name, event.get("value"))
            if feature is None:
                self.slots.pop(name, None)
            else:
                self.slots[name] = feature
        elif kind == "active_loop":
            self.loop = event.get("name")
        elif kind in ("session_started", "restart"):
            self.intent, self.entities, self.prev_action, self.slots, self.loop = (
                None,
                (),
                None,
                {},
                None,
            )
        elif kind == "reset_slots":
            self.slots = {}

    def states(self) -> list[tuple[State, str | None]]:
        return [*self.out, (self.state(), None)]


def states_from_events(events: list[Event], domain: Domain) -> list[tuple[State, str | None]]:
    folder = _StateFolder(domain)
    for event in events:
        folder.feed(event)
    return folder.states()
