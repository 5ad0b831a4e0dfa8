"""Scoring the sentiment component on labelled examples: accuracy, per-label precision,
recall and F1, the confusion table and the errors (``bench/sentiment_quality.py``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.nlu.interfaces import Component, Message
from bot.nlu.sentiment.analyzer import MODEL_FILE, SentimentAnalyzer
from bot.nlu.sentiment.data import LABELS, SentimentExample


@dataclass
class SentimentEvaluation:
    gold: list[str] = field(default_factory=list)
    predicted: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    negative: list[float] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        hits = sum(g == p for g, p in zip(self.gold, self.predicted, strict=True))
        return hits / len(self.gold) if self.gold else 0.0

    def per_label(self) -> dict[str, dict[str, float]]:
        """Precision, recall, F1 and support of every label."""
        report: dict[str, dict[str, float]] = {}
        pairs = list(zip(self.gold, self.predicted, strict=True))
        for label in LABELS:
            tp = sum(g == p == label for g, p in pairs)
            predicted = sum(p == label for _, p in pairs)
            support = sum(g == label for g, _ in pairs)
            precision = tp / predicted if predicted else 0.0
            recall = tp / support if support else 0.0
            f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
            report[label] = {"precision": precision, "recall": recall, "f1": f1, "support": support}
        return report

    @property
    def macro_f1(self) -> float:
        report = self.per_label()
        return sum(r["f1"] for r in report.values()) / len(report)

    def confusion(self) -> dict[str, dict[str, int]]:
        """``confusion[gold][predicted]`` counts."""
        table = {g: dict.fromkeys(LABELS, 0) for g in LABELS}
        for g, p in zip(self.gold, self.predicted, strict=True):
            table[g][p] += 1
        return table

    def errors(self) -> list[dict[str, Any]]:
        return [
            {"text": t, "gold": g, "predicted": p, "negative": n}
            for t, g, p, n in zip(self.texts, self.gold, self.predicted, self.negative, strict=True)
            if g != p
        ]

    def summary(self) -> dict[str, Any]:
        report = self.per_label()
        return {
            "n": len(self.gold),
            "accuracy": round(self.accuracy, 4),
            "macro_f1": round(self.macro_f1, 4),
            "negative_precision": round(report["negative"]["precision"], 4),
            "negative_recall": round(report["negative"]["recall"], 4),
            "per_label": {k: {m: round(v, 4) for m, v in r.items()} for k, r in report.items()},
            "confusion": self.confusion(),
        }


def sentiment_function(model: Any) -> Callable[[str], dict[str, Any]]:
    """``text → sentiment dict`` for a component, a pipeline, a loaded model or a path."""
    if isinstance(model, str | Path):
        model = _load(Path(model))
    if isinstance(model, SentimentAnalyzer):
        return model.analyse
    pipeline = getattr(model, "nlu", model)  # a LoadedModel → its NLUPipeline
    components: list[Component] = list(getattr(pipeline, "components", None) or [])
    index = next((i for i, c in enumerate(components) if isinstance(c, SentimentAnalyzer)), None)
    if index is None:
        raise ValueError(f"no SentimentAnalyzer in {model!r}")
    analyser = components[index]
    assert isinstance(analyser, SentimentAnalyzer)
    # Only the normaliser matters to the analyser (it reads Message.norm).
    before = [c for c in components[:index] if c.name == "ChineseTextNormalizer"]

    def run(text: str) -> dict[str, Any]:
        message = Message(text)
        for component in before:
            component.process(message)
        return analyser.sentiment(message)

    return run


def _load(path: Path) -> Any:
    """A model archive, an unpacked model, its ``nlu/`` folder or a component folder."""
    if path.is_file():
        from bot.model import load_model

        return load_model(path)
    from bot.nlu.pipeline import NLUPipeline

    for candidate in (path, path / "nlu"):
        if (candidate / "pipeline.json").is_file():
            return NLUPipeline.load(candidate)
    if (path / MODEL_FILE).is_file():
        return SentimentAnalyzer.load(path, {})
    raise FileNotFoundError(f"no model, NLU pipeline or {MODEL_FILE} at {path}")


def evaluate(
    model: Any, examples: Iterable[SentimentExample | tuple[str, str]]
) -> SentimentEvaluation:
    """Score ``model`` on ``examples``.

    ``model``: a :class:`SentimentAnalyzer`, an ``NLUPipeline``, a ``LoadedModel``, or a
    path to a model archive, an unpacked model, its ``nlu/`` folder or the component folder.
    """
    predict = sentiment_function(model)
    result = SentimentEvaluation()
    for example in examples:
        text, label = (
            (example.text, example.label) if isinstance(example, SentimentExample) else example
        )
        sentiment = predict(text)
        result.texts.append(text)
        result.gold.append(label)
        result.predicted.append(sentiment["label"])
        result.negative.append(float(sentiment["negative"]))
    return result
