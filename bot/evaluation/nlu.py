"""``bot test nlu``: intent and entity evaluation, reports and plots, cross-validation.

Writes the files Rasa users expect: ``intent_report.json``, ``intent_errors.json``,
``intent_confusion_matrix.png``, ``intent_histogram.png``, ``entity_report.json`` (plus
``<Extractor>_report.json``) and ``summary.json``.
"""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.nlu.fallback import FALLBACK_INTENT
from bot.nlu.pipeline import NLUPipeline
from bot.training.data import Example, TrainingData


@dataclass
class Prediction:
    example: Example
    intent: str | None
    confidence: float
    classifier_intent: str | None  # top intent before the fallback classifier
    entities: list[dict[str, Any]]
    # Entities an extractor found that the parse result leaves out as duplicates of
    # another extractor's: counted in that extractor's own report only.
    shadowed: list[dict[str, Any]] = field(default_factory=list)
    # The ResponseSelector's top intent_response_key (``chitchat/whoyouare``), if any.
    response_key: str | None = None


@dataclass
class NLUEvaluation:
    predictions: list[Prediction] = field(default_factory=list)
    # Normalised texts of the training examples, to report test items also seen in training.
    training_texts: frozenset[str] = frozenset()

    def seen_in_training(self) -> list[bool]:
        from bot.nlu.normalizer import normalise

        return [normalise(p.example.text)[0] in self.training_texts for p in self.predictions]

    def overlap(self) -> dict[str, Any]:
        seen = self.seen_in_training()
        unseen = [p for p, s in zip(self.predictions, seen, strict=True) if not s]
        hits = sum(p.intent == p.example.base_intent for p in unseen)
        return {
            "also_in_training": sum(seen),
            "unseen": len(unseen),
            "unseen_intent_accuracy": round(hits / len(unseen), 4) if unseen else None,
        }

    @property
    def gold(self) -> list[str]:
        return [p.example.base_intent for p in self.predictions]

    @property
    def predicted(self) -> list[str]:
        return [p.intent or "None" for p in self.predictions]

    def intent_report(self) -> dict[str, Any]:
        from sklearn.metrics import classification_report

        # Per-label rows for the labels of the test data; a prediction of another label
        # (nlu_fallback included) counts as a miss of the true label.
        report: dict[str, Any] = classification_report(
            self.gold,
            self.predicted,
            labels=sorted(set(self.gold)),
            output_dict=True,
            zero_division=0,
        )
        report.pop("micro avg", None)
        classifier_hits = sum(
            p.classifier_intent == p.example.base_intent for p in self.predictions
        )
        report["accuracy"] = self.accuracy
        report["accuracy_without_fallback"] = classifier_hits / max(len(self.predictions), 1)
        report["fallback_rate"] = sum(p.intent == FALLBACK_INTENT for p in self.predictions) / max(
            len(self.predictions), 1
        )
        return report

    @property
    def accuracy(self) -> float:
        hits = sum(g == p for g, p in zip(self.gold, self.predicted, strict=True))
        return hits / max(len(self.predictions), 1)

    @property
    def macro_f1(self) -> float:
        from sklearn.metrics import f1_score

        labels = sorted(set(self.gold))
        return float(
            f1_score(self.gold, self.predicted, labels=labels, average="macro", zero_division=0)
        )

    def intent_errors(self) -> list[dict[str, Any]]:
        return [
            {
                "text": p.example.text,
                "intent": p.example.base_intent,
                "intent_prediction": {"name": p.intent, "confidence": round(p.confidence, 4)},
                "source": str(p.example.source) if p.example.source else None,
            }
            for p in self.predictions
            if p.intent != p.example.base_intent
        ]

    def entity_counts(self, extractor: str | None = None) -> dict[str, dict[str, int]]:
        """Per entity: true positives, false positives, false negatives (exact spans).

        An entity with a role counts as ``entity#role`` (as ``rasa test``); ``extractor``
        keeps only that extractor's predictions."""
        counts: dict[str, dict[str, int]] = defaultdict(lambda: {"tp": 0, "fp": 0, "fn": 0})
        for p in self.predictions:
            gold = _gold(p)
            found = _found(p, extractor)
            for key in gold & found:
                counts[key[0]]["tp"] += 1
            for key in found - gold:
                counts[key[0]]["fp"] += 1
            for key in gold - found:
                counts[key[0]]["fn"] += 1
        return dict(counts)

    def entity_report(self, extractor: str | None = None) -> dict[str, Any]:
        report: dict[str, Any] = {}
        total = {"tp": 0, "fp": 0, "fn": 0}
        for entity, c in sorted(self.entity_counts(extractor).items()):
            report[entity] = _prf(c)
            for k in total:
                total[k] += c[k]
        report["micro avg"] = _prf(total)
        names = [k for k in report if k != "micro avg"]
        if names:
            report["macro avg"] = {
                m: round(statistics.mean(report[n][m] for n in names), 4)
                for m in ("precision", "recall", "f1-score")
            }
        report["entity_errors"] = self.entity_errors(extractor)
        return report

    def extractor_f1(self, extractors: list[str]) -> dict[str, float]:
        """Micro F1 of each extractor on its own."""
        return {
            name: float(self.entity_report(name)["micro avg"]["f1-score"]) for name in extractors
        }

    def entity_errors(self, extractor: str | None = None) -> list[dict[str, Any]]:
        errors = []
        for p in self.predictions:
            gold = _gold(p)
            found = _found(p, extractor)
            if gold != found:
                errors.append(
                    {
                        "text": p.example.text,
                        "expected": [
                            {"entity": e, "text": p.example.text[s:t], "start": s, "end": t}
                            for e, s, t in sorted(gold)
                        ],
                        "predicted": [
                            {"entity": e, "text": p.example.text[s:t], "start": s, "end": t}
                            for e, s, t in sorted(found)
                        ],
                    }
                )
        return errors

    def response_selection_report(self) -> dict[str, Any] | None:
        """Per ``intent/response`` key precision/recall/F1 over the test examples of retrieval
        intents (Rasa's ``response_selection_report.json``); None without any."""
        from sklearn.metrics import classification_report

        pairs = [
            (p.example.intent, p.response_key or "None")
            for p in self.predictions
            if p.example.response_key
        ]
        if not pairs:
            return None
        gold = [g for g, _ in pairs]
        predicted = [k for _, k in pairs]
        report: dict[str, Any] = classification_report(
            gold, predicted, labels=sorted(set(gold)), output_dict=True, zero_division=0
        )
        report.pop("micro avg", None)
        report["accuracy"] = sum(g == k for g, k in pairs) / len(pairs)
        return report

    @property
    def entity_f1(self) -> float:
        return float(self.entity_report()["micro avg"]["f1-score"])


def _label(entity: str, role: Any) -> str:
    return f"{entity}#{role}" if role else entity


def _gold(p: Prediction) -> set[tuple[str, int, int]]:
    return {(_label(a.entity, a.role), a.start, a.end) for a in p.example.entities}


def _found(p: Prediction, extractor: str | None) -> set[tuple[str, int, int]]:
    if extractor is None:
        # A learned entity with a role or group and a rule-based one without on the same
        # span are one finding (bot.nlu.entity_merge keeps both for the slot mappings).
        labelled = {
            (e["entity"], e["start"], e["end"])
            for e in p.entities
            if e.get("role") or e.get("group")
        }
        return {
            (_label(e["entity"], e.get("role")), e["start"], e["end"])
            for e in p.entities
            if e.get("role")
            or e.get("group")
            or (e["entity"], e["start"], e["end"]) not in labelled
        }
    return {
        (_label(e["entity"], e.get("role")), e["start"], e["end"])
        for e in [*p.entities, *p.shadowed]
        if e.get("extractor", extractor) == extractor
    }


def entity_extractors(pipeline: NLUPipeline) -> list[str]:
    """Names of the pipeline's components that add entities, in order."""
    names: list[str] = []
    for component in pipeline.components:
        if getattr(component, "extracts_entities", False) and component.name not in names:
            names.append(component.name)
    return names


def _prf(c: dict[str, int]) -> dict[str, Any]:
    precision = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else 0.0
    recall = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1-score": round(f1, 4),
        "support": c["tp"] + c["fn"],
    }


def evaluate(pipeline: NLUPipeline, examples: list[Example]) -> NLUEvaluation:
    result = NLUEvaluation()
    for example in examples:
        message = pipeline.process(example.text)
        intent = message.intent or {}
        ranking = message.intent_ranking
        classifier_top = next((r["name"] for r in ranking if r["name"] != FALLBACK_INTENT), None)
        result.predictions.append(
            Prediction(
                example,
                intent.get("name"),
                float(intent.get("confidence", 0.0)),
                classifier_top,
                message.entities,
                message.shadowed,
                _selected_key(message.extras.get("response_selector"), example.base_intent),
            )
        )
    return result


def _selected_key(selector: Any, base_intent: str) -> str | None:
    """The selected key for ``base_intent``: its own selector, else ``default``."""
    if not isinstance(selector, dict):
        return None
    chosen = selector.get(base_intent) or selector.get("default")
    if not isinstance(chosen, dict):
        return None
    key = chosen.get("response", {}).get("intent_response_key")
    return str(key) if key else None


def write_reports(result: NLUEvaluation, out_dir: Path, extractor_names: list[str]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)

    def dump(name: str, data: Any) -> None:
        (out_dir / name).write_text(
            json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8"
        )

    dump("intent_report.json", result.intent_report())
    dump("intent_errors.json", result.intent_errors())
    responses = result.response_selection_report()
    if responses is not None:
        dump("response_selection_report.json", responses)
    entity_report = result.entity_report()
    dump("entity_report.json", entity_report)
    for name in extractor_names:
        dump(f"{name}_report.json", result.entity_report(name))
    dump(
        "summary.json",
        {
            "n": len(result.predictions),
            "intent_accuracy": round(result.accuracy, 4),
            "intent_macro_f1": round(result.macro_f1, 4),
            "entity_f1": round(result.entity_f1, 4),
            "entity_f1_per_extractor": {
                k: round(v, 4) for k, v in result.extractor_f1(extractor_names).items()
            },
            "overlap_with_training": result.overlap(),
        },
    )
    plot_confusion_matrix(result, out_dir / "intent_confusion_matrix.png")
    plot_histogram(result, out_dir / "intent_histogram.png")


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_confusion_matrix(result: NLUEvaluation, path: Path) -> None:
    from sklearn.metrics import ConfusionMatrixDisplay

    plt = _pyplot()
    labels = sorted(set(result.gold) | set(result.predicted))
    fig, ax = plt.subplots(figsize=(max(6, len(labels) * 0.7), max(5, len(labels) * 0.6)))
    ConfusionMatrixDisplay.from_predictions(
        result.gold,
        result.predicted,
        labels=labels,
        ax=ax,
        colorbar=False,
        xticks_rotation=60,
        cmap="Blues",
    )
    ax.set_title(f"Intent confusion matrix (accuracy {result.accuracy:.3f})")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_histogram(result: NLUEvaluation, path: Path) -> None:
    plt = _pyplot()
    hits = [p.confidence for p in result.predictions if p.intent == p.example.base_intent]
    misses = [p.confidence for p in result.predictions if p.intent != p.example.base_intent]
    fig, ax = plt.subplots(figsize=(7, 4))
    bins = [i / 20 for i in range(21)]
    ax.hist(
        [hits, misses],
        bins=bins,
        stacked=True,
        color=["#2b8a3e", "#c92a2a"],
        label=[f"correct ({len(hits)})", f"wrong ({len(misses)})"],
    )
    ax.set_xlabel("confidence")
    ax.set_ylabel("utterances")
    ax.set_title("Intent prediction confidence")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


@dataclass
class CrossValidation:
    folds: int
    accuracy: list[float]
    macro_f1: list[float]
    entity_f1: list[float]
    train_accuracy: list[float]
    pooled: NLUEvaluation

    def summary(self) -> dict[str, Any]:
        def stat(values: list[float]) -> dict[str, float]:
            return {
                "mean": round(statistics.mean(values), 4),
                "std": round(statistics.pstdev(values), 4),
            }

        return {
            "folds": self.folds,
            "test": {
                "intent_accuracy": stat(self.accuracy),
                "intent_macro_f1": stat(self.macro_f1),
                "entity_f1": stat(self.entity_f1),
            },
            "train": {"intent_accuracy": stat(self.train_accuracy)},
        }


def cross_validate(
    data: TrainingData,
    make_pipeline: Callable[[], NLUPipeline],
    folds: int,
    progress: Callable[[int, int], None] | None = None,
) -> CrossValidation:
    from sklearn.model_selection import StratifiedKFold

    labels = [e.base_intent for e in data.examples]
    splitter = StratifiedKFold(folds, shuffle=True, random_state=42)
    cv = CrossValidation(folds, [], [], [], [], NLUEvaluation())
    for fold, (train_idx, test_idx) in enumerate(splitter.split(labels, labels), 1):
        if progress:
            progress(fold, folds)
        train_data = data.subset(list(train_idx))
        pipeline = make_pipeline()
        pipeline.train(train_data)
        test = evaluate(pipeline, [data.examples[i] for i in test_idx])
        train = evaluate(pipeline, train_data.examples)
        cv.accuracy.append(test.accuracy)
        cv.macro_f1.append(test.macro_f1)
        cv.entity_f1.append(test.entity_f1)
        cv.train_accuracy.append(train.accuracy)
        cv.pooled.predictions.extend(test.predictions)
    return cv
