"""``action_query_balance``: the balance of the customer's own accounts. One account is
answered directly; several are offered as buttons unless ``card_last4`` or
``account_type`` already says which; credit cards answer available credit, statement
balance and due date."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.common import (
    ACCOUNT_LABELS,
    ask_to_log_in,
    backend,
    backend_unavailable,
    customer_id,
    forget,
    logger,
)


def describe(account: Any) -> str:
    from bot.bank.money import format_yuan

    label = ACCOUNT_LABELS.get(account.type, "账户")
    if account.type == "credit_card":
        text = (
            f"您尾号{account.last4}的信用卡可用额度为 {format_yuan(account.available_fen)}，"
            f"总额度 {format_yuan(account.credit_limit_fen)}"
        )
        if account.statement_balance_fen is not None:
            text += f"；本期账单 {format_yuan(account.statement_balance_fen)}"
        if account.due_date is not None:
            text += f"，请在 {account.due_date.isoformat()} 前还款"
        text += "。"
    else:
        text = f"您尾号{account.last4}的{label}可用余额为 {format_yuan(account.balance_fen)}。"
    if account.frozen:
        text += "（该卡目前处于冻结状态。）"
    return text


class ActionQueryBalance(Action):
    def name(self) -> str:
        return "action_query_balance"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        from bot.bank.interfaces import BankError

        customer = customer_id(tracker)
        if customer is None:
            ask_to_log_in(dispatcher, "查询余额")
            return forget(tracker, "card_last4", "account_type")
        try:
            accounts = list(backend().accounts(customer))
        except BankError as exc:
            logger.error("balance for %s failed: %s", customer, exc)
            backend_unavailable(dispatcher)
            return forget(tracker, "card_last4", "account_type")
        if not accounts:
            dispatcher.utter_message(text="您名下暂时没有可查询的账户。")
            return forget(tracker, "card_last4", "account_type")
        last4 = tracker.get_slot("card_last4")
        kind = tracker.get_slot("account_type")
        chosen = accounts
        if last4:
            chosen = [a for a in accounts if a.last4 == str(last4)]
            if not chosen:
                owned = "、".join(f"尾号{a.last4}" for a in accounts)
                dispatcher.utter_message(
                    text=f"没有找到您名下尾号{last4}的卡。您名下的卡有：{owned}。请问要查询哪一张？",
                    buttons=self._buttons(accounts),
                )
                return forget(tracker, "card_last4", "account_type")
        elif kind:
            chosen = [a for a in accounts if a.type == kind] or accounts
        if len(chosen) > 1:
            dispatcher.utter_message(
                text="您名下有多张卡，请问要查询哪一张？", buttons=self._buttons(chosen)
            )
            return forget(tracker, "card_last4", "account_type")
        dispatcher.utter_message(text=describe(chosen[0]))
        return forget(tracker, "card_last4", "account_type")

    @staticmethod
    def _buttons(accounts: list[Any]) -> list[dict[str, str]]:
        return [
            {
                "title": f"{ACCOUNT_LABELS.get(a.type, '账户')} 尾号{a.last4}",
                "payload": f'/query_balance{{"card_last4": "{a.last4}"}}',
            }
            for a in accounts
        ]
