"""Shared pieces of the bank actions: the verified customer, the core-banking backend,
the knowledge base, the card buttons and the reply when the backend fails."""

from __future__ import annotations

import logging
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.wording import ACCOUNT_LABELS, label, phrase

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(os.environ.get("BOT_PROJECT") or Path(__file__).resolve().parents[1])


def customer_id(tracker: Tracker) -> str | None:
    """The customer verified by the channel (the engine sets this slot; text never does)."""
    value = tracker.get_slot("customer_id")
    return str(value) if value else None


def forget(tracker: Tracker, *slots: str) -> list[dict[str, Any]]:
    """Clear the slots an answer used, unless a form is collecting them."""
    if tracker.active_loop_name:
        return []
    return [SlotSet(name, None) for name in slots]


def account_buttons(
    accounts: list[Any], intent: str, domain: dict[str, Any]
) -> list[dict[str, str]]:
    """One button per account, its payload ``/intent{"card_last4": …}``."""
    return [
        {
            "title": phrase(
                domain,
                "utter_part_account_button",
                account_label=label(domain, ACCOUNT_LABELS, a.type),
                last4=a.last4,
            ),
            "payload": f'/{intent}{{"card_last4": "{a.last4}"}}',
        }
        for a in accounts
    ]


def backend_unavailable(dispatcher: CollectingDispatcher) -> None:
    dispatcher.utter_message(response="utter_backend_unavailable")


@lru_cache(maxsize=1)
def backend() -> Any:
    from bot.bank.factory import create_backend
    from bot.endpoints import read_endpoints
    from bot.project import Project

    endpoints = read_endpoints(Project(PROJECT_ROOT))
    return create_backend(endpoints.get("bank"), PROJECT_ROOT)


_kb: Any = None


def knowledge_base() -> Any:
    """The project's knowledge base, reloaded when it was rebuilt on disk."""
    global _kb
    from bot.kb.knowledge_base import KnowledgeBase

    if _kb is None:
        _kb = KnowledgeBase.load(PROJECT_ROOT / "kb_index")
    else:
        _kb.reload_if_changed()
    return _kb
