"""Prometheus metrics of one app, in the app's own registry (several apps in one process,
as in tests, never share counters).

With several workers (``bot run --workers N``) the server sets ``PROMETHEUS_MULTIPROC_DIR`` to
a fresh folder before the workers start: every worker writes its counts there and ``/metrics``
of any worker answers the sum over all workers (prometheus-client's multiprocess mode)."""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from bot.core.messages import TurnResult

CONTENT_TYPE = CONTENT_TYPE_LATEST
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
FALLBACK_ACTIONS = frozenset({"action_default_fallback", "action_two_stage_fallback"})
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class BotMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.turns = Counter(
            "bot_turns", "Customer messages processed", ["channel"], registry=self.registry
        )
        self.latency = Histogram(
            "bot_turn_latency_seconds",
            "Time to process one turn",
            ["channel"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.intents = Counter(
            "bot_intents", "Predicted intent of each message", ["intent"], registry=self.registry
        )
        self.fallbacks = Counter(
            "bot_fallbacks", "Turns that ended in a fallback", registry=self.registry
        )
        self.handoffs = Counter(
            "bot_handoffs",
            "Conversations queued for a human agent",
            ["reason"],
            registry=self.registry,
        )
        self.errors = Counter(
            "bot_errors",
            "Failed requests and failed custom actions",
            ["kind"],
            registry=self.registry,
        )
        self.outcomes = Counter(
            "bot_turn_outcomes",
            "Customer turns by what happened (TurnResult.outcome)",
            ["outcome"],
            registry=self.registry,
        )

    def observe_turn(self, channel: str, seconds: float, result: TurnResult) -> None:
        self.turns.labels(channel).inc()
        self.latency.labels(channel).observe(seconds)
        self.outcomes.labels(result.outcome).inc()
        intent = (result.parse_data.get("intent") or {}).get("name")
        self.intents.labels(str(intent) if intent else "none").inc()
        names = {name for name, _, _ in result.actions}
        if names & FALLBACK_ACTIONS or intent == "nlu_fallback":
            self.fallbacks.inc()
        if any(_failed_action(e) for e in result.events):
            self.errors.labels("action_failed").inc()

    def render(self) -> bytes:
        if os.environ.get(MULTIPROC_ENV):  # every worker's counts, summed
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)


def _failed_action(event: dict[str, Any]) -> bool:
    return event.get("event") == "bot" and bool((event.get("metadata") or {}).get("action_failed"))
