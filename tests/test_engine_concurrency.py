"""Many conversations at once through one processor: no event lost, reordered or mixed up
between conversations; the messages of one conversation run one at a time, in order, while
other conversations go on."""

from __future__ import annotations

import asyncio
import random
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from bot.core.messages import UserMessage
from bot.core.processor import MessageProcessor
from bot.core.tracker import LISTEN
from bot.core.tracker_store import InMemoryTrackerStore, SQLTrackerStore

DOMAIN = """
version: "3.1"
intents: [inform, greet]
actions: [action_echo]
responses:
  utter_greet: [{text: 您好}]
"""

RULES = """
version: "3.1"
rules:
- rule: echo
  steps:
  - intent: inform
  - action: action_echo
- rule: greet
  steps:
  - intent: greet
  - action: utter_greet
"""


class EchoExecutor:
    """``action_echo`` answers "<sender>#<turn>" after yielding to the event loop a few
    times, so turns of different conversations really interleave. Records overlaps."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = random.Random(seed)
        self.in_flight: dict[str, int] = defaultdict(int)
        self.overlap_in_one_conversation = False
        self.running = 0
        self.peak_running = 0

    def names(self) -> set[str]:
        return {"action_echo"}

    async def run(
        self, name: str, tracker: dict[str, Any], domain: dict[str, Any]
    ) -> dict[str, Any]:
        sender = tracker["sender_id"]
        self.in_flight[sender] += 1
        self.overlap_in_one_conversation |= self.in_flight[sender] > 1
        self.running += 1
        self.peak_running = max(self.peak_running, self.running)
        try:
            for _ in range(self.rng.randint(0, 3)):
                await asyncio.sleep(0)
            turn = tracker["latest_message"]["entities"][0]["value"]
            return {"events": [], "responses": [{"text": f"{sender}#{turn}"}]}
        finally:
            self.running -= 1
            self.in_flight[sender] -= 1


def check_conversation(sender: str, events: list[dict[str, Any]], turns: int) -> None:
    """Exactly ``turns`` user messages, in order, each answered before the next one."""
    users = [e for e in events if e["event"] == "user"]
    assert [e["message_id"] for e in users] == [f"{sender}-{t}" for t in range(turns)]
    assert [e["text"] for e in users] == [f'/inform{{"turn": {t}}}' for t in range(turns)]
    replies = [e["text"] for e in events if e["event"] == "bot"]
    assert replies == [f"{sender}#{t}" for t in range(turns)]
    # the order inside every turn: user, action_echo, its reply, listen
    kinds = [(e["event"], e.get("name")) for e in events]
    assert kinds[:3] == [
        ("action", "action_session_start"),
        ("session_started", None),
        ("action", LISTEN),
    ]
    body = kinds[3:]
    assert (
        body
        == [("user", None), ("action", "action_echo"), ("bot", None), ("action", LISTEN)] * turns
    )


async def run_load(
    processor: MessageProcessor, conversations: int, turns: int, at_a_time: int
) -> tuple[dict[str, list[list[dict[str, Any]]]], int]:
    gate = asyncio.Semaphore(at_a_time)
    active = 0
    peak = 0
    answers: dict[str, list[list[dict[str, Any]]]] = {}

    async def conversation(i: int) -> None:
        nonlocal active, peak
        sender = f"conv-{i:04d}"
        async with gate:
            active += 1
            peak = max(peak, active)
            try:
                answers[sender] = []
                for t in range(turns):
                    message = UserMessage(
                        f'/inform{{"turn": {t}}}', sender, message_id=f"{sender}-{t}"
                    )
                    answers[sender].append(await processor.handle_message(message))
            finally:
                active -= 1

    await asyncio.gather(*(conversation(i) for i in range(conversations)))
    return answers, peak


async def test_1000_conversations_of_10_turns_50_at_a_time(dialogue) -> None:  # type: ignore[no-untyped-def]
    store = InMemoryTrackerStore()
    executor = EchoExecutor()
    processor = MessageProcessor(
        *dialogue(DOMAIN, RULES, [("RulePolicy", {})]), tracker_store=store, executor=executor
    )
    answers, peak = await run_load(processor, 1000, 10, 50)
    assert peak == 50
    assert executor.peak_running > 1  # turns of different conversations did interleave
    assert not executor.overlap_in_one_conversation
    senders = await store.senders()
    assert senders == sorted(answers) and len(senders) == 1000
    total = 0
    for sender in senders:
        # each caller got its own answers
        assert answers[sender] == [
            [{"recipient_id": sender, "text": f"{sender}#{t}"}] for t in range(10)
        ]
        events = await store.events(sender)
        check_conversation(sender, events, 10)
        total += len(events)
    assert total == 1000 * (3 + 4 * 10)


async def test_concurrent_conversations_on_sqlite(dialogue, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = SQLTrackerStore(f"sqlite:///{tmp_path / 'bot.db'}")
    try:
        processor = MessageProcessor(
            *dialogue(DOMAIN, RULES, [("RulePolicy", {})]),
            tracker_store=store,
            executor=EchoExecutor(1),
        )
        answers, _ = await run_load(processor, 120, 5, 20)
        for sender in answers:
            check_conversation(sender, await store.events(sender), 5)
        # a fresh processor (no cache) reads the same conversations
        fresh = MessageProcessor(processor.domain, processor.policies, tracker_store=store)
        tracker = await fresh.get_tracker("conv-0007")
        check_conversation("conv-0007", tracker.events, 5)
    finally:
        await store.close()


class GatedExecutor:
    """``action_echo`` that waits for the test to open its gate; records enter/exit."""

    def __init__(self) -> None:
        self.log: list[str] = []
        self.gates: dict[str, asyncio.Event] = {}
        self.entered: dict[str, asyncio.Event] = defaultdict(asyncio.Event)

    def names(self) -> set[str]:
        return {"action_echo"}

    async def run(
        self, name: str, tracker: dict[str, Any], domain: dict[str, Any]
    ) -> dict[str, Any]:
        key = f"{tracker['sender_id']}#{tracker['latest_message']['entities'][0]['value']}"
        self.log.append(f"enter {key}")
        self.entered[key].set()
        gate = self.gates.get(key)
        if gate is not None:
            await gate.wait()
        self.log.append(f"exit {key}")
        return {"events": [], "responses": [{"text": key}]}


def inform(sender: str, turn: int) -> UserMessage:
    return UserMessage(f'/inform{{"turn": {turn}}}', sender, message_id=f"{sender}-{turn}")


async def test_two_messages_of_one_conversation_run_one_at_a_time(dialogue) -> None:  # type: ignore[no-untyped-def]
    executor = GatedExecutor()
    executor.gates["a#0"] = asyncio.Event()
    processor = MessageProcessor(*dialogue(DOMAIN, RULES, [("RulePolicy", {})]), executor=executor)
    first = asyncio.create_task(processor.handle(inform("a", 0)))
    await executor.entered["a#0"].wait()
    second = asyncio.create_task(processor.handle(inform("a", 1)))
    for _ in range(20):  # give the second message every chance to overtake
        await asyncio.sleep(0)
    assert not second.done()
    assert executor.log == ["enter a#0"]
    assert await processor.lock_store.queue_length("a") == 2
    assert (await processor.tracker_store.count("a")) == 0  # nothing half-written
    executor.gates["a#0"].set()
    one, two = await asyncio.gather(first, second)
    assert executor.log == ["enter a#0", "exit a#0", "enter a#1", "exit a#1"]
    assert [m["text"] for m in one.messages + two.messages] == ["a#0", "a#1"]
    check_conversation("a", await processor.tracker_store.events("a"), 2)


async def test_other_conversations_do_not_wait(dialogue) -> None:  # type: ignore[no-untyped-def]
    executor = GatedExecutor()
    executor.gates["slow#0"] = asyncio.Event()
    processor = MessageProcessor(*dialogue(DOMAIN, RULES, [("RulePolicy", {})]), executor=executor)
    slow = asyncio.create_task(processor.handle(inform("slow", 0)))
    await executor.entered["slow#0"].wait()
    quick = await processor.handle(inform("quick", 0))  # completes while "slow" is held
    assert [m["text"] for m in quick.messages] == ["quick#0"]
    assert not slow.done()
    executor.gates["slow#0"].set()
    assert [m["text"] for m in (await slow).messages] == ["slow#0"]


@pytest.mark.parametrize("burst", [10])
async def test_a_burst_of_messages_keeps_arrival_order(dialogue, burst: int) -> None:  # type: ignore[no-untyped-def]
    executor = EchoExecutor(seed=3)
    processor = MessageProcessor(*dialogue(DOMAIN, RULES, [("RulePolicy", {})]), executor=executor)
    results = await asyncio.gather(
        *(processor.handle(inform(s, t)) for t in range(burst) for s in ("x", "y", "z"))
    )
    assert not executor.overlap_in_one_conversation
    for sender in ("x", "y", "z"):
        check_conversation(sender, await processor.tracker_store.events(sender), burst)
    assert sum(len(r.events) for r in results) == 3 * (3 + 4 * burst)


async def test_a_failing_turn_does_not_corrupt_the_next(dialogue) -> None:  # type: ignore[no-untyped-def]
    class Store(InMemoryTrackerStore):
        fail_next = True

        async def append(self, sender_id: str, events: list[dict[str, Any]]) -> None:
            if self.fail_next:
                self.fail_next = False
                raise ConnectionError("database went away")
            await super().append(sender_id, events)

    store = Store()
    processor = MessageProcessor(
        *dialogue(DOMAIN, RULES, [("RulePolicy", {})]), tracker_store=store, executor=EchoExecutor()
    )
    with pytest.raises(ConnectionError):
        await processor.handle(inform("f", 0))
    assert await store.count("f") == 0
    # the lost turn left nothing behind, not even in the processor's memory
    await processor.handle(inform("f", 0))
    await processor.handle(inform("f", 1))
    check_conversation("f", await store.events("f"), 2)
    assert await processor.lock_store.queue_length("f") == 0
