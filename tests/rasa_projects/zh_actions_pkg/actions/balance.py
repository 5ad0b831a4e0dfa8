from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.events import FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from .accounts import ACCOUNTS


class ActionCheckAccount(Action):
    """Goes on to the balance when the account type is known, else offers buttons."""

    def name(self) -> Text:
        return "action_check_account"

    def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: Dict[Text, Any],
    ) -> List[Dict[Text, Any]]:
        if tracker.get_slot("account_type") in ACCOUNTS:
            return [FollowupAction("action_show_balance")]
        buttons = [
            {"title": account["name"], "payload": f'/inform{{"account_type": "{key}"}}'}
            for key, account in ACCOUNTS.items()
        ]
        dispatcher.utter_message(text="请选择要查询的账户：", buttons=buttons)
        return []


class ActionShowBalance(Action):
    def name(self) -> Text:
        return "action_show_balance"

    def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: Dict[Text, Any],
    ) -> List[Dict[Text, Any]]:
        account = ACCOUNTS.get(tracker.get_slot("account_type") or "")
        if account is None:
            dispatcher.utter_message(text="请先选择要查询的账户。")
            return []
        dispatcher.utter_message(
            text=f"您的{account['name']}（尾号{account['tail']}）余额为 {account['balance']} 元。"
        )
        return [SlotSet("last_balance", account["balance"])]
