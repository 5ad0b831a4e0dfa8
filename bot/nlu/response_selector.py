"""Rasa's ResponseSelector for retrieval intents (``chitchat/whoyouare``).

The intent classifiers learn the base intent (``chitchat``); this component learns the
full key from the same features (bankbot's calibrated logistic regression, as the
DIETClassifier substitute) and adds Rasa 3.x's ``response_selector`` to the parse result::

    "response_selector": {
      "all_retrieval_intents": ["chitchat"],
      "default": {"response": {"responses": [], "confidence": 0.93,
                               "intent_response_key": "chitchat/whoyouare",
                               "utter_action": "utter_chitchat/whoyouare"},
                  "ranking": [{"confidence": 0.93, "intent_response_key": "chitchat/whoyouare"}]}}

With ``retrieval_intent: chitchat`` it learns only that intent's keys and reports under
``chitchat``; without it, ``default`` covers every retrieval intent. The response texts
live in the domain (``utter_chitchat/whoyouare``); the ``utter_chitchat`` action reads
``utter_action`` (``responses`` stays empty here). Neural-network options are accepted and
listed in ``notes()``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar, Self

from bot.nlu.classifier import LogisticRegressionClassifier
from bot.nlu.diet import note_neural_options
from bot.nlu.interfaces import Component, Message
from bot.training.data import TrainingData

DEFAULT_SELECTOR = "default"
KEY = "response_selector"


class ResponseSelector(Component):
    name = "ResponseSelector"
    defaults: ClassVar[dict[str, Any]] = {
        "retrieval_intent": None,
        "ranking_length": 10,
        "use_text_as_label": False,
        "random_seed": 42,
        # bankbot's substitute: logistic regression
        "C": 20.0,
        "class_weight": "balanced",
        "max_iter": 2000,
        "calibration_folds": 5,
    }

    def __init__(
        self,
        config: dict[str, Any],
        classifier: LogisticRegressionClassifier | None = None,
        state: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(config)
        note_neural_options(self, config)
        if config.get("use_text_as_label"):
            self.note(
                "ResponseSelector: use_text_as_label is not honoured; the response key is the label"
            )
        c = self.config
        self.classifier = classifier or LogisticRegressionClassifier(self._lr_config(c))
        state = state or {}
        self.all_retrieval_intents: list[str] = state.get("all_retrieval_intents", [])
        self.single: str | None = state.get("single")  # the only key, when there is one

    @staticmethod
    def _lr_config(c: dict[str, Any]) -> dict[str, Any]:
        return {
            k: c[k]
            for k in (
                "C",
                "class_weight",
                "max_iter",
                "calibration_folds",
                "ranking_length",
                "random_seed",
            )
        }

    @property
    def selector(self) -> str:
        return str(self.config["retrieval_intent"] or DEFAULT_SELECTOR)

    def train(self, data: TrainingData, messages: list[Message]) -> None:
        self.all_retrieval_intents = data.retrieval_intents
        wanted = self.config["retrieval_intent"]
        if wanted and wanted not in self.all_retrieval_intents:
            from bot.errors import ConfigError

            known = ", ".join(self.all_retrieval_intents) or "none"
            raise ConfigError(
                f"ResponseSelector: retrieval_intent '{wanted}' has no examples written as "
                f"'{wanted}/<response_key>' (retrieval intents in the data: {known})"
            )
        rows, keys = [], []
        for example, message in zip(data.examples, messages, strict=True):
            key = example.response_key
            if key and (not wanted or example.base_intent == wanted):
                rows.append(message.features)
                keys.append(key)
        self.single = None
        if len(set(keys)) == 1:
            self.single = keys[0]
        elif keys:
            self.classifier.fit(rows, keys)
        for message in messages:
            self.process(message)

    def _ranking(self, message: Message) -> list[dict[str, Any]]:
        if self.single is not None:
            return [{"name": self.single, "confidence": 1.0}]
        if self.classifier.model is None or not message.features or not message.norm.strip():
            return []
        return self.classifier.rank(message.features)

    def process(self, message: Message) -> None:
        ranking = self._ranking(message)
        if ranking:
            top = ranking[0]
            response = {
                "responses": [],
                "confidence": top["confidence"],
                "intent_response_key": top["name"],
                "utter_action": f"utter_{top['name']}",
            }
        else:
            response = {
                "responses": [],
                "confidence": 0.0,
                "intent_response_key": None,
                "utter_action": None,
            }
        out = message.extras.setdefault(
            KEY, {"all_retrieval_intents": list(self.all_retrieval_intents)}
        )
        out[self.selector] = {
            "response": response,
            "ranking": [
                {"confidence": r["confidence"], "intent_response_key": r["name"]} for r in ranking
            ],
        }

    def persist(self, directory: Path) -> None:
        state = {"all_retrieval_intents": self.all_retrieval_intents, "single": self.single}
        (directory / "state.json").write_text(
            json.dumps(state, ensure_ascii=False), encoding="utf-8"
        )
        if self.classifier.model is not None:
            self.classifier.persist(directory)

    @classmethod
    def load(cls, directory: Path, config: dict[str, Any]) -> Self:
        state = json.loads((directory / "state.json").read_text(encoding="utf-8"))
        lr_config = cls._lr_config({**cls.defaults, **config})
        classifier = (
            LogisticRegressionClassifier.load(directory, lr_config)
            if (directory / "model.joblib").is_file()
            else LogisticRegressionClassifier(lr_config)
        )
        return cls(config, classifier, state)
