from typing import Any, Dict, Text

from rasa_sdk import FormValidationAction, Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict


class ValidateFlightForm(FormValidationAction):
    def name(self) -> Text:
        return "validate_flight_form"

    def validate_destination_city(
        self,
        slot_value: Any,
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: DomainDict,
    ) -> Dict[Text, Any]:
        """The destination must differ from the departure city."""
        departure = tracker.get_slot("departure_city")
        if departure and str(slot_value).lower() == str(departure).lower():
            dispatcher.utter_message(text="You are already there! Pick another destination.")
            return {"destination_city": None}
        return {"destination_city": slot_value}
