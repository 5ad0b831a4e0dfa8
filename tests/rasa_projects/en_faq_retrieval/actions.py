from typing import Any, Dict, List, Text

from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher


class ActionContactDetails(Action):
    def name(self) -> Text:
        return "action_contact_details"

    def run(
        self,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: Dict[Text, Any],
    ) -> List[Dict[Text, Any]]:
        dispatcher.utter_message(
            text="Our advisers answer at 95500-0000 (8:00-20:00) or help@example.com.",
            json_message={"handover": True, "phone": "95500-0000"},
        )
        return []
