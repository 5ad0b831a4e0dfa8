"""The bank assistant's custom actions, written with rasa_sdk as a Rasa user writes them."""
