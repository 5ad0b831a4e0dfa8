"""Flat stories → the events a real conversation would have logged (for training)."""

from __future__ import annotations

from bot.core import events as ev
from bot.core.events import Event
from bot.core.stories import ANY_VALUE, ActionStep, LoopStep, SlotStep, Story, UserStep
from bot.core.tracker import LISTEN


def story_events(story: Story, include_condition: bool = True) -> list[Event]:
    """Events of ``story``: ``action_listen`` before every user message and at the end.

    ``slot_was_set`` values of ``ANY_VALUE`` become the placeholder value ``"__set__"``.
    """
    out: list[Event] = [ev.session_started(timestamp=0.0)]
    steps = [*story.condition, *story.steps] if include_condition else list(story.steps)
    last_was_action = False
    for step in steps:
        if isinstance(step, UserStep):
            out.append(ev.action(LISTEN, timestamp=0.0))
            parse = {
                "intent": {"name": step.intent, "confidence": 1.0},
                "entities": [dict(e) for e in step.entities],
                "text": step.text,
            }
            out.append(ev.user(step.text, parse, timestamp=0.0))
            last_was_action = False
        elif isinstance(step, ActionStep):
            out.append(ev.action(step.action, timestamp=0.0))
            last_was_action = True
        elif isinstance(step, SlotStep):
            for name, value in step.slots:
                out.append(ev.slot(name, "__set__" if value is ANY_VALUE else value, timestamp=0.0))
        elif isinstance(step, LoopStep):
            out.append(ev.active_loop(step.loop, timestamp=0.0))
    if last_was_action and story.wait_for_user_input:
        out.append(ev.action(LISTEN, timestamp=0.0))
    return out
