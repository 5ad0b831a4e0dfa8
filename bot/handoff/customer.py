"""The customer's side of a handoff: queueing a conversation, the customer's messages while
it waits or talks with an agent (leaving a message instead, cancelling), the rating, and the
customer's page (history, queue status). Everything in a customer's turn works on the
:class:`~bot.core.stages.Turn` (the tracker in memory, the turn's replies)."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from dataclasses import replace
from typing import Any

from bot.core import events as ev
from bot.core.actions.interfaces import ActionContext
from bot.core.actions.responses import bot_message
from bot.core.events import Event
from bot.core.stages import Turn
from bot.core.tracker import LISTEN
from bot.handoff import responses, routing, triggers
from bot.handoff.context import HandoffContext, minutes
from bot.handoff.dispatch import Router
from bot.handoff.packet import build_packet, mask_name, transcript
from bot.handoff.records import Handoff, new_id
from bot.privacy import mask_text, mask_value

logger = logging.getLogger(__name__)

LEAVE_MESSAGE = "/leave_message"
CANCEL_WORDS = frozenset({"取消", "不留言了", "算了"})
LEAVE_WORDS = frozenset({LEAVE_MESSAGE, "留言", "我要留言"})  # typed where there are no buttons
# What the bot still answers while the customer waits for a person (queued, or reserved for an
# agent who has not accepted): read-only self-service, intent -> action.
WHILE_WAITING = {
    "faq": "action_answer_faq",
    "query_balance": "action_query_balance",
    "query_progress": "action_query_progress",
}
MAX_COMMENT = 500  # characters of a rating comment kept
SOLVED = {"solved": True, "unsolved": False}  # the 是否解决 buttons' rating values
# What the bot says when it has no answer: not said while the customer waits for a person.
NOT_AN_ANSWER = frozenset({"utter_faq_not_sure", "utter_kb_unavailable"})
# Flows that change data stay off while a human has the conversation (utter_handoff_flow_off).
DATA_CHANGING = frozenset({"report_loss"})


class CustomerSide:
    def __init__(self, ctx: HandoffContext, router: Router) -> None:
        self.ctx = ctx
        self.db = ctx.store  # the handoff tables
        self.router = router

    async def start(
        self, turn: Turn, decision: triggers.Decision, parse_data: dict[str, Any] | None = None
    ) -> None:
        """Queue the (already paused) conversation of ``turn`` and tell the customer."""
        now = self.ctx.clock()
        conversation_id = turn.sender_id
        channel, customer_id = turn.message.input_channel, turn.message.customer_id
        profile = await self.ctx.profile(customer_id)
        tracker = turn.tracker
        parse_data = parse_data or {}
        intent = triggers.intent_of(parse_data)
        category = None
        if self.ctx.categories is not None and intent == "faq":
            category = self.ctx.categories(str(tracker.latest_message.get("text") or ""))
        route = routing.route(
            self.ctx.config,
            intent,
            parse_data.get("entities") or [],
            category,
            profile,
            complaint=decision.reason == "complaint",
            group=decision.group,
            extra_priority=decision.priority,
        )
        last_text = (
            next((e.get("text") for e in reversed(tracker.events) if e.get("event") == "user"), "")
            or ""
        )
        status = "waiting" if self.ctx.config.is_open(route.group, now) else "leaving"
        handoff = Handoff(
            new_id(),
            conversation_id,
            channel,
            customer_id,
            mask_name(profile.name) if profile else None,
            route.group,
            route.priority,
            decision.reason,
            decision.detail,
            status,
            now,
            preview=mask_text(last_text)[:200],
        )
        key = self.db.privacy.sender_key  # the packet names the conversation as stored
        stored = replace(
            handoff,
            conversation_id=key(conversation_id),
            customer_id=None if customer_id is None else key(customer_id),
        )
        packet = build_packet(stored, tracker.events, dict(tracker.slots), profile, self.ctx.search)
        handoff, created = await self.ctx.run(self.db.handoffs.enqueue, handoff, packet)
        turn.result.outcome = "queued"
        if created:
            if self.ctx.on_queued is not None:
                self.ctx.on_queued(handoff)
            await self.ctx.run(
                self.db.audit.record,
                "bot",
                "enqueue",
                conversation_id,
                handoff.id,
                {"reason": decision.reason, "group": handoff.group, "priority": handoff.priority},
            )
            await self.ctx.bus.publish("queue", "queue", {"group": handoff.group})
            if self.ctx.config.webhook_url:
                self.ctx.spawn(self._webhook(mask_value(packet)))
        if handoff.status == "leaving":
            group = self.ctx.config.group(handoff.group)
            hours = _hours_text(group.hours) if group else ""
            self.say(turn, responses.OUT_OF_HOURS, group=handoff.group, hours=hours)
            return
        position, eta = await self.ctx.queue_place(handoff)
        await self.ctx.run(self.db.handoffs.tell_position, handoff.id, position, True)
        await self.ctx.bus.publish(
            f"conversation:{conversation_id}",
            "queue",
            {"status": "waiting", "position": position, "eta_seconds": eta},
        )
        turn.reply(bot_message(self.queue_event(turn, handoff, position, eta), conversation_id))
        if self.ctx.config.auto_assign:
            self.ctx.spawn(self.router.dispatch())

    async def while_paused(self, turn: Turn) -> None:
        """The customer wrote while the conversation waits for or talks with a human."""
        conversation = turn.sender_id
        message = turn.message
        handoff = await self.ctx.open_handoff(conversation)
        if handoff is None:  # paused by an operator, or queued by an older server: queue it
            await self.start(turn, triggers.Decision("paused", triggers.detail("paused")))
            return
        now = self.ctx.clock()
        text = message.text.strip()
        if handoff.status == "leaving":
            if text in CANCEL_WORDS:
                await self.ctx.run(self.db.handoffs.close, handoff.id, None, "cancelled", now)
                turn.add(ev.resume(self.ctx.clock()))
                self.say(turn, responses.MESSAGE_CANCELLED)
                return
            if text in LEAVE_WORDS or text.startswith("/"):  # a button pressed again
                self.say(turn, responses.LEAVE_MESSAGE)
                return
            ticket = await self.ctx.run(self.db.tickets.to_ticket, handoff.id, mask_text(text), now)
            await self.ctx.run(
                self.db.audit.record,
                "customer",
                "ticket",
                conversation,
                handoff.id,
                {"ticket": ticket.id if ticket else None},
            )
            turn.add(ev.resume(self.ctx.clock()))
            await self.ctx.bus.publish("queue", "queue", {"group": handoff.group})
            number = f"#{ticket.id}" if ticket else ""
            self.say(turn, responses.TICKET, ticket=number)
            return
        intent = triggers.intent_of(turn.result.parse_data)
        if handoff.status == "active":  # the agent answers; data-changing flows stay off
            await self._to_agent(handoff, conversation, message.text, now)
            if intent in DATA_CHANGING:
                self.say(turn, responses.FLOW_OFF)
            return
        # waiting, or reserved for an agent who has not accepted yet: the bot keeps helping
        if handoff.status == "assigned":
            await self._to_agent(handoff, conversation, message.text, now)
        else:
            await self.ctx.bus.publish(
                f"group:{handoff.group}",
                "message",
                {
                    "conversation_id": handoff.conversation_id,  # the stored key
                    "message": {"from": "customer", "text": mask_text(message.text), "at": now},
                },
            )
        if handoff.status == "waiting" and text in LEAVE_WORDS:
            updated = await self.ctx.run(self.db.handoffs.leave_message, handoff.id)
            if updated is not None:
                await self.ctx.bus.publish("queue", "queue", {"group": handoff.group})
            self.say(turn, responses.LEAVE_MESSAGE)
            return
        answered = False
        if intent in DATA_CHANGING:
            self.say(turn, responses.FLOW_OFF)
            answered = True
        elif intent in WHILE_WAITING and not text.startswith(LEAVE_MESSAGE):
            answered = await self._bot_answers(turn, handoff, WHILE_WAITING[intent])
        if handoff.status == "assigned":
            if not answered and not self._acknowledged(turn, handoff):
                self.say(turn, responses.RECEIVED, received=True)
            return
        await self._queue_update(turn, handoff, answered, now)

    async def _queue_update(self, turn: Turn, handoff: Handoff, answered: bool, now: float) -> None:
        """A waiting customer's place: told when it changed (or they asked for a person
        again), else the message is acknowledged once; the 留言 offer once after
        ``queue.max_wait_seconds``."""
        conversation = turn.sender_id
        position, eta = await self.ctx.queue_place(handoff)
        asked_again = triggers.intent_of(turn.result.parse_data) in self.ctx.config.triggers.intents
        moved = await self.ctx.run(
            self.db.handoffs.tell_position, handoff.id, position, asked_again
        )
        waited = now - handoff.enqueued_at
        can_leave = waited >= self.ctx.config.max_wait_seconds
        offer_now = can_leave and await self.ctx.run(self.db.handoffs.tell_leave, handoff.id)
        await self.ctx.bus.publish(
            f"conversation:{conversation}",
            "queue",
            {
                "status": "waiting",
                "position": position,
                "eta_seconds": eta,
                "can_leave_message": can_leave,
            },
        )
        if moved or offer_now:
            reply = self.queue_event(turn, handoff, position, eta)
            if offer_now:  # one message: the place, then the offer and its button
                offer = self.turn_words(turn, responses.CAN_LEAVE_MESSAGE)
                reply["text"] = f"{reply.get('text') or ''}{offer.get('text') or ''}"
                reply["data"] = {**(reply.get("data") or {}), **(offer.get("data") or {})}
            turn.reply(bot_message(reply, conversation))
        elif not answered and not self._acknowledged(turn, handoff):
            self.say(turn, responses.RECEIVED, received=True)

    async def _to_agent(self, handoff: Handoff, conversation: str, text: str, now: float) -> None:
        if handoff.agent:
            await self.ctx.bus.publish(
                f"agent:{handoff.agent}",
                "message",
                {
                    "conversation_id": handoff.conversation_id,  # the stored key
                    "message": {"from": "customer", "text": mask_text(text), "at": now},
                },
            )

    def _acknowledged(self, turn: Turn, handoff: Handoff) -> bool:
        """Whether the customer was told 已收到 since this handoff was queued."""
        return any(
            e.get("event") == "bot"
            and (e.get("metadata") or {}).get("handoff") == "received"
            and float(e.get("timestamp") or 0) >= handoff.enqueued_at
            for e in turn.tracker.events
        )

    async def _bot_answers(self, turn: Turn, handoff: Handoff, name: str) -> bool:
        """Run the read-only action ``name`` for a customer who waits (an FAQ, a balance);
        its messages are marked as the bot's (``metadata.while_waiting``), the first of the
        wait introduced by ``utter_handoff_bot_answers``. False when it could not run."""
        processor = self.ctx.processor
        if processor is None or not processor.knows_action(name):
            return False
        tracker = turn.tracker
        context = ActionContext(
            processor.domain,
            turn.message.input_channel,
            processor.executor,
            processor.rng,
            processor.clock,
        )
        try:
            events = await processor.action(name).run(tracker, context)
        except Exception as exc:  # the customer still waits for a person: acknowledge
            logger.warning("%s: %s while waiting failed: %s", turn.sender_id, name, exc)
            return False
        messages = [e for e in events if e.get("event") == "bot"]
        if not messages or any(
            (e.get("metadata") or {}).get("utter_action") in NOT_AN_ANSWER for e in messages
        ):
            return False  # "not sure" is no help while waiting: acknowledged instead
        first = not any(
            (e.get("metadata") or {}).get("while_waiting")
            and float(e.get("timestamp") or 0) >= handoff.enqueued_at
            for e in tracker.events
            if e.get("event") == "bot"
        )
        now = self.ctx.clock()
        if first:
            intro = self.turn_words(turn, responses.BOT_ANSWERS)
            intro["metadata"] = {"while_waiting": True}
            turn.add(intro)
        turn.add(ev.action(name, "while_waiting", 1.0, now))
        for event in events:
            if event.get("event") in ("pause", "resume", "restart", "rewind", "user"):
                continue  # a read-only answer never changes who has the conversation
            event = json.loads(json.dumps(event, default=str))
            event["timestamp"] = now
            if event.get("event") == "bot":
                event["metadata"] = {**(event.get("metadata") or {}), "while_waiting": True}
            turn.add(event)
        turn.add(ev.action(LISTEN, "while_waiting", 1.0, now))
        return True

    async def record_rating(self, turn: Turn, parse_data: dict[str, Any]) -> None:
        """The rating buttons after an agent closed (1-5, then asked 是否解决), the 是否解决
        buttons (``rating`` solved / unsolved; then an optional comment is asked for); both
        in the audit log."""
        conversation_id = turn.sender_id
        entities = {str(e.get("entity")): e.get("value") for e in parse_data.get("entities") or []}
        if entities.get("rating") in SOLVED:
            latest = await self.ctx.store_latest(conversation_id)
            if latest is None or latest.status != "closed":
                return
            await self.ctx.run(
                self.db.audit.record,
                "customer",
                "rate_solved",
                conversation_id,
                latest.id,
                {"solved": SOLVED[str(entities["rating"])]},
            )
            ask = self.turn_words(turn, responses.ASK_COMMENT)
            ask["metadata"] = {"handoff": "ask_comment", "handoff_id": latest.id}
            turn.add(ask)
            return
        try:
            rating = int(str(entities.get("rating")))
        except (TypeError, ValueError):
            return
        if 1 <= rating <= 5:
            rated = await self.ctx.run(self.db.handoffs.rate, conversation_id, rating)
            if rated is not None:
                await self.ctx.run(
                    self.db.audit.record,
                    "customer",
                    "rate",
                    conversation_id,
                    rated.id,
                    {"rating": rating},
                )
                self.say(turn, responses.ASK_SOLVED)

    async def record_comment(self, turn: Turn) -> None:
        """The customer's message right after ``utter_handoff_ask_comment`` is their comment
        on the service (masked, in the audit log); a button press is not."""
        text = turn.message.text.strip()
        if not text or text.startswith("/"):
            return
        events = turn.tracker.events[: turn.start]
        last_bot = next((e for e in reversed(events) if e.get("event") == "bot"), None)
        meta = (last_bot or {}).get("metadata") or {}
        if meta.get("handoff") != "ask_comment":
            return
        await self.ctx.run(
            self.db.audit.record,
            "customer",
            "rate_comment",
            turn.sender_id,
            meta.get("handoff_id"),
            {"comment": mask_text(text)[:MAX_COMMENT]},
        )

    async def _webhook(self, packet: dict[str, Any]) -> None:
        import httpx

        assert self.ctx.config.webhook_url
        body = json.dumps(packet, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json"}
        if self.ctx.config.webhook_secret:
            digest = hmac.new(self.ctx.config.webhook_secret.encode(), body, hashlib.sha256)
            headers["X-Bankbot-Signature"] = "sha256=" + digest.hexdigest()
        try:
            async with httpx.AsyncClient(timeout=5) as client:
                response = await client.post(
                    self.ctx.config.webhook_url, content=body, headers=headers
                )
            if response.status_code >= 300:
                logger.error("handoff webhook answered %s", response.status_code)
        except httpx.HTTPError as exc:
            logger.error("handoff webhook failed: %s", exc)

    def turn_words(self, turn: Turn, name: str, **values: Any) -> Event:
        """A handoff response for the customer of ``turn`` (their channel and slots)."""
        return self.ctx.words(
            name, channel=turn.message.input_channel, slots=dict(turn.tracker.slots), **values
        )

    def say(
        self, turn: Turn, name: str, *, store: bool = True, received: bool = False, **values: Any
    ) -> None:
        """A handoff response as a reply of this turn; kept in the conversation unless
        ``store`` is False; ``received``: it is the once-only 已收到 (``metadata.handoff``)."""
        event = self.turn_words(turn, name, **values)
        if received:
            event["metadata"] = {**(event.get("metadata") or {}), "handoff": "received"}
        if store:
            turn.add(event)
        else:
            turn.reply(bot_message(event, turn.sender_id))

    def queue_event(self, turn: Turn, handoff: Handoff, position: int, eta: int) -> Event:
        name = responses.QUEUED if position > 1 else responses.QUEUED_NEXT
        return self.turn_words(
            turn, name, **responses.queue_values(handoff.group, position, minutes(eta))
        )

    async def history(self, conversation_id: str) -> list[dict[str, Any]]:
        tracker = await self.ctx.processor.get_tracker(conversation_id)
        out: list[dict[str, Any]] = []
        titles: dict[str, str] = {}  # payload -> title of the latest bot buttons
        for item in transcript(tracker.events):
            if item["from"] == "customer" and item["text"].startswith("/"):
                title = titles.get(item["text"])
                if title is None:
                    continue  # a payload typed or sent without a button we know
                item = {**item, "text": title, "button": True}  # shown as pressed
            entry = {"from": item["from"], "text": item["text"], "at": item["at"]}
            for key in ("buttons", "agent", "button"):
                if item.get(key):
                    entry[key] = item[key]
            if item.get("buttons"):
                titles = {
                    str(b.get("payload")): str(b.get("title") or b.get("payload"))
                    for b in item["buttons"]
                }
            out.append(entry)
        return out

    async def status(self, conversation_id: str) -> dict[str, Any] | None:
        handoff = await self.ctx.open_handoff(conversation_id)
        if handoff is None:
            return None
        if handoff.status == "assigned":  # reserved for an agent who has not accepted yet
            return {"status": "waiting", "position": 1, "eta_seconds": 0}
        if handoff.status != "waiting":
            return {"status": handoff.status, "position": 0, "eta_seconds": 0}
        position, eta = await self.ctx.queue_place(handoff)
        return {"status": "waiting", "position": position, "eta_seconds": eta}


def _hours_text(hours: Any) -> str:
    start = f"{hours.start.hour:02d}:{hours.start.minute:02d}"
    end = f"{hours.end_minutes // 60:02d}:{hours.end_minutes % 60:02d}"
    days = sorted(hours.days)
    names = "一二三四五六日"
    if days == list(range(1, 8)):
        when = "每天"
    elif days == list(range(days[0], days[-1] + 1)):
        when = f"周{names[days[0] - 1]}至周{names[days[-1] - 1]}"
    else:
        when = "、".join(f"周{names[d - 1]}" for d in days)
    return f"{when} {start}-{end}"
