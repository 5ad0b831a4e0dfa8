"""The card-loss flow: ``report_loss_form`` asks which card (the customer's cards as
buttons) and for an explicit confirmation; ``validate_report_loss_form`` checks the card
is the customer's own; ``action_freeze_card`` freezes it temporarily in the core system
and says what to do next."""

from __future__ import annotations

import re
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.common import (
    ACCOUNT_LABELS,
    HUMAN_BUTTON,
    backend,
    customer_id,
    logger,
)


def _accounts(tracker: Tracker) -> list[Any]:
    customer = customer_id(tracker)
    if customer is None:
        return []
    return list(backend().accounts(customer))


class ValidateReportLossForm(FormValidationAction):
    def name(self) -> str:
        return "validate_report_loss_form"

    def validate_card_last4(
        self,
        value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> dict[str, Any]:
        if value is None:
            return {"card_last4": None}
        digits = re.sub(r"\D", "", str(value))
        if len(digits) != 4:
            dispatcher.utter_message(text="卡号后四位应为4位数字，请重新输入，例如：尾号1234。")
            return {"card_last4": None}
        try:
            owned = {a.last4 for a in _accounts(tracker)}
        except Exception as exc:  # the backend is checked again when freezing
            logger.error("card check failed: %s", exc)
            return {"card_last4": digits}
        if not owned and customer_id(tracker) is not None:
            dispatcher.utter_message(
                text="您名下暂时没有可挂失的银行卡。如需帮助，请点击“转人工”。",
                buttons=[HUMAN_BUTTON],
            )
            return {"card_last4": None}
        if owned and digits not in owned:
            listing = "、".join(f"尾号{x}" for x in sorted(owned))
            dispatcher.utter_message(text=f"您名下没有尾号{digits}的卡，您的卡是：{listing}。")
            return {"card_last4": None}
        return {"card_last4": digits}

    def validate_loss_confirmed(
        self,
        value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> dict[str, Any]:
        return {"loss_confirmed": value if isinstance(value, bool) else None}


class ActionAskCardLast4(Action):
    def name(self) -> str:
        return "action_ask_card_last4"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        try:
            accounts = _accounts(tracker)
        except Exception:
            accounts = []
        buttons = [
            {
                "title": f"{ACCOUNT_LABELS.get(a.type, '卡')} 尾号{a.last4}",
                "payload": f'/inform{{"card_last4": "{a.last4}"}}',
            }
            for a in accounts
        ]
        dispatcher.utter_message(
            text="请问需要挂失的是哪张卡？请选择或告诉我卡号后四位。", buttons=buttons or None
        )
        return []


class ActionFreezeCard(Action):
    def name(self) -> str:
        return "action_freeze_card"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        from bot.bank.interfaces import BankError, UnknownCard

        clear = [SlotSet("card_last4", None), SlotSet("loss_confirmed", None)]
        last4 = tracker.get_slot("card_last4")
        customer = customer_id(tracker)
        if tracker.get_slot("loss_confirmed") is not True or not last4 or customer is None:
            dispatcher.utter_message(text="好的，暂不挂失。如发现卡片有异常交易，请随时联系我们。")
            return clear
        try:
            result = backend().freeze_card(customer, str(last4))
        except UnknownCard:
            dispatcher.utter_message(
                text=f"没有找到您名下尾号{last4}的卡，请核对卡号，或点击“转人工”由人工客服协助。",
                buttons=[HUMAN_BUTTON],
            )
            return clear
        except BankError as exc:
            logger.error("freeze for %s failed: %s", customer, exc)
            dispatcher.utter_message(
                text="抱歉，系统暂时无法冻结卡片。为保障资金安全，请立即拨打24小时客服热线 "
                "95500-0000 挂失，或点击“转人工”。",
                buttons=[HUMAN_BUTTON],
            )
            return clear
        if result.already_frozen:
            dispatcher.utter_message(
                text=f"您尾号{last4}的卡已经处于冻结状态，无需重复操作。如需补卡，请携带本人身份证"
                "到任一网点办理，或拨打 95500-0000 咨询。",
                buttons=[HUMAN_BUTTON],
            )
            return clear
        dispatcher.utter_message(
            text=f"已为您临时冻结尾号{last4}的卡，冻结期间该卡无法交易。接下来：请携带本人身份证到"
            "任一网点办理正式挂失和补卡；如发现盗刷，请拨打 95500-0000 并报警。需要人工客服进一步"
            "协助吗？",
            buttons=[HUMAN_BUTTON],
        )
        return clear
