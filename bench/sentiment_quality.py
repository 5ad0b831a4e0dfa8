"""Sentiment figures: held-out quality and the per-message cost of ``SentimentAnalyzer``.

Run: ``.venv/bin/python bench/sentiment_quality.py`` from the project root (``make bench``).
Trains the NLU pipeline of ``config.yml`` in a temporary copy of the project, then prints
accuracy, macro-F1 and negative-class precision/recall on ``sentiment/test.yml`` (plus the
lexicon-only and n-grams-only ablations), the analyser's latency p50/p99 per message, and
the whole parse with and without it (interleaved, so machine load hits both alike).
Writes ``results/bench_sentiment.json``. ``--errors`` lists the misclassified utterances;
``--cv`` adds 5-fold cross-validation on the training data (how the defaults were chosen).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.evaluation.sentiment import evaluate  # noqa: E402
from bot.nlu.interfaces import Message  # noqa: E402
from bot.nlu.sentiment.analyzer import SentimentAnalyzer  # noqa: E402
from bot.nlu.sentiment.data import (  # noqa: E402
    SentimentExample,
    read_lexicon_file,
    read_sentiment_file,
)
from bot.nlu.sentiment.lexicon import BASE_LEXICON, merge_lexicons  # noqa: E402
from bot.project import Project  # noqa: E402
from bot.train import load_training_data, train_nlu_pipeline  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def quality(model: Any, test: list[SentimentExample]) -> dict[str, Any]:
    summary = evaluate(model, test).summary()
    keys = ("accuracy", "macro_f1", "negative_precision", "negative_recall")
    return {key: summary[key] for key in keys}


def cross_validation(
    train: list[SentimentExample], words: dict[str, list[str]], folds: int = 5
) -> dict[str, float]:
    from sklearn.model_selection import StratifiedKFold

    labels = [e.label for e in train]
    accuracy, macro_f1 = [], []
    for fit_idx, test_idx in StratifiedKFold(folds, shuffle=True, random_state=0).split(
        train, labels
    ):
        component = SentimentAnalyzer({})
        component.fit([train[i] for i in fit_idx], words)
        result = evaluate(component, [train[i] for i in test_idx])
        accuracy.append(result.accuracy)
        macro_f1.append(result.macro_f1)
    return {
        "cv_accuracy": round(sum(accuracy) / folds, 4),
        "cv_macro_f1": round(sum(macro_f1) / folds, 4),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=30, help="passes over the test set")
    parser.add_argument("--errors", action="store_true", help="list misclassified utterances")
    parser.add_argument("--cv", action="store_true", help="5-fold CV on the training data")
    args = parser.parse_args()

    test = read_sentiment_file(ROOT / "sentiment" / "test.yml")
    train = read_sentiment_file(ROOT / "sentiment" / "train.yml")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name in ("config.yml", "domain.yml"):
            shutil.copy(ROOT / name, work / name)
        for folder in ("nlu_data", "sentiment"):
            shutil.copytree(ROOT / folder, work / folder)
        project = Project(work)
        started = time.perf_counter()
        pipeline = train_nlu_pipeline(project, load_training_data(project))
        train_seconds = time.perf_counter() - started
        index = next(
            i for i, c in enumerate(pipeline.components) if isinstance(c, SentimentAnalyzer)
        )
        analyser = pipeline.components[index]
        assert isinstance(analyser, SentimentAnalyzer)
        started = time.perf_counter()
        analyser.fit(
            train,
            merge_lexicons(BASE_LEXICON, read_lexicon_file(work / "sentiment" / "lexicon.yml")),
        )
        fit_seconds = time.perf_counter() - started

    figures: dict[str, Any] = {"train_examples": len(train), "test_examples": len(test)}
    figures.update(quality(pipeline, test))
    result = evaluate(pipeline, test)
    figures["per_label"] = result.summary()["per_label"]
    figures["confusion"] = result.confusion()

    words = merge_lexicons(BASE_LEXICON, read_lexicon_file(ROOT / "sentiment" / "lexicon.yml"))
    lexicon_only = SentimentAnalyzer({}, SentimentAnalyzer.lexicon_only_state(words))
    ngrams_only = SentimentAnalyzer({"lexicon_weight": 0.0})
    ngrams_only.fit(train, words)
    figures["ablation"] = {
        "lexicon_only": quality(lexicon_only, test),
        "ngrams_only": quality(ngrams_only, test),
    }
    if args.cv:
        figures.update(cross_validation(train, words))

    # Latency: the analyser alone on normalised text, and whole parses with / without it.
    texts = [e.text for e in test]
    without = [c for c in pipeline.components if c is not analyser]
    norms = []
    for text in texts:
        message = Message(text)
        pipeline.components[0].process(message)
        norms.append(message)
    for text in texts:  # warm-up
        pipeline.parse(text)
    alone, full, base = [], [], []
    for _ in range(args.repeats):
        for text, normalised in zip(texts, norms, strict=True):
            t0 = time.perf_counter()
            analyser.sentiment(normalised)
            t1 = time.perf_counter()
            message = Message(text)
            for component in pipeline.components:
                component.process(message)
            message.parse_result()
            t2 = time.perf_counter()
            message = Message(text)
            for component in without:
                component.process(message)
            message.parse_result()
            t3 = time.perf_counter()
            alone.append((t1 - t0) * 1e6)
            full.append((t2 - t1) * 1e3)
            base.append((t3 - t2) * 1e3)
    figures.update(
        {
            "nlu_training_seconds": round(train_seconds, 2),
            "sentiment_fit_seconds": round(fit_seconds, 2),
            "analyser_p50_us": round(percentile(alone, 50), 1),
            "analyser_p99_us": round(percentile(alone, 99), 1),
            "parse_p50_ms": round(percentile(full, 50), 3),
            "parse_p99_ms": round(percentile(full, 99), 3),
            "parse_without_sentiment_p50_ms": round(percentile(base, 50), 3),
            "parse_without_sentiment_p99_ms": round(percentile(base, 99), 3),
        }
    )

    targets = {
        "accuracy": 0.85,
        "macro_f1": 0.85,
        "negative_precision": 0.85,
        "negative_recall": 0.80,
    }
    print(f"{'figure':36} {'value':>10}  target")
    for key, value in figures.items():
        if isinstance(value, dict):
            continue
        target = targets.get(key)
        mark = "" if target is None else (f"≥ {target}  " + ("ok" if value >= target else "MISSED"))
        print(f"{key:36} {value:>10}  {mark}")
    for name, figs in figures["ablation"].items():
        print(f"ablation {name:27} " + "  ".join(f"{k} {v}" for k, v in figs.items()))
    print("confusion (gold → predicted):", json.dumps(figures["confusion"]))
    if args.errors:
        for error in result.errors():
            print(
                f"  {error['gold']:>8} → {error['predicted']:<8} "
                f"P(neg)={error['negative']:.2f}  {error['text']}"
            )
    out = ROOT / "results"
    out.mkdir(exist_ok=True)
    (out / "bench_sentiment.json").write_text(
        json.dumps(figures, indent=2, ensure_ascii=False), encoding="utf-8"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
