"""The card-loss flow: ``report_loss_form`` asks which card (the customer's cards as
buttons) and for an explicit confirmation; ``validate_report_loss_form`` checks the card
is the customer's own; ``action_freeze_card`` freezes it temporarily in the core system
and says what to do next. The words are responses in ``domain.yml``."""

from __future__ import annotations

import re
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from actions.common import account_buttons, backend, customer_id, logger
from actions.wording import ACCOUNT_LABELS, label, listing, phrase


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
            dispatcher.utter_message(response="utter_invalid_card_last4")
            return {"card_last4": None}
        try:
            owned = {a.last4 for a in _accounts(tracker)}
        except Exception as exc:  # the backend is checked again when freezing
            logger.error("card check failed: %s", exc)
            return {"card_last4": digits}
        if not owned and customer_id(tracker) is not None:
            dispatcher.utter_message(response="utter_no_cards_to_report")
            return {"card_last4": None}
        if owned and digits not in owned:
            cards = listing(
                domain, [phrase(domain, "utter_part_card", last4=x) for x in sorted(owned)]
            )
            dispatcher.utter_message(response="utter_not_your_card", last4=digits, cards=cards)
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
        kind = tracker.get_slot("account_type")
        fitting = [a for a in accounts if a.type == kind] if kind else accounts
        if kind and accounts and not fitting:
            # 信用卡丢了 without a credit card here: say so; another bank's card is theirs to
            # block; the customer's own cards stay offered (and a person)
            dispatcher.utter_message(
                response="utter_loss_no_card_of_type",
                account_label=label(domain, ACCOUNT_LABELS, kind),
                buttons=account_buttons(accounts, "inform", domain),
            )
            return [SlotSet("account_type", None)]
        dispatcher.utter_message(
            response="utter_ask_card_to_report",
            buttons=account_buttons(fitting, "inform", domain),
        )
        return []


class ActionFreezeCard(Action):
    def name(self) -> str:
        return "action_freeze_card"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        from bot.bank.interfaces import BankError, UnknownCard

        clear = [
            SlotSet("card_last4", None),
            SlotSet("loss_confirmed", None),
            SlotSet("account_type", None),
        ]
        last4 = tracker.get_slot("card_last4")
        customer = customer_id(tracker)
        if tracker.get_slot("loss_confirmed") is not True or not last4 or customer is None:
            dispatcher.utter_message(response="utter_loss_cancelled")
            return clear
        try:
            result = backend().freeze_card(customer, str(last4))
        except UnknownCard:
            dispatcher.utter_message(response="utter_freeze_unknown_card", last4=last4)
            return clear
        except BankError as exc:
            logger.error("freeze for %s failed: %s", customer, exc)
            dispatcher.utter_message(response="utter_freeze_failed")
            return clear
        if result.already_frozen:
            dispatcher.utter_message(response="utter_card_already_frozen", last4=last4)
            return clear
        dispatcher.utter_message(response="utter_card_frozen", last4=last4)
        return clear
