"""Shared pieces of the bank actions: the verified customer, the core-banking backend,
the knowledge base, and the replies used when something is missing."""

from __future__ import annotations

import logging
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

logger = logging.getLogger(__name__)

HUMAN_BUTTON = {"title": "转人工", "payload": "/request_human"}
PROJECT_ROOT = Path(os.environ.get("BOT_PROJECT") or Path(__file__).resolve().parents[1])
ACCOUNT_LABELS = {"debit_card": "储蓄卡", "credit_card": "信用卡"}
BUSINESS_LABELS = {
    "loan": "贷款",
    "credit_card_application": "信用卡申请",
    "card_replacement": "补换卡",
    "credit_limit_increase": "信用卡提额",
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


def ask_to_log_in(dispatcher: CollectingDispatcher, what: str) -> None:
    dispatcher.utter_message(
        text=f"为保护您的账户安全，{what}需要先验证身份：请在示例银行App内登录后再来咨询，"
        "或在微信公众号中绑定您的银行账户。您也可以点击“转人工”由人工客服为您办理。",
        buttons=[HUMAN_BUTTON],
    )


def backend_unavailable(dispatcher: CollectingDispatcher) -> None:
    dispatcher.utter_message(
        text="抱歉，系统暂时无法查询，请稍后再试。如需帮助，可以点击“转人工”由人工客服为您服务。",
        buttons=[HUMAN_BUTTON],
    )


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
