"""The handoff as an after-turn stage (:class:`~bot.core.stages.TurnStage`): after the
actions of every customer turn, under the conversation's lock on the tracker in memory,
from the turn's triggers to a decision, then to the queue."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.core import events as ev
from bot.core.stages import Turn
from bot.handoff import responses, triggers
from bot.handoff.context import HandoffContext
from bot.handoff.customer import CustomerSide

# Counted for the page's 猜你想问 (most asked topics) besides FAQ entries.
ASKED_INTENTS = frozenset({"query_balance", "query_progress", "report_loss"})


class HandoffStage:
    def __init__(self, ctx: HandoffContext, customer: CustomerSide) -> None:
        self.ctx = ctx
        self.customer = customer

    async def __call__(self, turn: Turn) -> None:
        """The after-turn stage of every customer turn, under the conversation's lock on the
        tracker in memory: a rating is recorded; a message while a human has the conversation
        goes to the queue or the agent; a turn that asks for (or needs) a person is paused
        and queued (``outcome = "queued"``). Events go to ``turn``'s tracker, replies to its
        result; webhook, dispatch and pushes are spawned."""
        result = turn.result
        intent = triggers.intent_of(result.parse_data)
        self._count_topic(turn, intent)
        await self.customer.record_comment(turn)
        if intent == "rate_service":
            await self.customer.record_rating(turn, result.parse_data)
            return
        if result.outcome == "paused":
            await self.customer.while_paused(turn)
            return
        paused_now = any(e.get("event") == "pause" for e in turn.events)
        if (
            intent in self.ctx.config.triggers.intents
            and not paused_now
            and not triggers.explicit_ask(result.parse_data, turn.message.text)
        ):
            intent = None  # a vague message read as request_human: no trigger, no rule
        decision = await self._decide(turn, intent, paused_now)
        if decision is None:
            return
        if not paused_now:  # the engine's own trigger: tell the customer, stop the bot
            notice = self.customer.turn_words(turn, responses.STARTED)
            notice["metadata"]["handoff"] = decision.reason
            turn.add(notice, ev.pause(self.ctx.clock()))
        await self.customer.start(turn, decision, result.parse_data)

    def _count_topic(self, turn: Turn, intent: str | None) -> None:
        """Count what the customer asked (the page's 猜你想问): a self-service intent, or the
        knowledge-base entry the FAQ action answered with (``metadata.kb_entry`` of its bot
        event; only known entries, so the counter stays bounded). The entry's title is looked
        up once, the first time it is answered."""
        if intent in ASKED_INTENTS:
            self.ctx.asked[f"intent:{intent}"] += 1
            return
        entry = next(
            (
                str(e["metadata"]["kb_entry"])
                for e in turn.events
                if e.get("event") == "bot" and (e.get("metadata") or {}).get("kb_entry")
            ),
            None,
        )
        if entry is None:  # no answer from the knowledge base: nothing to count
            return
        key = f"faq:{entry}"
        self.ctx.asked[key] += 1
        text = turn.message.text
        if key in self.ctx.titles or self.ctx.search is None or text.startswith("/"):
            return  # (a button's payload is no question to search with)
        try:
            hits = self.ctx.search(text)
        except Exception:  # the knowledge base is unavailable: no title yet
            return
        title = next((hit[1] for hit in hits if hit[0] == entry), None)
        if title:
            self.ctx.titles[key] = title

    async def _decide(
        self, turn: Turn, intent: str | None, paused_now: bool
    ) -> triggers.Decision | None:
        t = self.ctx.config.triggers
        message, result = turn.message, turn.result
        actions = [name for name, _policy, _conf in result.actions]
        action_failed = any(
            (e.get("metadata") or {}).get("action_failed")
            for e in turn.events
            if e.get("event") == "bot"
        )
        negative = triggers.negative_score(result.parse_data)
        fallback_now = triggers.is_fallback_turn(intent, actions)
        rules = [
            r
            for r in self.ctx.config.rules
            if (not r.intents or intent in r.intents)
            and (not r.keywords or any(k in message.text for k in r.keywords))
        ]
        worth = (
            paused_now
            or intent in t.intents
            or action_failed
            or bool(rules)
            or fallback_now
            or (negative is not None and negative >= 0.5)
        )
        if not worth:  # the common turn: nothing to read
            return None
        window: list[float] = []
        streak = 1 if fallback_now else 0
        if fallback_now or (negative is not None and negative >= 0.5):
            events = turn.tracker.events
            streak = triggers.fallback_streak(_turns(events))
            window = [
                s
                for s in (
                    triggers.negative_score(e.get("parse_data"))
                    for e in events
                    if e.get("event") == "user"
                )
                if s is not None
            ][-t.sentiment_window :]
        profile = None
        if message.customer_id and any(r.min_age is not None or r.vip is not None for r in rules):
            profile = await self.ctx.profile(message.customer_id)
        return triggers.decide(
            self.ctx.config,
            intent=intent,
            text=message.text,
            actions=actions,
            action_failed=action_failed,
            paused_by_bot=paused_now,
            fallbacks_in_a_row=streak,
            negative_window=window,
            profile=profile,
        )


def _turns(events: Sequence[dict[str, Any]]) -> list[tuple[str | None, list[str]]]:
    """(intent, actions after it) per customer turn; a message replayed after a rewind (the
    two-stage fallback) belongs to the turn that rewound."""
    turns: list[tuple[str | None, list[str]]] = []
    rewound = False
    for event in events:
        kind = event.get("event")
        if kind == "user":
            if not (rewound and turns):
                turns.append((triggers.intent_of(event.get("parse_data")), []))
            rewound = False
        elif kind == "rewind":
            rewound = True
        elif kind == "action" and turns:
            turns[-1][1].append(str(event.get("name")))
    return turns
