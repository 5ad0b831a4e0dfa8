"""Rasa's KeywordIntentClassifier: an intent whose example text occurs in the message wins
with confidence 1.0. Example texts shared by several intents are dropped (as Rasa, with a
note); an example contained in another intent's example is kept, longest match first.
``case_sensitive`` as Rasa. English keywords match whole words; Chinese ones anywhere
(there are no word boundaries). Without a match, an earlier classifier's result stays;
with none, the intent is None.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, ClassVar, Self

from bot.nlu.interfaces import Component, Message, ensure_norm
from bot.training.data import TrainingData


class KeywordIntentClassifier(Component):
    name = "KeywordIntentClassifier"
    defaults: ClassVar[dict[str, Any]] = {"case_sensitive": True}

    def __init__(self, config: dict[str, Any], keywords: dict[str, str] | None = None) -> None:
        super().__init__(config)
        self.keywords = keywords or {}
        self._compile()

    def _compile(self) -> None:
        flags = 0 if self.config["case_sensitive"] else re.IGNORECASE
        self._patterns = []
        for keyword in sorted(self.keywords, key=len, reverse=True):
            escaped = re.escape(keyword)
            if keyword.isascii():
                escaped = rf"\b{escaped}\b"
            self._patterns.append((re.compile(escaped, flags), self.keywords[keyword]))

    def train(self, data: TrainingData, messages: list[Message]) -> None:
        keywords: dict[str, str] = {}
        ambiguous: set[str] = set()
        for example in data.examples:
            text = example.text.strip()
            if not self.config["case_sensitive"]:
                text = text.lower()
            if not text:
                continue
            if text in keywords and keywords[text] != example.base_intent:
                ambiguous.add(text)
            keywords.setdefault(text, example.base_intent)
        for text in ambiguous:
            del keywords[text]
        if ambiguous:
            self.note(
                f"KeywordIntentClassifier: {len(ambiguous)} example text(s) belong to "
                "more than one intent and are not keywords"
            )
        self.keywords = keywords
        self._compile()
        for message in messages:
            self.process(message)

    def process(self, message: Message) -> None:
        text = ensure_norm(message)
        for pattern, intent in self._patterns:
            if pattern.search(text) or pattern.search(message.text):
                message.intent = {"name": intent, "confidence": 1.0}
                message.intent_ranking = [dict(message.intent)]
                return

    def persist(self, directory: Path) -> None:
        (directory / "keywords.json").write_text(
            json.dumps(self.keywords, ensure_ascii=False), encoding="utf-8"
        )

    @classmethod
    def load(cls, directory: Path, config: dict[str, Any]) -> Self:
        return cls(config, json.loads((directory / "keywords.json").read_text("utf-8")))
