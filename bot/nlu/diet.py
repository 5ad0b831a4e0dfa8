"""Rasa's DIETClassifier, served without TensorFlow: intents by bankbot's calibrated logistic
regression over the pipeline's features, entities by a CRF (``CRFEntityExtractor``) on the
tokens. The parse result has DIET's shape (``intent``, ``intent_ranking`` of
``ranking_length``, entities with ``confidence_entity``, ``role``/``group`` and
``"extractor": "DIETClassifier"``).

Options of the neural network (epochs, transformer layers, embedding sizes …) cannot be
honoured; those set in config.yml are listed once in ``notes()``. Honoured:
``intent_classification``, ``entity_recognition``, ``ranking_length``, ``BILOU_flag``,
``split_entities_by_comma``, ``random_seed``; and bankbot's ``C``, ``class_weight``,
``max_iter``, ``calibration_folds``, ``granularity`` (of the CRF).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Self

from bot.nlu.classifier import LogisticRegressionClassifier
from bot.nlu.crf_extractor import CRFEntityExtractor
from bot.nlu.interfaces import Component, Message
from bot.training.data import TrainingData

# Options of Rasa 3.x's DIETClassifier (and ResponseSelector) that shape the neural network
# or its training loop: accepted, not honoured.
NEURAL_OPTIONS = frozenset(
    {
        "epochs",
        "batch_size",
        "batch_strategy",
        "learning_rate",
        "hidden_layers_sizes",
        "transformer_layers",
        "transformer_size",
        "number_of_transformer_layers",
        "number_of_attention_heads",
        "use_key_relative_attention",
        "use_value_relative_attention",
        "max_relative_position",
        "unidirectional_encoder",
        "embedding_dimension",
        "dense_dimension",
        "concat_dimension",
        "number_of_negative_examples",
        "similarity_type",
        "loss_type",
        "maximum_positive_similarity",
        "maximum_negative_similarity",
        "use_maximum_negative_similarity",
        "scale_loss",
        "regularization_constant",
        "negative_margin_scale",
        "drop_rate",
        "drop_rate_attention",
        "connection_density",
        "use_sparse_input_dropout",
        "use_dense_input_dropout",
        "evaluate_every_number_of_epochs",
        "evaluate_on_number_of_examples",
        "tensorboard_log_directory",
        "tensorboard_log_level",
        "checkpoint_model",
        "use_masked_language_model",
        "share_hidden_layers",
        "weight_sparsity",
        "constrain_similarities",
        "model_confidence",
        "renormalize_confidences",
        "featurizers",
        "run_eagerly",
        "use_text_as_label",
        "use_gpu",
    }
)
HONOURED = (
    "intent_classification",
    "entity_recognition",
    "ranking_length",
    "BILOU_flag",
    "split_entities_by_comma",
    "random_seed",
)


def note_neural_options(component: Component, given: dict[str, Any]) -> None:
    unhonoured = sorted(k for k in given if k in NEURAL_OPTIONS)
    if unhonoured:
        shown = ", ".join(f"{k}={given[k]!r}" for k in unhonoured)
        component.note(f"{component.name}: options of the neural network not honoured: {shown}")


class DIETClassifier(Component):
    name = "DIETClassifier"
    extracts_entities: ClassVar[bool] = True
    defaults: ClassVar[dict[str, Any]] = {
        "intent_classification": True,
        "entity_recognition": True,
        "ranking_length": 10,
        "BILOU_flag": True,
        "split_entities_by_comma": True,
        "random_seed": 42,
        # bankbot's substitute: the logistic regression and the CRF
        "C": 20.0,
        "class_weight": "balanced",
        "max_iter": 2000,
        "calibration_folds": 5,
        "granularity": "characters",
    }

    def __init__(
        self,
        config: dict[str, Any],
        classifier: LogisticRegressionClassifier | None = None,
        crf: CRFEntityExtractor | None = None,
    ) -> None:
        super().__init__(config)
        self.note(
            "DIETClassifier: substituted by bankbot's logistic regression (intents) "
            "and a CRF (entities); no TensorFlow"
        )
        note_neural_options(self, config)
        c = self.config
        self.classifier = classifier or LogisticRegressionClassifier(self._lr_config(c))
        self.crf = crf or CRFEntityExtractor(self._crf_config(c))
        self.crf.name = self.name  # type: ignore[misc]  # entities say DIETClassifier

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

    @staticmethod
    def _crf_config(c: dict[str, Any]) -> dict[str, Any]:
        return {k: c[k] for k in ("BILOU_flag", "split_entities_by_comma", "granularity")}

    def train(self, data: TrainingData, messages: list[Message]) -> None:
        if self.config["intent_classification"]:
            self.classifier.fit(
                [m.features for m in messages], [e.base_intent for e in data.examples]
            )
        if self.config["entity_recognition"]:
            self.crf.train(data, messages)  # also tags the messages
        if self.config["intent_classification"]:
            self.classifier.learn_words(messages)
            for message in messages:
                self.classifier.process(message)

    def process(self, message: Message) -> None:
        if self.config["intent_classification"]:
            self.classifier.process(message)
        if self.config["entity_recognition"]:
            self.crf.process(message)

    def persist(self, directory: Path) -> None:
        for sub, part in (("intent", self.classifier), ("entity", self.crf)):
            (directory / sub).mkdir()
            if sub == "intent" and self.classifier.model is None:
                continue
            part.persist(directory / sub)

    @classmethod
    def load(cls, directory: Path, config: dict[str, Any]) -> Self:
        full = {**cls.defaults, **config}
        lr_config = cls._lr_config(full)
        classifier = (
            LogisticRegressionClassifier.load(directory / "intent", lr_config)
            if (directory / "intent" / "model.joblib").is_file()
            else LogisticRegressionClassifier(lr_config)
        )
        crf = CRFEntityExtractor.load(directory / "entity", cls._crf_config(full))
        return cls(config, classifier, crf)
