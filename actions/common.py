"""Shared pieces of the bank actions: the verified customer, the core-banking backend,
the knowledge base, the domain's wording (:func:`phrase`) and the replies used when
something is missing. Every sentence the customer reads is a response in ``domain.yml``."""

from __future__ import annotations

import logging
import os
import string
from functools import lru_cache
from pathlib import Path
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(os.environ.get("BOT_PROJECT") or Path(__file__).resolve().parents[1])
# The responses naming the values of the slots account_type and business_type.
ACCOUNT_LABELS = {
    "debit_card": "utter_part_account_debit_card",
    "credit_card": "utter_part_account_credit_card",
}
BUSINESS_LABELS = {
    "loan": "utter_part_business_loan",
    "credit_card_application": "utter_part_business_credit_card_application",
    "card_replacement": "utter_part_business_card_replacement",
    "credit_limit_increase": "utter_part_business_credit_limit_increase",
}


def customer_id(tracker: Tracker) -> str | None:
    """The customer verified by the channel (the engine sets this slot; text never does)."""
    value = tracker.get_slot("customer_id")
    return str(value) if value else None


def forget(tracker: Tracker, *slots: str) -> list[dict[str, Any]]:
    """Clear the slots an answer used, unless a form is collecting them."""
    if tracker.active_loop_name:
        return []
    return [SlotSet(name, None) for name in slots]


class _Keep(dict[str, Any]):
    """Template values where a missing ``{name}`` stays as it is (as in the engine)."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def phrase(domain: dict[str, Any], name: str, **values: Any) -> str:
    """The text of the domain response ``name`` (its first variation) with ``{name}``
    templates filled from ``values``: a part of a message an action assembles (an item of
    a list, an optional clause), so that its words too are in ``domain.yml``."""
    variations = (domain.get("responses") or {}).get(name) or []
    if not variations or not isinstance(variations[0].get("text"), str):
        raise KeyError(f"domain.yml has no response {name} with a text")
    filled = {k: "" if v is None else v for k, v in values.items()}
    return string.Formatter().vformat(variations[0]["text"], (), _Keep(filled))


def label(domain: dict[str, Any], labels: dict[str, str], value: Any) -> str:
    """The words for a slot value (``labels`` maps it to a response), else the value."""
    name = labels.get(str(value))
    return phrase(domain, name) if name else str(value)


def account_buttons(
    accounts: list[Any], intent: str, domain: dict[str, Any]
) -> list[dict[str, str]]:
    """One button per account, its payload ``/intent{"card_last4": …}``."""
    return [
        {
            "title": phrase(domain, "utter_part_account_button",
                            account_label=label(domain, ACCOUNT_LABELS, a.type),
                            last4=a.last4),
            "payload": f'/{intent}{{"card_last4": "{a.last4}"}}',
        }
        for a in accounts
    ]


def backend_unavailable(dispatcher: CollectingDispatcher) -> None:
    dispatcher.utter_message(response="utter_backend_unavailable")


@lru_cache(maxsize=1)
def backend() -> Any:
    from bot.bank.factory import create_backend
    from bot.core.agent import read_endpoints
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


def listing(domain: dict[str, Any], items: list[str]) -> str:
    """``items`` joined by the domain's list separator (``utter_part_separator``)."""
    return phrase(domain, "utter_part_separator").join(items)
