"""Building the project's :class:`~bot.handoff.service.HandoffService`: ``handoff.yml``, the
store in the tracker store's database (or ``$BOT_HANDOFF_DB``), customer profiles from the
core-banking backend, knowledge suggestions from the project's knowledge base, and the live bus
(Redis when ``$BOT_REDIS_URL`` is set, so that several workers share it)."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.core.processor import MessageProcessor
from bot.endpoints import Endpoints, load_endpoints
from bot.handoff.bus import LocalBus, RedisBus
from bot.handoff.config import HandoffConfig
from bot.handoff.routing import Profile
from bot.handoff.service import HandoffService
from bot.handoff.store import HandoffStore
from bot.privacy import PrivacyPolicy
from bot.project import Project

if TYPE_CHECKING:
    from bot.kb.settings import KBSettings

logger = logging.getLogger(__name__)
DB_ENV = "BOT_HANDOFF_DB"


def store_for(
    project_root: Path, tracker_store: Any = None, endpoints: Endpoints | None = None
) -> HandoffStore:
    """``$BOT_HANDOFF_DB``; else the SQL tracker store's database; else the project's
    default SQLite file (what ``bot agents`` uses too). ``endpoints``: default read from the
    project."""
    url = os.environ.get(DB_ENV)
    privacy = getattr(tracker_store, "privacy", None)
    if url:
        return HandoffStore.from_url(url, privacy)
    engine = getattr(tracker_store, "engine", None)
    if engine is not None:
        return HandoffStore(engine, privacy)
    from bot.core.tracker_store import create_tracker_store

    if endpoints is None:
        endpoints = load_endpoints(Project(project_root))
    privacy = PrivacyPolicy.from_section(endpoints.sections.get("privacy"), os.environ)
    store = create_tracker_store(endpoints.tracker_store, project_root, privacy)
    engine = getattr(store, "engine", None)
    if engine is None:  # an in-memory tracker store: keep handoffs in memory too
        return HandoffStore.from_url("sqlite://", privacy)
    return HandoffStore(engine, privacy)


def knowledge_search(project_root: Path, settings: KBSettings | None = None) -> tuple[Any, Any]:
    """(search, category) functions over the project's knowledge base, or (None, None);
    ``settings``: default read from its ``config.yml``."""
    try:
        from bot.kb.knowledge_base import KnowledgeBase

        kb = KnowledgeBase.load(project_root / "kb_index", settings)
    except Exception as exc:  # not built: agents get no suggestions, handoff still works
        logger.warning("knowledge base unavailable for agent suggestions: %s", exc)
        return None, None

    def search(query: str) -> Sequence[tuple[str, str, str, str, float]]:
        kb.reload_if_changed()
        return [
            (h.id, h.question, h.answer, h.entry.category, h.score) for h in kb.search(query, top=5)
        ]

    def category(query: str) -> str | None:
        hits = kb.search(query, top=1)
        return hits[0].entry.category if hits else None

    return search, category


def profiles() -> Any:
    from bot.bank.factory import default_backend

    def profile(customer_id: str) -> Profile | None:
        customer = default_backend().customer(customer_id)
        return Profile(customer.id, customer.name, customer.age, customer.vip)

    return profile


def create_handoff_service(
    project_root: Path,
    processor: MessageProcessor,
    config: HandoffConfig,
    *,
    endpoints: Endpoints,
    kb_settings: KBSettings | None = None,
    production: bool = False,
) -> HandoffService:
    """The service of ``config`` (the ``handoff`` part of the project's settings,
    :mod:`bot.server.project_settings`); the bus on ``endpoints.redis_url``."""
    url = endpoints.redis_url
    bus = RedisBus(url) if url else LocalBus()
    search, category = knowledge_search(project_root, kb_settings)
    store = store_for(project_root, processor.tracker_store, endpoints)
    return HandoffService(
        config,
        store,
        processor,
        bus=bus,
        profiles=profiles(),
        search=search,
        categories=category,
        production=production,
    )
