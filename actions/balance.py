"""``action_query_balance``: the balance of the customer's own accounts. One account is
answered directly; several are offered as buttons unless ``card_last4`` or
``account_type`` already says which; credit cards answer available credit, statement
balance and due date. The words are responses in ``domain.yml``."""

from __future__ import annotations

from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions.common import (
    account_buttons,
    backend,
    backend_unavailable,
    customer_id,
    forget,
    logger,
)
from actions.wording import ACCOUNT_LABELS, label, listing, phrase


def describe(account: Any, domain: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The response telling the balance of ``account``, and its variables."""
    from bot.bank.money import format_yuan

    frozen = phrase(domain, "utter_part_frozen") if account.frozen else ""
    if account.type != "credit_card":
        return "utter_account_balance", {
            "last4": account.last4,
            "account_label": label(domain, ACCOUNT_LABELS, account.type),
            "balance": format_yuan(account.balance_fen),
            "frozen": frozen,
        }
    statement = due = ""
    if account.statement_balance_fen is not None:
        statement = phrase(
            domain, "utter_part_statement", amount=format_yuan(account.statement_balance_fen)
        )
    if account.due_date is not None:
        due = phrase(domain, "utter_part_due", date=account.due_date.isoformat())
    return "utter_credit_card_balance", {
        "last4": account.last4,
        "available": format_yuan(account.available_fen),
        "credit_limit": format_yuan(account.credit_limit_fen),
        "statement": statement,
        "due": due,
        "frozen": frozen,
        "statement_amount": format_yuan(account.statement_balance_fen)
        if account.statement_balance_fen is not None
        else "",
        "due_date": account.due_date.isoformat() if account.due_date is not None else "",
    }


class ActionQueryBalance(Action):
    def name(self) -> str:
        return "action_query_balance"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        from bot.bank.interfaces import BankError

        customer = customer_id(tracker)
        if customer is None:
            dispatcher.utter_message(response="utter_balance_login_required")
            return forget(tracker, "card_last4", "account_type")
        try:
            accounts = list(backend().accounts(customer))
        except BankError as exc:
            logger.error("balance for %s failed: %s", customer, exc)
            backend_unavailable(dispatcher)
            return forget(tracker, "card_last4", "account_type")
        if not accounts:
            dispatcher.utter_message(response="utter_no_accounts")
            return forget(tracker, "card_last4", "account_type")
        last4 = tracker.get_slot("card_last4")
        kind = tracker.get_slot("account_type")
        chosen = accounts
        if last4:
            chosen = [a for a in accounts if a.last4 == str(last4)]
            if not chosen:
                cards = listing(
                    domain, [phrase(domain, "utter_part_card", last4=a.last4) for a in accounts]
                )
                dispatcher.utter_message(
                    response="utter_balance_card_not_found",
                    last4=last4,
                    cards=cards,
                    buttons=account_buttons(accounts, "query_balance", domain),
                )
                return forget(tracker, "card_last4", "account_type")
        elif kind:
            chosen = [a for a in accounts if a.type == kind]
            if not chosen:  # no such card: say so, offer the cards the customer has
                dispatcher.utter_message(
                    response="utter_balance_no_account_of_type",
                    account_label=label(domain, ACCOUNT_LABELS, kind),
                    buttons=account_buttons(accounts, "query_balance", domain),
                )
                return forget(tracker, "card_last4", "account_type")
        if len(chosen) > 1:
            dispatcher.utter_message(
                response="utter_choose_account",
                buttons=account_buttons(chosen, "query_balance", domain),
            )
            return forget(tracker, "card_last4", "account_type")
        response, variables = describe(chosen[0], domain)
        dispatcher.utter_message(response=response, **variables)
        return forget(tracker, "card_last4", "account_type")
