"""One turn, one lock: the after-turn stages (the handoff) run inside the processor's turn on
the tracker in memory. Every turn the runner serves (plain, handing off, paused, too long)
takes the conversation's lock once; a handoff turn reads the tracker store once; and
``TurnResult.outcome`` says what happened."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from bot.agent import Agent
from bot.core import events as ev
from bot.core.events import Event
from bot.core.lock_store import InMemoryLockStore
from bot.core.messages import UserMessage
from bot.core.processor import MessageProcessor
from bot.core.stages import Turn
from bot.core.tracker_store import InMemoryTrackerStore
from bot.handoff.config import parse
from bot.handoff.service import HandoffService
from bot.handoff.store import HandoffStore
from bot.server.metrics import BotMetrics
from bot.server.settings import ServerSettings
from bot.server.turns import TurnRunner

DOMAIN = """
version: "3.1"
intents: [greet, request_human, complain, ask_person, refuse, break_it]
actions: [action_person, action_refuse, action_break]
responses:
  utter_greet: [{text: 您好}]
"""
RULES = """
version: "3.1"
rules:
- rule: greet
  steps: [{intent: greet}, {action: utter_greet}]
- rule: a person, by a custom action (as action_handoff)
  steps: [{intent: ask_person}, {action: action_person}]
- rule: refused
  steps: [{intent: refuse}, {action: action_refuse}]
- rule: broken
  steps: [{intent: break_it}, {action: action_break}]
"""
CONFIG = parse(
    {"groups": ["账户"], "routing": {"default_group": "账户"}, "queue": {"auto_assign": False}}, {}
)


class Executor:
    """Custom actions: one pauses and speaks (as ``action_handoff``), one refuses to run,
    one fails."""

    def names(self) -> set[str]:
        return {"action_person", "action_refuse", "action_break"}

    async def run(
        self, name: str, tracker: dict[str, Any], domain: dict[str, Any]
    ) -> dict[str, Any]:
        if name == "action_person":
            return {
                "events": [{"event": "pause"}],
                "responses": [{"response": "utter_handoff_request"}],
            }
        if name == "action_refuse":
            return {
                "events": [{"event": "action_execution_rejected", "name": name}],
                "responses": [],
            }
        raise RuntimeError("core banking is down")


class CountingLocks(InMemoryLockStore):
    def __init__(self) -> None:
        super().__init__()
        self.taken = 0

    @contextlib.asynccontextmanager
    async def lock(self, conversation_id: str, wait_timeout: float = 60.0) -> AsyncIterator[None]:
        self.taken += 1
        async with super().lock(conversation_id, wait_timeout):
            yield


class CountingStore(InMemoryTrackerStore):
    def __init__(self) -> None:
        super().__init__()
        self.reads = 0
        self.appends = 0

    async def events(self, sender_id: str, after: int = 0) -> list[Event]:
        self.reads += 1
        return await super().events(sender_id, after)

    async def append(self, sender_id: str, events: list[Event]) -> None:
        self.appends += 1
        await super().append(sender_id, events)


class Served:
    def __init__(self, dialogue: Any) -> None:
        domain, policies = dialogue(DOMAIN, RULES, [("RulePolicy", {})])
        self.locks = CountingLocks()
        self.store = CountingStore()
        self.processor = MessageProcessor(
            domain, policies, tracker_store=self.store, lock_store=self.locks, executor=Executor()
        )
        self.handoff = HandoffService(CONFIG, HandoffStore.from_url("sqlite://"), self.processor)
        agent = Agent(model=None, processor=self.processor)  # type: ignore[arg-type]
        settings = ServerSettings(max_message_chars=20)
        self.runner = TurnRunner(agent, settings, BotMetrics(), self.handoff, redis_url="")
        self.outcomes: list[str] = []
        self.processor.add_stage(self.record)  # after the handoff's: the final outcome

    async def record(self, turn: Turn) -> None:
        self.outcomes.append(turn.result.outcome)

    async def say(self, sender: str, text: str) -> tuple[list[str], int]:
        """The reply texts and how many times the turn took the conversation lock."""
        before = self.locks.taken
        replies = await self.runner.run(UserMessage(text, sender))
        return [str(m.get("text")) for m in replies], self.locks.taken - before


@pytest.fixture
def served(dialogue: Any) -> Served:
    return Served(dialogue)


async def test_every_kind_of_turn_takes_the_lock_once(served: Served) -> None:
    texts, locks = await served.say("a", "/greet")
    assert (texts, locks) == (["您好"], 1)
    texts, locks = await served.say("a", "/request_human")  # the engine's trigger
    assert locks == 1
    assert texts[-2] == "正在为您转接人工客服，请稍候。" and "队列" in texts[-1]
    texts, locks = await served.say("a", "还在吗")  # paused: acknowledged (once)
    assert locks == 1 and "已收到" in texts[0]
    texts, locks = await served.say("a", "很长" * 20)  # over the length limit
    assert locks == 1 and "超过了20字的上限" in texts[0]
    texts, locks = await served.say("b", "/ask_person")  # a custom action pauses
    assert locks == 1
    assert texts[0] == "好的，正在为您转接人工客服，请稍候，人工客服会尽快接入。"
    assert "队列" in texts[1]
    assert served.outcomes == ["answered", "queued", "paused", "queued"]  # no stage: too long
    tracker = await served.processor.get_tracker("a")
    assert tracker.paused
    assert sum(e["event"] == "pause" for e in tracker.events) == 1


async def test_a_handoff_turn_reads_the_tracker_store_once(served: Served) -> None:
    texts, _ = await served.say("h", "/greet")
    served.processor._cache.clear()  # as after a restart: nothing in memory
    reads, appends = served.store.reads, served.store.appends
    texts, locks = await served.say("h", "/request_human")
    assert "队列" in texts[-1] and locks == 1
    assert (served.store.reads - reads, served.store.appends - appends) == (1, 1)
    # the notice and the pause are the turn's own events, stored with it
    stored = await served.store.events("h")
    turn = stored[next(i for i, e in enumerate(stored) if e.get("text") == "/request_human") :]
    assert [(e["event"], e.get("text")) for e in turn][-2:] == [
        ("bot", "正在为您转接人工客服，请稍候。"),
        ("pause", None),
    ]
    assert served.handoff.store.handoffs.latest("h") is not None
    reads = served.store.reads
    await served.say("h", "还在吗")  # a paused turn: the cached tracker, brought up to date
    assert served.store.reads - reads == 1


async def test_the_outcome_of_each_kind_of_turn(served: Served) -> None:
    processor = served.processor

    async def outcome(sender: str, text: str) -> str:
        return (await processor.handle(UserMessage(text, sender))).outcome

    assert await outcome("o1", "/greet") == "answered"
    assert await outcome("o1", "/request_human") == "queued"
    assert await outcome("o1", "还在吗") == "paused"
    assert await outcome("o2", "/refuse") == "rejected"
    assert await outcome("o3", "/break_it") == "queued"  # a failed action hands off
    processor.stages.remove(served.handoff.stage)
    assert await outcome("o5", "/break_it") == "failed"  # without the handoff stage
    too_long = await processor.refuse_too_long(UserMessage("x" * 30, "o4"), 20)
    assert too_long.outcome == "too_long" and too_long.events[0]["text"] == "x" * 20
    assert (await processor.get_tracker("o4")).latest_action_name == "action_listen"


async def test_a_failing_stage_keeps_the_bots_answer(served: Served) -> None:
    async def broken(turn: Turn) -> None:
        raise RuntimeError("the handoff database is down")

    served.processor.stages.insert(0, broken)
    texts, locks = await served.say("f", "/greet")
    assert (texts, locks) == (["您好"], 1)
    assert [e.get("text") for e in await served.store.events("f") if e["event"] == "bot"] == [
        "您好"
    ]


async def test_nothing_gets_between_a_turn_and_its_handoff(served: Served) -> None:
    """An agent's step on the conversation (here: handing it back) while the customer's
    turn hands off waits for the whole turn, pause included: it cannot land between the
    bot's answer and the pause (which then paused a conversation the agent had resumed)."""
    inside, go_on = asyncio.Event(), asyncio.Event()

    async def slow(turn: Turn) -> None:  # after the handoff stage, still in the turn
        inside.set()
        await go_on.wait()

    served.processor.add_stage(slow)
    customer = asyncio.create_task(served.say("g", "/request_human"))
    await inside.wait()
    agent = asyncio.create_task(served.processor.append_events("g", [ev.resume()]))
    await asyncio.sleep(0.05)
    assert not agent.done()  # it waits for the customer's turn
    go_on.set()
    await asyncio.gather(customer, agent)
    kinds = [e["event"] for e in await served.store.events("g")]
    assert kinds[-2:] == ["pause", "resume"]
    assert not (await served.processor.get_tracker("g")).paused


def test_faq_turns_count_only_answered_entries_and_search_once_per_title() -> None:
    """The 猜你想问 counter: a made-up topic from a payload is not counted (the counter stays
    bounded), the FAQ action's answer (``metadata.kb_entry``) is, and the knowledge base is
    searched only for an entry's title, once."""
    from collections import Counter
    from types import SimpleNamespace

    from bot.handoff.stage import HandoffStage

    searched: list[str] = []

    def search(text: str) -> list[tuple[str, str, str, str, float]]:
        searched.append(text)
        return [("other", "O", "", "", 0.9), ("transfer_fee", "T", "", "", 0.7)]

    ctx = SimpleNamespace(asked=Counter(), titles={}, search=search)
    stage = HandoffStage(ctx, None)  # type: ignore[arg-type]

    def turn(text: str, entities: list[dict[str, Any]], events: list[Event]) -> Any:
        parse_data = {"intent": {"name": "faq"}, "entities": entities}
        return SimpleNamespace(
            result=SimpleNamespace(parse_data=parse_data),
            message=SimpleNamespace(text=text),
            events=[ev.user(text, parse_data), *events],
        )

    answered = ev.bot("answer", {}, {"kb_entry": "transfer_fee"})
    for n in range(50):  # made-up topics, no answer from the knowledge base
        payload = f'/faq{{"topic": "x{n}"}}'
        stage._count_topic(turn(payload, [{"entity": "topic", "value": f"x{n}"}], []), "faq")
        stage._count_topic(turn(f"question {n}", [], [ev.bot("not sure", {}, {})]), "faq")
    assert not ctx.asked and not searched
    for _ in range(3):
        stage._count_topic(turn("transfer fee?", [], [answered]), "faq")
    assert ctx.asked == {"faq:transfer_fee": 3}
    assert ctx.titles == {"faq:transfer_fee": "T"}
    assert searched == ["transfer fee?"]  # once, for the title
