"""One turn of a conversation: message in, bot messages out.

Under the conversation's lock: load the events, start a session when none is running or
the last one expired, parse the message (NLU, or an intent payload ``/intent{...}``),
extract slots, then predict and run actions until ``action_listen`` (at most
``max_predictions``). While the conversation is paused (a human agent has it) the message
is stored and nothing is predicted. Then the after-turn stages (:mod:`bot.core.stages`, e.g.
the handoff) run on the same tracker, and the new events are appended to the store in one
go: one lock, one read of the store per turn.
"""

from __future__ import annotations

import json
import logging
import random
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any

from bot.builtin_responses import builtin_responses
from bot.core import events as ev
from bot.core import strict_json
from bot.core.actions.custom import ActionExecutionError, ActionRejected, CustomAction
from bot.core.actions.default import (
    ActionBack,
    ActionDeactivateLoop,
    ActionDefaultAskRephrase,
    ActionDefaultFallback,
    ActionExtractSlots,
    ActionListen,
    ActionRestart,
    ActionSessionStart,
)
from bot.core.actions.interfaces import Action, ActionContext, CustomActionExecutor
from bot.core.actions.loops import TWO_STAGE, FormAction, TwoStageFallbackAction
from bot.core.actions.responses import ResponseAction, bot_message, render, response_event
from bot.core.actions.retrieval import RetrievalAction
from bot.core.actions.slot_extraction import PROTECTED_SLOTS, extract_slots
from bot.core.events import Event
from bot.core.lock_store import InMemoryLockStore, LockStore
from bot.core.messages import TurnResult, UserMessage
from bot.core.policies.ensemble import PolicyEnsemble
from bot.core.policies.interfaces import PolicyPrediction
from bot.core.stages import Turn, TurnStage
from bot.core.tracker import LISTEN, DialogueStateTracker
from bot.core.tracker_store import InMemoryTrackerStore, TrackerStore
from bot.domain import Domain
from bot.nlu.pipeline import NLUPipeline
from bot.privacy import mask_text

logger = logging.getLogger(__name__)

_PAYLOAD = re.compile(r"^/(?P<intent>[A-Za-z_][\w.-]*)(?P<entities>\{.*\})?\s*$", re.DOTALL)
ACTION_FAILED = "utter_action_failed"  # built-in response (engine.yml)
TOO_LONG = "utter_message_too_long"  # built-in response (engine.yml): {length}, {limit}

_DEFAULT_ACTIONS: dict[str, Callable[[str], Action]] = {
    "action_listen": ActionListen,
    "action_session_start": ActionSessionStart,
    "action_restart": ActionRestart,
    "action_default_fallback": ActionDefaultFallback,
    "action_deactivate_loop": ActionDeactivateLoop,
    "action_back": ActionBack,
    "action_extract_slots": ActionExtractSlots,
    "action_default_ask_rephrase": ActionDefaultAskRephrase,
    "action_two_stage_fallback": TwoStageFallbackAction,
    "action_default_ask_affirmation": TwoStageFallbackAction,
    "action_revert_fallback_events": TwoStageFallbackAction,
}


def parse_payload(text: str, domain: Domain) -> dict[str, Any] | None:
    """``/intent{"entity": "value"}`` → parse data, as Rasa treats such messages."""
    match = _PAYLOAD.match(text.strip())
    if not match or match.group("intent") not in domain.intents:
        return None
    entities: list[dict[str, Any]] = []
    if match.group("entities"):
        try:  # malformed, or NaN, Infinity and 1e999 (no JSON values): entities dropped
            raw = strict_json.loads(match.group("entities"))
        except ValueError:  # json.JSONDecodeError and strict_json.NotJSON
            raw = {}
        if isinstance(raw, dict):
            for name, value in raw.items():
                for v in value if isinstance(value, list) else [value]:
                    entities.append(
                        {
                            "entity": str(name),
                            "value": v,
                            "start": 0,
                            "end": len(text),
                            "extractor": "payload",
                        }
                    )
    intent = {"name": match.group("intent"), "confidence": 1.0}
    return {"intent": intent, "intent_ranking": [intent], "entities": entities, "text": text}


# json.dumps(event, ensure_ascii=False, allow_nan=False) with the encoder built once
_JSON_CHECK = json.JSONEncoder(ensure_ascii=False, allow_nan=False)


def _json_safe(event: Event) -> Event:
    """Events are stored as JSON: objects an action left in them become plain data."""
    try:
        _JSON_CHECK.encode(event)
        return event
    except (TypeError, ValueError):

        def plain(value: Any) -> Any:
            if hasattr(value, "__dataclass_fields__"):
                return {k: plain(getattr(value, k)) for k in value.__dataclass_fields__}
            if isinstance(value, dict):
                return {str(k): plain(v) for k, v in value.items()}
            if isinstance(value, list | tuple):
                return [plain(v) for v in value]
            if isinstance(value, float) and value != value:
                return None
            if value is None or isinstance(value, str | int | float | bool):
                return value
            return str(value)

        safe: Event = plain(event)
        return safe


def _just_rejected(tracker: DialogueStateTracker) -> str | None:
    """The action whose rejection is the latest action event, if any."""
    for event in reversed(tracker.events):
        kind = event.get("event")
        if kind == "action_execution_rejected":
            return str(event.get("name"))
        if kind in ("action", "user"):
            return None
    return None


class MessageProcessor:
    def __init__(
        self,
        domain: Domain,
        policies: PolicyEnsemble,
        nlu: NLUPipeline | None = None,
        tracker_store: TrackerStore | None = None,
        lock_store: LockStore | None = None,
        executor: CustomActionExecutor | None = None,
        clock: Callable[[], float] = time.time,
        max_predictions: int = 10,
        seed: int | None = None,
        cache_size: int = 10_000,
        stages: Sequence[TurnStage] = (),
    ) -> None:
        self.domain = domain
        self.policies = policies
        self.nlu = nlu
        # ``is None``: an empty in-memory lock store is falsy (it has a length)
        self.tracker_store = tracker_store if tracker_store is not None else InMemoryTrackerStore()
        self.lock_store = lock_store if lock_store is not None else InMemoryLockStore()
        self.executor = executor
        self.clock = clock
        self.max_predictions = max_predictions
        self.rng = random.Random(seed)
        # Recently active trackers. Events are append-only, so a cached tracker is brought
        # up to date by reading only the events after its length (other processes may
        # have appended some); a failed turn drops its entry.
        self._cache: OrderedDict[str, DialogueStateTracker] = OrderedDict()
        self.cache_size = cache_size
        self.stages: list[TurnStage] = list(stages)  # after-turn stages, in order

    # -- public ----------------------------------------------------------------------------

    async def handle_message(self, message: UserMessage) -> list[dict[str, Any]]:
        return (await self.handle(message)).messages

    async def handle(self, message: UserMessage, parse: dict[str, Any] | None = None) -> TurnResult:
        """Process one message; ``parse`` replaces the NLU result (story tests use it)."""
        sender = message.sender_id
        async with self.lock(sender):
            tracker = await self._cached_tracker(sender)
            start = len(tracker.events)
            try:
                now = self.clock()
                result = await self._turn(tracker, message, now, parse)
                turn = Turn(tracker, message, result, now, self.clock, start)
                await self._after_turn(turn)
                new_events = tracker.events[start:]
                await self.tracker_store.append(sender, new_events)
            except BaseException:
                self._cache.pop(sender, None)
                raise
            result.events = new_events
            return result

    async def _after_turn(self, turn: Turn) -> None:
        for stage in self.stages:
            try:
                await stage(turn)
            except Exception:  # the bot's answer still counts and is stored
                logger.exception("after-turn stage %r of %s failed", stage, turn.sender_id)

    def add_stage(self, stage: TurnStage) -> None:
        """Run ``stage`` after every turn's actions (once, however often it is added)."""
        if stage not in self.stages:
            self.stages.append(stage)

    async def refuse_too_long(self, message: UserMessage, limit: int) -> TurnResult:
        """A message over ``limit`` characters is not processed: the conversation keeps a
        truncated copy and the customer is told (``utter_message_too_long``), in one turn
        under the lock; no stage runs."""
        sender = message.sender_id
        async with self.lock(sender):
            tracker = await self._cached_tracker(sender)
            start = len(tracker.events)
            try:
                now = self.clock()
                metadata = {
                    **message.metadata,
                    "truncated": True,
                    "original_length": len(message.text),
                }
                tracker.update(
                    ev.user(
                        message.text[:limit],
                        {"intent": {"name": None, "confidence": 0.0}, "entities": []},
                        input_channel=message.input_channel,
                        metadata=metadata,
                        timestamp=now,
                    )
                )
                notice = self._engine_message(
                    TOO_LONG,
                    tracker,
                    message.input_channel,
                    now,
                    {"message_too_long": True},
                    {"length": len(message.text), "limit": limit},
                )
                tracker.update(notice)
                tracker.update(ev.action(LISTEN, "message_too_long", 1.0, now))
                new_events = tracker.events[start:]
                await self.tracker_store.append(sender, new_events)
            except BaseException:
                self._cache.pop(sender, None)
                raise
            return TurnResult(
                [bot_message(notice, sender)],
                new_events,
                {},
                [],
                customer_id=message.customer_id,
                outcome="too_long",
            )

    def _engine_message(
        self,
        name: str,
        tracker: DialogueStateTracker,
        channel: str | None,
        now: float,
        metadata: dict[str, Any],
        values: dict[str, Any] | None = None,
    ) -> Event:
        """The engine's own message ``name`` (the domain's response, else the built-in)."""
        slots = dict(tracker.slots)
        event = response_event(
            name, self.domain, channel=channel, rng=self.rng, slots=slots, values=values
        )
        if event is None:  # every variation's condition failed: the built-in one
            event = render(builtin_responses()[name][0], {**slots, **(values or {})}, name)
        event["metadata"] = metadata  # what the message is about, as the channels read it
        event["timestamp"] = now
        return event

    def lock(self, sender_id: str) -> AbstractAsyncContextManager[None]:
        """The conversation's lock, under the id the store keeps it by: a sender id and its
        pseudonym (docs/persistence.md, "Personal data at rest") are one conversation."""
        return self.lock_store.lock(self.tracker_store.privacy.sender_key(sender_id))

    async def _cached_tracker(self, sender_id: str) -> DialogueStateTracker:
        tracker = self._cache.pop(sender_id, None)
        if tracker is None:
            tracker = await self.get_tracker(sender_id)
        else:
            tracker.extend(await self.tracker_store.events(sender_id, after=len(tracker.events)))
        self._cache[sender_id] = tracker
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return tracker

    async def get_tracker(self, sender_id: str) -> DialogueStateTracker:
        """A fresh tracker built from every stored event of the conversation."""
        events = await self.tracker_store.events(sender_id)
        return DialogueStateTracker.from_events(sender_id, events, self.domain)

    async def append_events(self, sender_id: str, events: list[Event]) -> None:
        """Add events from outside a turn (pause/resume by an agent), under the lock."""
        async with self.lock(sender_id):
            await self.tracker_store.append(sender_id, events)

    def knows_action(self, name: str) -> bool:
        """Whether ``name`` can be run (a default, form, response, retrieval or custom action)."""
        try:
            self.action(name)
        except ActionExecutionError:
            return False
        return True

    async def execute_action(
        self,
        sender_id: str,
        name: str,
        *,
        policy: str | None = None,
        confidence: float | None = None,
        input_channel: str | None = None,
    ) -> TurnResult:
        """Run one action in a conversation from outside (Rasa's ``POST .../execute``), under
        the conversation's lock, starting a session first when none is running. Nothing is
        predicted after it; a failing custom action is answered as in a turn."""
        self.action(name)  # ActionExecutionError for an unknown name, before locking
        async with self.lock(sender_id):
            tracker = await self._cached_tracker(sender_id)
            start = len(tracker.events)
            try:
                now = self.clock()
                context = self._context(input_channel or tracker.latest_input_channel)
                await self._start_session_if_due(tracker, context, now)
                verified = tracker.slots.get("customer_id")  # as the channel set it
                result = TurnResult(
                    [], [], {}, [], customer_id=verified if isinstance(verified, str) else None
                )
                prediction = PolicyPrediction(
                    name, 1.0 if confidence is None else confidence, policy or "http_api", 0
                )
                await self._run_action(tracker, prediction, context, now, result)
                new_events = tracker.events[start:]
                await self.tracker_store.append(sender_id, new_events)
            except BaseException:
                self._cache.pop(sender_id, None)
                raise
            result.events = new_events
            return result

    def parse(self, text: str) -> dict[str, Any]:
        payload = parse_payload(text, self.domain)
        if payload is not None:
            return payload
        if self.nlu is None:
            return {
                "text": text,
                "intent": {"name": None, "confidence": 0.0},
                "intent_ranking": [],
                "entities": [],
            }
        return self.nlu.parse(text)

    # -- the turn --------------------------------------------------------------------------

    def _session_expired(self, tracker: DialogueStateTracker, now: float) -> bool:
        if not any(e.get("event") == "session_started" for e in tracker.events):
            return True
        minutes = self.domain.session_config.expiration_minutes
        last = tracker.latest_event_time
        return bool(minutes > 0 and last is not None and now - last > minutes * 60)

    def _stamp(self, events: list[Event], now: float) -> list[Event]:
        for event in events:
            event["timestamp"] = now
        return events

    async def _start_session_if_due(
        self, tracker: DialogueStateTracker, context: ActionContext, now: float
    ) -> None:
        if self._session_expired(tracker, now):
            tracker.update(ev.action("action_session_start", timestamp=now))
            tracker.extend(
                self._stamp(
                    await ActionSessionStart("action_session_start").run(tracker, context), now
                )
            )
            tracker.update(ev.action(LISTEN, timestamp=now))

    def _context(self, channel: str | None) -> ActionContext:
        return ActionContext(self.domain, channel, self.executor, self.rng, self.clock)

    async def _turn(
        self,
        tracker: DialogueStateTracker,
        message: UserMessage,
        now: float,
        parse: dict[str, Any] | None = None,
    ) -> TurnResult:
        context = self._context(message.input_channel)
        await self._start_session_if_due(tracker, context, now)
        parse = dict(parse) if parse is not None else self.parse(message.text)
        parse["entities"] = [
            e for e in parse.get("entities") or [] if e.get("entity") not in PROTECTED_SLOTS
        ]
        parse_data = {k: v for k, v in parse.items() if k != "text"}
        tracker.update(
            ev.user(
                message.text,
                parse_data,
                input_channel=message.input_channel,
                message_id=message.message_id,
                metadata=message.metadata,
                timestamp=now,
            )
        )
        if "customer_id" in self.domain.slots and (
            tracker.slots.get("customer_id") != message.customer_id
        ):
            tracker.update(ev.slot("customer_id", message.customer_id, timestamp=now))
        tracker.extend(self._stamp(extract_slots(tracker, self.domain), now))
        result = TurnResult([], [], parse, [], customer_id=message.customer_id)
        if tracker.paused:
            result.outcome = "paused"
            return result
        for _ in range(self.max_predictions):
            prediction = self.predict(tracker)
            if prediction.action == LISTEN:
                result.actions.append((LISTEN, prediction.policy, prediction.confidence))
                tracker.update(ev.action(LISTEN, prediction.policy, prediction.confidence, now))
                break
            stop = await self._run_action(tracker, prediction, context, now, result)
            if tracker.paused and not stop:
                # A human takes over: the bot listens from here (and after a resume).
                result.actions.append((LISTEN, "paused", 1.0))
                tracker.update(ev.action(LISTEN, "paused", 1.0, now))
                break
            if stop:
                break
        else:
            logger.warning(
                "%s: %d predictions without listening; listening now",
                tracker.sender_id,
                self.max_predictions,
            )
            tracker.update(ev.action(LISTEN, "max_predictions", 1.0, now))
        if result.outcome == "answered" and result.rejected:
            result.outcome = "rejected"
        return result

    def predict(self, tracker: DialogueStateTracker) -> PolicyPrediction:
        prediction = self.policies.predict(tracker, self.domain)
        loop = tracker.active_loop
        if (
            loop.name
            and loop.rejected
            and prediction.action == loop.name
            and tracker.latest_action_name == LISTEN
        ):
            # The loop refused this message already: do not ask it again.
            _, fallback = self.policies.fallback
            return PolicyPrediction(fallback, 1.0, "loop_rejected", 0)
        if prediction.action == _just_rejected(tracker):
            # An action that refused to run is not predicted again at once (as Rasa);
            # otherwise it would be retried until max_predictions.
            _, fallback = self.policies.fallback
            return PolicyPrediction(fallback, 1.0, "action_rejected", 0)
        return prediction

    def action(self, name: str) -> Action:
        if name in _DEFAULT_ACTIONS:
            return _DEFAULT_ACTIONS[name](TWO_STAGE if "fallback_events" in name else name)
        if name in self.domain.forms:
            return FormAction(name)
        retrieval = self.domain.retrieval_intent_of(name)
        if retrieval is not None:  # utter_chitchat: the ResponseSelector's answer
            return RetrievalAction(name, retrieval)
        if name in self.domain.responses:
            return ResponseAction(name)
        if name in self.domain.actions or (self.executor and name in self.executor.names()):
            return CustomAction(name)
        raise ActionExecutionError(
            f"unknown action '{name}': not a response, form or custom action"
        )

    async def _run_action(
        self,
        tracker: DialogueStateTracker,
        prediction: PolicyPrediction,
        context: ActionContext,
        now: float,
        result: TurnResult,
    ) -> bool:
        """Run one action; True ends the turn early (the action failed)."""
        name = prediction.action
        try:
            events = await self.action(name).run(tracker, context)
        except ActionRejected as exc:
            logger.info("%s: %s", tracker.sender_id, exc)
            tracker.update(ev.action_execution_rejected(name, now))
            result.rejected.append(name)
            return False
        except Exception as exc:
            result.actions.append((name, prediction.policy, prediction.confidence))
            logger.error("%s: action %s failed: %s", tracker.sender_id, name, mask_text(str(exc)))
            tracker.update(ev.action(name, prediction.policy, prediction.confidence, now))
            failure = self._engine_message(
                ACTION_FAILED, tracker, context.channel, now, {"action_failed": name}
            )
            tracker.update(failure)
            result.messages.append(bot_message(failure, tracker.sender_id))
            tracker.update(ev.action(LISTEN, "action_failed", 1.0, now))
            result.outcome = "failed"
            return True
        events = [_json_safe(e) for e in events]
        rejected = any(
            e.get("event") == "action_execution_rejected" and e.get("name") == name for e in events
        )
        if rejected:
            result.rejected.append(name)
        else:
            result.actions.append((name, prediction.policy, prediction.confidence))
            tracker.update(ev.action(name, prediction.policy, prediction.confidence, now))
        user_before = tracker.latest_message
        for event in self._stamp(events, now):
            tracker.update(event)
            if event.get("event") == "bot":
                result.messages.append(bot_message(event, tracker.sender_id))
        replayed = any(e.get("event") == "user" for e in events)
        if replayed and tracker.latest_message is not user_before:
            # An action replayed a user message (two-stage fallback): the rewind removed
            # this turn's identity and slots; set them again for the replayed message.
            if "customer_id" in self.domain.slots and (
                tracker.slots.get("customer_id") != result.customer_id
            ):
                tracker.update(ev.slot("customer_id", result.customer_id, timestamp=now))
            tracker.extend(self._stamp(extract_slots(tracker, self.domain), now))
        elif any(e.get("event") in ("rewind", "restart") for e in events):
            # The message was undone (action_default_fallback, action_back) or the
            # conversation restarted: predicting on would answer the previous message again
            # or from an empty state, so wait for the customer.
            tracker.update(ev.action(LISTEN, prediction.policy, 1.0, now))
            result.actions.append((LISTEN, prediction.policy, 1.0))
            return True
        return False
