"""Actions: responses (``utter_*``), Rasa's default actions, loops and custom actions."""
