"""Checkpoints and ``or`` steps expanded into flat stories (Rasa's story graph).

A story ending in ``checkpoint: X`` continues with every story starting with
``checkpoint: X``; a checkpoint in the middle of a story splits it into two such parts.
Stories that start with a checkpoint are only reached that way. Each ``or`` step gives one
story per alternative. Rules are not checkpoint-expanded, only their ``or`` steps.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, replace

from bot.core.stories import (
    ANY_VALUE,
    ActionStep,
    CheckpointStep,
    LoopStep,
    OrStep,
    SlotStep,
    Step,
    Story,
    UserStep,
)

MAX_STORIES = 10_000

FlatStep = UserStep | ActionStep | SlotStep | LoopStep

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Segment:
    """A run of steps between checkpoints."""

    story: Story
    start: tuple[str, ...]
    end: tuple[str, ...]
    variants: tuple[tuple[tuple[FlatStep, ...], str], ...]  # (steps, "or" label)


def describe(step: UserStep | SlotStep) -> str:
    """A short label for an ``or`` alternative."""
    if isinstance(step, UserStep):
        return step.intent or repr(step.text)
    return ", ".join(
        name if value is ANY_VALUE else f"{name}={value}" for name, value in step.slots
    )


def _variants(steps: tuple[Step, ...], limit: int) -> list[tuple[tuple[FlatStep, ...], str]]:
    """Every choice of ``or`` alternatives (at most ``limit``), without checkpoints/waits."""
    choices: list[list[tuple[FlatStep, str]]] = []
    for step in steps:
        if isinstance(step, OrStep):
            choices.append([(alt, describe(alt)) for alt in step.alternatives])
        elif isinstance(step, UserStep | ActionStep | SlotStep | LoopStep):
            choices.append([(step, "")])
    out: list[tuple[tuple[FlatStep, ...], str]] = []
    for combo in itertools.islice(itertools.product(*choices), limit):
        flat = tuple(s for s, _ in combo)
        labels = [label for _, label in combo if label]
        out.append((flat, f" (or: {', '.join(labels)})" if labels else ""))
    return out


def _segments(story: Story, limit: int) -> list[_Segment]:
    runs: list[tuple[tuple[str, ...], list[Step], tuple[str, ...]]] = []
    start: list[str] = []
    body: list[Step] = []
    pending: list[str] = []  # checkpoints after ``body``
    for step in story.steps:
        if isinstance(step, CheckpointStep):
            if body:
                pending.append(step.name)
            else:
                start.append(step.name)
            continue
        if pending:  # a checkpoint in the middle: close this part, the next starts there
            runs.append((tuple(start), body, tuple(pending)))
            start, body, pending = list(pending), [], []
        body.append(step)
    runs.append((tuple(start), body, tuple(pending)))
    return [_Segment(story, s, e, tuple(_variants(tuple(b), limit))) for s, b, e in runs]


def _name(parts: list[tuple[str, str]]) -> str:
    """``"a > b"`` from (story name, ``or`` label) parts; consecutive parts of one story
    (split by a checkpoint in its middle) show once."""
    merged: list[tuple[str, str]] = []
    for name, label in parts:
        if merged and merged[-1][0] == name:
            merged[-1] = (name, merged[-1][1] + label)
        else:
            merged.append((name, label))
    return " > ".join(name + label.replace(") (or: ", ", ") for name, label in merged)


def _expand_rule(rule: Story, limit: int) -> list[Story]:
    out = []
    for (cond, cond_label), (steps, label) in itertools.product(
        _variants(rule.condition, limit), _variants(rule.steps, limit)
    ):
        suffix = "".join(x for x in (cond_label, label) if x)
        out.append(replace(rule, name=rule.name + suffix, steps=steps, condition=cond))
        if len(out) >= limit:
            break
    return out


def flatten(stories: list[Story], max_stories: int = MAX_STORIES) -> list[Story]:
    """Flat stories and rules: only intent, action, slot and active-loop steps.

    Names show the path (``"a > b"``) and the ``or`` choice. Checkpoint cycles are cut
    where a part would repeat; at most ``max_stories`` stories are produced (a warning is
    logged when the cap is hit).
    """
    flat, truncated = expand(stories, max_stories)
    if truncated:
        log.warning("story expansion stopped at %d stories", max_stories)
    return flat


def expand(stories: list[Story], max_stories: int = MAX_STORIES) -> tuple[list[Story], bool]:
    """:func:`flatten`, also saying whether the cap cut the expansion short."""
    segments: list[_Segment] = []
    first_segment: dict[int, int] = {}  # index in ``stories`` → its first segment
    for i, story in enumerate(stories):
        if story.kind != "rule":
            first_segment[i] = len(segments)
            segments.extend(_segments(story, max_stories + 1))
    by_start: dict[str, list[int]] = {}
    for index, segment in enumerate(segments):
        for name in segment.start:
            by_start.setdefault(name, []).append(index)

    out: list[Story] = []
    for i, story in enumerate(stories):
        room = max_stories - len(out)
        if story.kind == "rule":
            out.extend(_expand_rule(story, room + 1))
        elif not segments[first_segment[i]].start:
            out.extend(_walk(segments, by_start, first_segment[i], room + 1))
        if len(out) > max_stories:
            return out[:max_stories], True
    return out, False


def _walk(
    segments: list[_Segment], by_start: dict[str, list[int]], first: int, limit: int
) -> list[Story]:
    """Paths from segment ``first`` through checkpoints (depth first, in file order), at
    most ``limit``."""
    out: list[Story] = []
    origin = segments[first].story
    # (segment, steps so far, names so far, segments on the path)
    stack: list[tuple[int, tuple[FlatStep, ...], list[tuple[str, str]], frozenset[int]]] = [
        (first, (), [], frozenset())
    ]
    while stack and len(out) < limit:
        index, prefix, names, seen = stack.pop()
        segment = segments[index]
        seen = seen | {index}
        nexts = list(
            dict.fromkeys(j for cp in segment.end for j in by_start.get(cp, []) if j not in seen)
        )
        pushed: list[tuple[int, tuple[FlatStep, ...], list[tuple[str, str]], frozenset[int]]] = []
        for steps, label in segment.variants:
            path = prefix + steps
            path_names = [*names, (segment.story.name, label)]
            if nexts:
                pushed.extend((j, path, path_names, seen) for j in nexts)
            else:
                out.append(replace(origin, name=_name(path_names), steps=path))
        stack.extend(reversed(pushed))
    return out[:limit]
