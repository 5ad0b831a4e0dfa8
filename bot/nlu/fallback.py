"""Says ``nlu_fallback`` when the classifier is unsure, as Rasa's FallbackClassifier does:
the top confidence is below ``threshold`` or the top two are within ``ambiguity_threshold``."""

from __future__ import annotations

from typing import Any, ClassVar

from bot.nlu.interfaces import Component, Message

FALLBACK_INTENT = "nlu_fallback"


class FallbackClassifier(Component):
    name = "FallbackClassifier"
    defaults: ClassVar[dict[str, Any]] = {"threshold": 0.4, "ambiguity_threshold": 0.1}

    def should_fall_back(self, message: Message) -> bool:
        if message.intent is None or not message.intent_ranking:
            return True
        top = float(message.intent["confidence"])
        if top < float(self.config["threshold"]):
            return True
        ranking = message.intent_ranking
        if len(ranking) > 1:
            margin = top - float(ranking[1]["confidence"])
            return margin < float(self.config["ambiguity_threshold"])
        return False

    def process(self, message: Message) -> None:
        if not self.should_fall_back(message):
            return
        fallback = {"name": FALLBACK_INTENT, "confidence": float(self.config["threshold"])}
        if message.intent is None:
            fallback["confidence"] = 1.0
        message.intent = dict(fallback)
        message.intent_ranking = [fallback, *message.intent_ranking]
