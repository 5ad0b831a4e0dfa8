"""The handoff state machine: from a bot turn to the queue, to an agent, and back to the bot.

:class:`HandoffService` ties the pure parts (:mod:`~bot.handoff.triggers`,
:mod:`~bot.handoff.routing`, :mod:`~bot.handoff.packet`) to the store, the tracker and the live
bus. :meth:`stage` is an after-turn stage of every customer turn (the server's turn runner
registers it on the processor: it runs under the conversation's lock, on the tracker in
memory); the agent API calls the agent operations. Every agent action is written to the
audit log.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import jwt

from bot.core import events as ev
from bot.core.actions.responses import bot_message
from bot.core.events import Event
from bot.core.processor import MessageProcessor
from bot.core.stages import Turn
from bot.domain import Domain
from bot.errors import BotError
from bot.handoff import responses, routing, triggers
from bot.handoff.bus import LocalBus
from bot.handoff.config import HandoffConfig
from bot.handoff.packet import Search, build_packet, mask_name, transcript
from bot.handoff.routing import Profile
from bot.handoff.store import BUSY, AgentAccount, Handoff, HandoffStore, new_id
from bot.privacy import mask_text

logger = logging.getLogger(__name__)

DISPATCH_BATCH = 50  # assignments per blocking call of the router

Sender = Callable[[str, str], Awaitable[None]]  # (conversation id, text) on a push channel
LEAVE_MESSAGE = "/leave_message"
CANCEL_WORDS = frozenset({"取消", "不留言了", "算了"})
LEAVE_WORDS = frozenset({LEAVE_MESSAGE, "留言", "我要留言"})  # typed where there are no buttons
TELL_STEP = 3  # a push channel hears its new position when it moved up at least this much
MAX_NOTE_CHARS = 2000


class HandoffError(BotError):
    """A refused agent request; ``status`` is the HTTP code to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _minutes(seconds: float) -> int:
    return max(1, round(seconds / 60))


class HandoffService:
    def __init__(self, config: HandoffConfig, store: HandoffStore, processor: MessageProcessor,
                 *, bus: LocalBus | None = None,
                 profiles: Callable[[str], Profile | None] | None = None,
                 search: Search | None = None, categories: Callable[[str], str | None] | None
                 = None, clock: Callable[[], float] = time.time,
                 production: bool = False) -> None:
        self.config = config
        self.store = store
        self.processor = processor
        self.bus = bus or LocalBus()
        self.profiles = profiles
        self.search = search
        self.categories = categories
        self.clock = clock
        self.production = production
        self.senders: dict[str, Sender] = {}
        self.on_queued: Callable[[Handoff], None] | None = None  # metrics
        self._background: set[asyncio.Task[Any]] = set()
        self._dispatch_lock = asyncio.Lock()

    # -- helpers -----------------------------------------------------------------------------

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self.store.inline and fn is not self.store.authenticate:  # scrypt takes ~50 ms
            return fn(*args)
        return await asyncio.to_thread(fn, *args)

    async def _profile(self, customer_id: str | None) -> Profile | None:
        if not customer_id or self.profiles is None:
            return None
        try:
            profile: Profile | None = await asyncio.to_thread(self.profiles, customer_id)
        except Exception as exc:  # the core system is down: route without the profile
            logger.warning("customer profile of %s unavailable: %s", customer_id, exc)
            return None
        return profile

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def drain(self) -> None:
        while self._background:
            await asyncio.gather(*list(self._background), return_exceptions=True)

    @property
    def domain(self) -> Domain | None:
        """The project's domain (its responses override the built-in handoff words)."""
        return self.processor.domain if self.processor is not None else None

    def words(self, name: str, *, channel: str | None = None,
              slots: dict[str, Any] | None = None, **values: Any) -> Event:
        """The bot event of the handoff response ``name`` (:mod:`bot.handoff.responses`)."""
        event = responses.response(name, self.domain, channel=channel, slots=slots,
                                   values=values)
        event["metadata"] = {}  # the callers say what it is about ("handoff": ...)
        event["timestamp"] = self.clock()
        return event

    async def to_customer(self, conversation_id: str, event: Event) -> dict[str, Any]:
        """A message from outside the customer's turn (an agent's, or the handoff's words
        about an agent's step): kept in the tracker, pushed to their live page and through
        their channel when it can push (WeChat's customer-service API)."""
        event["timestamp"] = self.clock()
        await self.processor.append_events(conversation_id, [event])
        message = bot_message(event, conversation_id)
        metadata = event.get("metadata") or {}
        if metadata.get("agent"):
            message["custom"] = {"from": "agent", "agent": metadata["agent"]}
        await self.bus.publish(f"conversation:{conversation_id}", "message", message)
        latest = await self.store_latest(conversation_id)
        channel = latest.channel if latest else None
        sender = self.senders.get(channel or "")
        if sender is not None and event.get("text"):
            self._spawn(self._push(sender, conversation_id, str(event["text"])))
        return message

    async def _push(self, sender: Sender, conversation_id: str, text: str) -> None:
        try:
            await sender(conversation_id, text)
        except Exception as exc:
            logger.error("pushing to %s failed: %s", conversation_id, exc)

    async def store_latest(self, conversation_id: str) -> Handoff | None:
        latest: Handoff | None = await self._run(self.store.latest, conversation_id)
        return latest

    async def open_handoff(self, conversation_id: str) -> Handoff | None:
        found: Handoff | None = await self._run(
            self.store.latest, conversation_id, ("waiting", "assigned", "active", "leaving"))
        return found

    async def _queue_place(self, handoff: Handoff) -> tuple[int, int]:
        """(position in its group, estimated wait in seconds) of a waiting handoff."""
        position: int = await self._run(self.store.position, handoff)
        agents: list[AgentAccount] = await self._run(self.store.agents)
        measured = await self._run(self.store.average_handle_seconds, handoff.group)
        eta = routing.eta_seconds(position, routing.slots(agents, handoff.group),
                                  measured or self.config.average_handle_seconds)
        return position, eta

    def _queue_event(self, turn: Turn, handoff: Handoff, position: int, eta: int) -> Event:
        name = responses.QUEUED if position > 1 else responses.QUEUED_NEXT
        return self._turn_words(turn, name, **responses.queue_values(
            handoff.group, position, _minutes(eta)))

    # -- the customer's turn -----------------------------------------------------------------

    async def stage(self, turn: Turn) -> None:
        """The after-turn stage of every customer turn, under the conversation's lock on the
        tracker in memory: a rating is recorded; a message while a human has the conversation
        goes to the queue or the agent; a turn that asks for (or needs) a person is paused
        and queued (``outcome = "queued"``). Events go to ``turn``'s tracker, replies to its
        result; webhook, dispatch and pushes are spawned."""
        result = turn.result
        intent = triggers.intent_of(result.parse_data)
        if intent == "rate_service":
            await self._record_rating(turn.sender_id, result.parse_data)
            return
        if result.outcome == "paused":
            await self._while_paused(turn)
            return
        paused_now = any(e.get("event") == "pause" for e in turn.events)
        decision = await self._decide(turn, intent, paused_now)
        if decision is None:
            return
        if not paused_now:  # the engine's own trigger: tell the customer, stop the bot
            notice = self._turn_words(turn, responses.STARTED)
            notice["metadata"]["handoff"] = decision.reason
            turn.add(notice, ev.pause(self.clock()))
        await self.start(turn, decision, result.parse_data)

    def _turn_words(self, turn: Turn, name: str, **values: Any) -> Event:
        """A handoff response for the customer of ``turn`` (their channel and slots)."""
        return self.words(name, channel=turn.message.input_channel,
                          slots=dict(turn.tracker.slots), **values)

    def _say(self, turn: Turn, name: str, *, store: bool = True, **values: Any) -> None:
        """A handoff response as a reply of this turn; kept in the conversation unless
        ``store`` is False."""
        event = self._turn_words(turn, name, **values)
        if store:
            turn.add(event)
        else:
            turn.reply(bot_message(event, turn.sender_id))

    async def _decide(self, turn: Turn, intent: str | None, paused_now: bool
                      ) -> triggers.Decision | None:
        t = self.config.triggers
        message, result = turn.message, turn.result
        actions = [name for name, _policy, _conf in result.actions]
        action_failed = any((e.get("metadata") or {}).get("action_failed")
                            for e in turn.events if e.get("event") == "bot")
        negative = triggers.negative_score(result.parse_data)
        fallback_now = triggers.is_fallback_turn(intent, actions)
        rules = [r for r in self.config.rules
                 if (not r.intents or intent in r.intents)
                 and (not r.keywords or any(k in message.text for k in r.keywords))]
        worth = (paused_now or intent in t.intents or action_failed or bool(rules)
                 or fallback_now or (negative is not None and negative >= 0.5))
        if not worth:  # the common turn: nothing to read
            return None
        window: list[float] = []
        streak = 1 if fallback_now else 0
        if fallback_now or (negative is not None and negative >= 0.5):
            events = turn.tracker.events
            streak = triggers.fallback_streak(_turns(events))
            window = [s for s in (triggers.negative_score(e.get("parse_data"))
                                  for e in events if e.get("event") == "user")
                      if s is not None][-t.sentiment_window:]
        profile = None
        if message.customer_id and any(r.min_age is not None or r.vip is not None
                                       for r in rules):
            profile = await self._profile(message.customer_id)
        return triggers.decide(self.config, intent=intent, text=message.text, actions=actions,
                               action_failed=action_failed, paused_by_bot=paused_now,
                               fallbacks_in_a_row=streak, negative_window=window,
                               profile=profile)

    async def start(self, turn: Turn, decision: triggers.Decision,
                    parse_data: dict[str, Any] | None = None) -> None:
        """Queue the (already paused) conversation of ``turn`` and tell the customer."""
        now = self.clock()
        conversation_id = turn.sender_id
        channel, customer_id = turn.message.input_channel, turn.message.customer_id
        profile = await self._profile(customer_id)
        tracker = turn.tracker
        parse_data = parse_data or {}
        intent = triggers.intent_of(parse_data)
        category = None
        if self.categories is not None and intent == "faq":
            category = self.categories(str(tracker.latest_message.get("text") or ""))
        route = routing.route(self.config, intent, parse_data.get("entities") or [],
                              category, profile, complaint=decision.reason == "complaint",
                              group=decision.group, extra_priority=decision.priority)
        last_text = next((e.get("text") for e in reversed(tracker.events)
                          if e.get("event") == "user"), "") or ""
        status = "waiting" if self.config.is_open(route.group, now) else "leaving"
        handoff = Handoff(new_id(), conversation_id, channel, customer_id,
                          mask_name(profile.name) if profile else None, route.group,
                          route.priority, decision.reason, decision.detail, status, now,
                          preview=mask_text(last_text)[:200])
        packet = build_packet(handoff, tracker.events, dict(tracker.slots), profile,
                              self.search)
        handoff, created = await self._run(self.store.enqueue, handoff, packet)
        turn.result.outcome = "queued"
        if created:
            if self.on_queued is not None:
                self.on_queued(handoff)
            await self._run(self.store.audit, "bot", "enqueue", conversation_id, handoff.id,
                            {"reason": decision.reason, "group": handoff.group,
                             "priority": handoff.priority})
            await self.bus.publish("queue", "queue", {"group": handoff.group})
            if self.config.webhook_url:
                self._spawn(self._webhook(packet))
        if handoff.status == "leaving":
            group = self.config.group(handoff.group)
            hours = _hours_text(group.hours) if group else ""
            self._say(turn, responses.OUT_OF_HOURS, group=handoff.group, hours=hours)
            return
        position, eta = await self._queue_place(handoff)
        await self._run(self.store.tell_position, handoff.id, position, True)
        await self.bus.publish(f"conversation:{conversation_id}", "queue",
                               {"status": "waiting", "position": position, "eta_seconds": eta})
        turn.reply(bot_message(self._queue_event(turn, handoff, position, eta),
                               conversation_id))
        if self.config.auto_assign:
            self._spawn(self.dispatch())

    async def _while_paused(self, turn: Turn) -> None:
        """The customer wrote while the conversation waits for or talks with a human."""
        conversation = turn.sender_id
        message = turn.message
        handoff = await self.open_handoff(conversation)
        if handoff is None:  # paused by an operator, or queued by an older server: queue it
            await self.start(turn, triggers.Decision("paused", "会话处于暂停状态"))
            return
        now = self.clock()
        text = message.text.strip()
        if handoff.status == "leaving":
            if text in CANCEL_WORDS:
                await self._run(self.store.close, handoff.id, None, "cancelled", now)
                turn.add(ev.resume(self.clock()))
                self._say(turn, responses.MESSAGE_CANCELLED)
                return
            if text in LEAVE_WORDS or text.startswith("/"):  # a button pressed again
                self._say(turn, responses.LEAVE_MESSAGE)
                return
            ticket = await self._run(self.store.to_ticket, handoff.id, mask_text(text), now)
            await self._run(self.store.audit, "customer", "ticket", conversation, handoff.id,
                            {"ticket": ticket.id if ticket else None})
            turn.add(ev.resume(self.clock()))
            await self.bus.publish("queue", "queue", {"group": handoff.group})
            number = f"#{ticket.id}" if ticket else ""
            self._say(turn, responses.TICKET, ticket=number)
            return
        if handoff.status in BUSY:
            if handoff.agent:
                await self.bus.publish(f"agent:{handoff.agent}", "message", {
                    "conversation_id": conversation,
                    "message": {"from": "customer", "text": mask_text(message.text),
                                "at": now}})
            return
        # waiting
        if text in LEAVE_WORDS:
            updated = await self._run(self.store.leave_message, handoff.id)
            if updated is not None:
                await self.bus.publish("queue", "queue", {"group": handoff.group})
            self._say(turn, responses.LEAVE_MESSAGE)
            return
        for_group = f"group:{handoff.group}"
        await self.bus.publish(for_group, "message", {
            "conversation_id": conversation,
            "message": {"from": "customer", "text": mask_text(message.text), "at": now}})
        position, eta = await self._queue_place(handoff)
        await self._run(self.store.tell_position, handoff.id, position, True)
        waited = now - handoff.enqueued_at
        can_leave = waited >= self.config.max_wait_seconds
        if can_leave:
            await self._run(self.store.tell_leave, handoff.id)
        await self.bus.publish(f"conversation:{conversation}", "queue",
                               {"status": "waiting", "position": position, "eta_seconds": eta,
                                "can_leave_message": can_leave})
        reply = self._queue_event(turn, handoff, position, eta)
        if can_leave:  # one message: the place, then the offer and its button
            offer = self._turn_words(turn, responses.CAN_LEAVE_MESSAGE)
            reply["text"] = f"{reply.get('text') or ''}{offer.get('text') or ''}"
            reply["data"] = {**(reply.get("data") or {}), **(offer.get("data") or {})}
        turn.reply(bot_message(reply, conversation))

    async def _resume(self, conversation_id: str) -> None:
        await self.processor.append_events(conversation_id, [ev.resume(self.clock())])

    async def _record_rating(self, conversation_id: str, parse_data: dict[str, Any]) -> None:
        value = next((e.get("value") for e in parse_data.get("entities") or []
                      if e.get("entity") == "rating"), None)
        try:
            rating = int(str(value))
        except (TypeError, ValueError):
            return
        if 1 <= rating <= 5:
            rated = await self._run(self.store.rate, conversation_id, rating)
            if rated is not None:
                await self._run(self.store.audit, "customer", "rate", conversation_id, rated.id,
                                {"rating": rating})

    async def _webhook(self, packet: dict[str, Any]) -> None:
        import httpx

        assert self.config.webhook_url
        body = json.dumps(packet, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json"}
        if self.config.webhook_secret:
            digest = hmac.new(self.config.webhook_secret.encode(), body, hashlib.sha256)
            headers["X-Bankbot-Signature"] = "sha256=" + digest.hexdigest()
        try:
            async with httpx.AsyncClient(timeout=5) as client:
                response = await client.post(self.config.webhook_url, content=body,
                                             headers=headers)
            if response.status_code >= 300:
                logger.error("handoff webhook answered %s", response.status_code)
        except httpx.HTTPError as exc:
            logger.error("handoff webhook failed: %s", exc)

    # -- routing -----------------------------------------------------------------------------

    async def dispatch(self) -> list[Handoff]:
        """Reserve waiting conversations for free agents (auto-assignment); what was assigned."""
        assigned: list[Handoff] = []
        if not self.config.auto_assign:
            return assigned
        async with self._dispatch_lock:
            while True:  # in batches, so other work on the loop or the store gets a turn
                found = await self._run(self._assign_some, DISPATCH_BATCH)
                assigned += found
                if len(found) < DISPATCH_BATCH:
                    break
        for handoff in assigned:
            await self.bus.publish(f"agent:{handoff.agent}", "assigned",
                                   {"handoff": await self.item(handoff)})
            await self._run(self.store.audit, "router", "assign", handoff.conversation_id,
                            handoff.id, {"agent": handoff.agent})
        if assigned:
            await self.bus.publish("queue", "queue", {})
            await self.notify_positions()
        return assigned

    def _assign_one(self) -> Handoff | None:
        """One assignment (blocking), agents and loads read afresh: what a newly queued
        customer or a newly free agent costs."""
        found = self._assign_some(1)
        return found[0] if found else None

    def _assign_some(self, limit: int, attempts: int = 5) -> list[Handoff]:
        """Up to ``limit`` assignments (blocking): each time the best waiting conversation of
        the groups that have a free agent, to that group's least-loaded free agent. Agents and
        loads are read once and then kept up to date here; the store still checks capacity on
        every assignment, so a stale count can only cost a refused attempt. When another
        process took the conversation or the agent filled up, the loads are read again."""
        store = self.store
        available, loads = store.available_with_loads()
        if not available:
            return []
        done: list[Handoff] = []
        misses = 0
        while len(done) < limit and misses < attempts:
            free = [a for a in available if loads.get(a.username, 0) < a.capacity]
            groups = sorted({g for a in free for g in a.groups})
            if not groups:
                break
            handoff = store.next_waiting(groups)
            if handoff is None:
                break
            agent = routing.pick_agent(free, loads, handoff.group)
            if agent is None:  # cannot happen: some free agent has this group
                break
            now = self.clock()
            taken = store.assign(handoff.id, agent.username, now)
            if taken is None:
                misses += 1
                loads = store.loads()
                continue
            loads[agent.username] = loads.get(agent.username, 0) + 1
            agent.last_assigned_at = now  # the next tie goes to someone else
            done.append(taken)
        return done

    async def notify_positions(self) -> None:
        """Tell every waiting customer their place in the queue: on the live page at every
        change; on a push channel (WeChat's customer-service API, with its quota) only when
        they become next, moved up at least :data:`TELL_STEP` places since they were last
        told, or have waited ``max_wait_seconds`` (then once, with the offer to leave a
        message). The store's conditional updates make one worker the one who pushes."""
        waiting: list[Handoff] = await self._run(self.store.waiting, None, 1000)
        agents: list[AgentAccount] = await self._run(self.store.agents)
        by_group: dict[str, int] = {}
        average: dict[str, float] = {}  # measured per group, as in the reply to a message
        now = self.clock()
        for handoff in waiting:
            by_group[handoff.group] = by_group.get(handoff.group, 0) + 1
            position = by_group[handoff.group]
            if handoff.group not in average:
                measured = await self._run(self.store.average_handle_seconds, handoff.group)
                average[handoff.group] = measured or self.config.average_handle_seconds
            eta = routing.eta_seconds(position, routing.slots(agents, handoff.group),
                                      average[handoff.group])
            can_leave = now - handoff.enqueued_at >= self.config.max_wait_seconds
            await self.bus.publish(
                f"conversation:{handoff.conversation_id}", "queue",
                {"status": "waiting", "position": position, "eta_seconds": eta,
                 "can_leave_message": can_leave})
            sender = self.senders.get(handoff.channel or "")
            if sender is not None:
                await self._tell_by_push(sender, handoff, position, eta, can_leave)

    async def _tell_by_push(self, sender: Sender, handoff: Handoff, position: int, eta: int,
                            can_leave: bool) -> None:
        told = handoff.told_position
        lines: list[str] = []
        moved = told is None or (position < told and (position == 1
                                                       or told - position >= TELL_STEP))
        if moved and await self._run(self.store.tell_position, handoff.id, position):
            name = responses.PUSH_NEXT if position == 1 else responses.PUSH_POSITION
            lines.append(self._push_text(name, handoff, **responses.queue_values(
                handoff.group, position, _minutes(eta))))
        if can_leave and await self._run(self.store.tell_leave, handoff.id):
            lines.append(self._push_text(responses.PUSH_CAN_LEAVE_MESSAGE, handoff))
        if lines:
            await self._push(sender, handoff.conversation_id, "\n".join(lines))

    def _push_text(self, name: str, handoff: Handoff, **values: Any) -> str:
        return str(self.words(name, channel=handoff.channel, **values).get("text") or "")

    # -- agents ------------------------------------------------------------------------------

    def issue_token(self, agent: AgentAccount) -> str:
        if self.production and self.config.uses_dev_secret:
            raise HandoffError(503, "BOT_ENV=production: set BOT_AGENT_SECRET to sign agent "
                                    "tokens (the development secret is refused)")
        now = int(self.clock())
        claims = {"sub": agent.username, "role": agent.role, "typ": "agent", "iat": now,
                  "exp": now + self.config.token_minutes * 60}
        return jwt.encode(claims, self.config.secret, algorithm="HS256")

    async def login(self, username: str, password: str) -> tuple[str, AgentAccount]:
        account: AgentAccount | None = await self._run(self.store.authenticate, username,
                                                       password)
        if account is None:
            await self._run(self.store.audit, username[:64] or "?", "login_failed", None)
            raise HandoffError(401, "wrong username or password")
        await self._run(self.store.set_status, account.username, "available")
        account.status = "available"
        await self._run(self.store.audit, account.username, "login", None)
        self._spawn(self.dispatch())
        return self.issue_token(account), account

    async def verify(self, token: str) -> AgentAccount:
        try:
            claims = jwt.decode(token, self.config.secret, algorithms=["HS256"],
                                options={"require": ["exp", "sub"]})
        except jwt.ExpiredSignatureError:
            raise HandoffError(401, "agent token has expired; log in again") from None
        except jwt.InvalidTokenError:
            raise HandoffError(401, "agent token is invalid; log in again") from None
        if claims.get("typ") != "agent":
            raise HandoffError(401, "not an agent token")
        account: AgentAccount | None = await self._run(self.store.agent, str(claims["sub"]))
        if account is None:
            raise HandoffError(401, "this agent account no longer exists")
        return account

    async def set_status(self, agent: AgentAccount, status: str) -> AgentAccount:
        if status not in ("available", "away"):
            raise HandoffError(400, "status must be 'available' or 'away'")
        await self._run(self.store.set_status, agent.username, status)
        await self._run(self.store.audit, agent.username, f"status_{status}", None)
        agent.status = status
        released = status == "away" and await self._release_reservations(agent)
        if released:
            await self.bus.publish("queue", "queue", {})
            await self.notify_positions()
        if status == "available" or released:  # released: for another agent
            self._spawn(self.dispatch())
        return agent

    async def expire_reservations(self) -> list[Handoff]:
        """Reservations not accepted within ``queue.reservation_seconds`` (the agent's console
        is gone, or they are not at their desk) go back to the queue, and the agent is set
        away so the router stops reserving for them; what went back. Run by the queue tick."""
        seconds = self.config.reservation_seconds
        if seconds <= 0:
            return []
        stale: list[Handoff] = await self._run(self.store.stale_reservations,
                                               self.clock() - seconds)
        released: list[Handoff] = []
        for handoff in stale:
            assert handoff.agent is not None
            back = await self._run(self.store.release, handoff.id, handoff.agent)
            if back is None:  # accepted or moved meanwhile (or another worker was first)
                continue
            released.append(back)
            await self._run(self.store.set_status, handoff.agent, "away")
            await self._run(self.store.audit, "router", "reservation_expired",
                            handoff.conversation_id, handoff.id, {"agent": handoff.agent})
            await self.bus.publish(f"agent:{handoff.agent}", "status", {"status": "away"})
        if released:
            await self.bus.publish("queue", "queue", {})
        return released

    async def _release_reservations(self, agent: AgentAccount) -> bool:
        """An agent going away (or logging out) gives back what the router reserved for them
        and they have not accepted, so those customers do not wait for nobody."""
        released = False
        for handoff in await self._run(self.store.open_for_agent, agent.username):
            if handoff.status != "assigned":
                continue
            if await self._run(self.store.release, handoff.id, agent.username) is not None:
                await self._run(self.store.audit, agent.username, "release",
                                handoff.conversation_id, handoff.id)
                released = True
        return released

    async def me(self, agent: AgentAccount) -> dict[str, Any]:
        loads = await self._run(self.store.loads)
        return {"username": agent.username, "role": agent.role, "groups": agent.groups,
                "capacity": agent.capacity, "load": loads.get(agent.username, 0),
                "status": agent.status}

    async def item(self, handoff: Handoff, position: int | None = None) -> dict[str, Any]:
        if position is None and handoff.status == "waiting":
            position = await self._run(self.store.position, handoff)
        return {"id": handoff.id, "conversation_id": handoff.conversation_id,
                "status": handoff.status, "group": handoff.group,
                "priority": handoff.priority, "reason": handoff.reason,
                "reason_label": triggers.REASONS.get(handoff.reason, handoff.reason),
                "channel": handoff.channel,
                "customer": {"id": handoff.customer_id, "name": handoff.customer_name},
                "enqueued_at": handoff.enqueued_at,
                "waited_s": round(self.clock() - handoff.enqueued_at, 1),
                "agent": handoff.agent, "position": position, "preview": handoff.preview}

    async def queue(self, agent: AgentAccount) -> dict[str, Any]:
        groups = None if agent.supervisor else agent.groups
        waiting = await self._run(self.store.waiting, groups, 500)
        mine = await self._run(self.store.open_for_agent, agent.username)
        by_group: dict[str, int] = {}
        items = []
        for handoff in waiting:  # positions from the one ordered list, not a query each
            by_group[handoff.group] = by_group.get(handoff.group, 0) + 1
            items.append(await self.item(handoff, by_group[handoff.group]))
        return {"waiting": items, "mine": [await self.item(h) for h in mine]}

    async def _visible(self, agent: AgentAccount, conversation_id: str,
                       statuses: Sequence[str] | None = None) -> Handoff:
        handoff = await self.store_latest(conversation_id)
        if handoff is None:
            raise HandoffError(404, f"conversation {conversation_id!r} has no handoff")
        if not agent.may_see(handoff):
            raise HandoffError(403, "this conversation is neither assigned to you nor waiting "
                                    "in one of your groups")
        if statuses is not None and handoff.status not in statuses:
            raise HandoffError(409, f"the conversation is {handoff.status}, not "
                                    f"{' or '.join(statuses)}")
        return handoff

    async def _mine(self, agent: AgentAccount, conversation_id: str) -> Handoff:
        handoff = await self._visible(agent, conversation_id, ("assigned", "active"))
        if handoff.agent != agent.username:
            raise HandoffError(409, f"the conversation is handled by {handoff.agent}")
        return handoff

    async def accept(self, agent: AgentAccount, conversation_id: str) -> dict[str, Any]:
        handoff = await self._visible(agent, conversation_id, ("waiting", "assigned", "active"))
        if handoff.status == "active":
            if handoff.agent == agent.username:
                return await self.item(handoff)
            raise HandoffError(409, f"the conversation is handled by {handoff.agent}")
        if handoff.status == "assigned" and handoff.agent != agent.username:
            raise HandoffError(409, f"the conversation is reserved for {handoff.agent}")
        loads = await self._run(self.store.loads)
        if handoff.status == "waiting" and loads.get(agent.username, 0) >= agent.capacity:
            raise HandoffError(409, f"you have {agent.capacity} conversations already "
                                    "(your capacity); close one first")
        accepted = await self._run(self.store.accept, handoff.id, agent.username, self.clock())
        if accepted is None:
            raise HandoffError(409, "another agent took this conversation first")
        await self._run(self.store.audit, agent.username, "accept", conversation_id, handoff.id)
        accepted_words = self.words(responses.ACCEPTED, channel=handoff.channel)
        accepted_words["metadata"].update({"agent": agent.username, "handoff": "accepted"})
        await self.to_customer(conversation_id, accepted_words)
        await self.bus.publish(f"conversation:{conversation_id}", "queue",
                               {"status": "active", "position": 0, "eta_seconds": 0})
        await self.bus.publish("queue", "queue", {})
        await self.notify_positions()
        return await self.item(accepted)

    async def context(self, agent: AgentAccount, conversation_id: str) -> dict[str, Any]:
        """The packet, refreshed with the transcript and suggestions as they are now."""
        handoff = await self._visible(agent, conversation_id)
        stored: dict[str, Any] = await self._run(self.store.packet, handoff.id) or {}
        tracker = await self.processor.get_tracker(conversation_id)
        profile = await self._profile(handoff.customer_id)
        packet = build_packet(handoff, tracker.events, dict(tracker.slots), profile,
                              self.search)
        packet["knowledge_tried"] = stored.get("knowledge_tried", packet["knowledge_tried"])
        packet["status"] = handoff.status
        packet["agent"] = handoff.agent
        packet["notes"] = [{"at": n["at"], "agent": n["actor"], "text": n["detail"].get("text")}
                           for n in await self._run(self.store.audit_log, conversation_id,
                                                    ["note"])]
        await self._run(self.store.audit, agent.username, "view_context", conversation_id,
                        handoff.id)
        return packet

    async def messages(self, agent: AgentAccount, conversation_id: str, after: int = 0
                       ) -> list[dict[str, Any]]:
        await self._visible(agent, conversation_id)
        tracker = await self.processor.get_tracker(conversation_id)
        return transcript(tracker.events)[after:]

    async def send(self, agent: AgentAccount, conversation_id: str, text: str
                   ) -> dict[str, Any]:
        handoff = await self._mine(agent, conversation_id)
        if handoff.status == "assigned":  # replying is accepting
            await self.accept(agent, conversation_id)
        await self.to_customer(conversation_id, ev.bot(text, {}, {"agent": agent.username}))
        await self._run(self.store.audit, agent.username, "message", conversation_id,
                        handoff.id, {"chars": len(text)})
        return {"from": "agent", "agent": agent.username, "text": mask_text(text),
                "at": self.clock()}

    async def note(self, agent: AgentAccount, conversation_id: str, text: str
                   ) -> dict[str, Any]:
        handoff = await self._visible(agent, conversation_id)
        now = self.clock()
        masked = mask_text(text)[:MAX_NOTE_CHARS]
        await self._run(self.store.audit, agent.username, "note", conversation_id, handoff.id,
                        {"text": masked}, now)
        return {"at": now, "agent": agent.username, "text": masked}

    async def suggestions(self, agent: AgentAccount, conversation_id: str, query: str | None
                          ) -> list[dict[str, Any]]:
        await self._visible(agent, conversation_id)
        if not query:
            tracker = await self.processor.get_tracker(conversation_id)
            query = next((str(e.get("text") or "") for e in reversed(tracker.events)
                          if e.get("event") == "user"
                          and not str(e.get("text") or "").startswith("/")), "")
        if not query or self.search is None:
            return []
        return [{"id": i, "question": q, "answer": a, "category": c, "score": round(s, 3)}
                for i, q, a, c, s in self.search(query)[:5]]

    async def transfer(self, agent: AgentAccount, conversation_id: str, group: str
                       ) -> dict[str, Any]:
        if self.config.group(group) is None:
            raise HandoffError(400, f"unknown group {group!r}; groups: "
                                    f"{', '.join(self.config.group_names)}")
        handoff = await self._visible(agent, conversation_id, ("waiting", "assigned", "active"))
        owner = None if agent.supervisor or handoff.status == "waiting" else agent.username
        if owner is not None and handoff.agent != agent.username:
            raise HandoffError(409, f"the conversation is handled by {handoff.agent}")
        # an agent moves a waiting conversation only while it still waits (not once a
        # colleague took it); a supervisor moves any open one
        statuses = None if agent.supervisor or owner is not None else ("waiting",)
        moved = await self._run(self.store.transfer, handoff.id, owner, group, self.clock(),
                                statuses)
        if moved is None:
            raise HandoffError(409, "the conversation changed meanwhile; reload the queue")
        await self._run(self.store.audit, agent.username, "transfer", conversation_id,
                        handoff.id, {"from": handoff.group, "to": group})
        await self.to_customer(conversation_id, self.words(
            responses.TRANSFERRED, channel=handoff.channel, group=group))
        await self.bus.publish("queue", "queue", {"group": group})
        await self.notify_positions()  # the customer's page: waiting again, at this place
        self._spawn(self.dispatch())
        return await self.item(moved)

    async def close(self, agent: AgentAccount, conversation_id: str, resolution: str
                    ) -> dict[str, Any]:
        if resolution not in self.config.resolutions:
            raise HandoffError(400, f"resolution must be one of "
                                    f"{', '.join(self.config.resolutions)}")
        handoff = await self._visible(agent, conversation_id, ("waiting", "assigned", "active"))
        owner = None if agent.supervisor else agent.username
        if owner is not None and handoff.agent != agent.username:
            raise HandoffError(409, "only the agent handling the conversation (or a supervisor) "
                                    "can close it")
        closed = await self._run(self.store.close, handoff.id, owner, resolution, self.clock())
        if closed is None:
            raise HandoffError(409, "the conversation changed meanwhile; reload")
        await self._run(self.store.audit, agent.username, "close", conversation_id, handoff.id,
                        {"resolution": resolution})
        await self._resume(conversation_id)
        closed_words = self.words(responses.CLOSED, channel=closed.channel)
        closed_words["metadata"]["handoff"] = "closed"
        await self.to_customer(conversation_id, closed_words)
        await self.bus.publish(f"conversation:{conversation_id}", "queue",
                               {"status": "closed", "position": 0, "eta_seconds": 0})
        for name in dict.fromkeys(n for n in (closed.agent, agent.username) if n):
            # the agent handling it (when a supervisor closed it) and whoever closed it
            await self.bus.publish(f"agent:{name}", "closed",
                                   {"conversation_id": conversation_id})
        await self.bus.publish("queue", "queue", {})
        self._spawn(self.dispatch())
        return await self.item(closed)

    async def supervisor(self, agent: AgentAccount) -> dict[str, Any]:
        if not agent.supervisor:
            raise HandoffError(403, "supervisors only")
        now = self.clock()
        overview = await self._run(self.store.groups_overview, now)
        agents = await self._run(self.store.agents)
        loads = await self._run(self.store.loads)
        return {
            "groups": [{"name": g, "waiting": overview.get(g, (0, 0.0))[0],
                        "longest_wait_s": round(overview.get(g, (0, 0.0))[1], 1),
                        "agents_available": sum(a.status == "available" and g in a.groups
                                                for a in agents)}
                       for g in self.config.group_names],
            "agents": [{"username": a.username, "status": a.status, "role": a.role,
                        "load": loads.get(a.username, 0), "capacity": a.capacity,
                        "groups": a.groups} for a in agents],
        }

    def public_config(self) -> dict[str, Any]:
        return {"groups": self.config.group_names, "resolutions": list(self.config.resolutions),
                "canned_replies": [{"title": t, "text": x}
                                   for t, x in self.config.canned_replies]}

    # -- the customer's page -----------------------------------------------------------------

    async def history(self, conversation_id: str) -> list[dict[str, Any]]:
        tracker = await self.processor.get_tracker(conversation_id)
        out = []
        for item in transcript(tracker.events):
            if item["from"] == "customer" and item["text"].startswith("/"):
                continue  # a button press; the page shows the button's title instead
            entry = {"from": item["from"], "text": item["text"], "at": item["at"]}
            if item.get("buttons"):
                entry["buttons"] = item["buttons"]
            out.append(entry)
        return out

    async def customer_status(self, conversation_id: str) -> dict[str, Any] | None:
        handoff = await self.open_handoff(conversation_id)
        if handoff is None:
            return None
        if handoff.status == "assigned":  # reserved for an agent who has not accepted yet
            return {"status": "waiting", "position": 1, "eta_seconds": 0}
        if handoff.status != "waiting":
            return {"status": handoff.status, "position": 0, "eta_seconds": 0}
        position, eta = await self._queue_place(handoff)
        return {"status": "waiting", "position": position, "eta_seconds": eta}


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
