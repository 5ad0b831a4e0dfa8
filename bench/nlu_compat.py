"""Rasa-compatibility figures on the repository's data (training: ``nlu_data/``, held out:
``tests/data/nlu_test.yml``):

* entity F1 of the learned CRFEntityExtractor (characters and jieba tokens as units) next
  to the rule-based RegexEntityExtractor, and of both together;
* intent accuracy of the DIETClassifier substitute vs the shipped ``config.yml``;
* training time of a Rasa-style Chinese pipeline (JiebaTokenizer, LanguageModelFeaturizer
  bert-base-chinese, RegexFeaturizer, DIETClassifier, ResponseSelector, EntitySynonymMapper,
  no normaliser) on all examples and on 300.

Run: ``.venv/bin/python bench/nlu_compat.py`` from the project root. Prints a table and
writes ``results/bench_nlu_compat.json``.
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.config import BotConfig, load_config, parse_config  # noqa: E402
from bot.evaluation.nlu import entity_extractors, evaluate  # noqa: E402
from bot.nlu.pipeline import NLUPipeline  # noqa: E402
from bot.training import load_nlu_files, read_nlu_file  # noqa: E402
from bot.training.data import TrainingData  # noqa: E402

RASA_ZH = [
    {"name": "JiebaTokenizer"},
    {"name": "LanguageModelFeaturizer", "model_name": "bert", "model_weights": "bert-base-chinese"},
    {"name": "RegexFeaturizer"},
    {"name": "DIETClassifier", "epochs": 100},
    {"name": "ResponseSelector", "epochs": 100},
    {"name": "EntitySynonymMapper"},
    {"name": "FallbackClassifier", "threshold": 0.4, "ambiguity_threshold": 0.1},
]


def config(pipeline: list[dict[str, Any]]) -> BotConfig:
    return parse_config({"language": "zh", "pipeline": pipeline}, ROOT / "config.yml")


def run(name: str, cfg: BotConfig, data: TrainingData, test: TrainingData) -> dict[str, Any]:
    nlu = NLUPipeline.from_config(cfg, ROOT)
    started = time.perf_counter()
    nlu.train(data)
    seconds = time.perf_counter() - started
    result = evaluate(nlu, test.examples)
    extractors = entity_extractors(nlu)
    row = {
        "pipeline": name,
        "train_seconds": round(seconds, 2),
        "intent_accuracy": round(result.accuracy, 4),
        "entity_f1": round(result.entity_f1, 4),
        "entity_f1_per_extractor": {
            k: round(v, 4) for k, v in result.extractor_f1(extractors).items()
        },
    }
    print(
        f"{name:<44} train {seconds:6.2f} s   intent acc {result.accuracy:.4f}   "
        f"entity F1 {result.entity_f1:.4f}   "
        + "  ".join(f"{k} {v:.4f}" for k, v in row["entity_f1_per_extractor"].items()),
        flush=True,
    )
    return row


def main() -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="skip the other Rasa pipelines")
    args = parser.parse_args()
    data = load_nlu_files(sorted((ROOT / "nlu_data").glob("*.yml")), ROOT)
    test = read_nlu_file(ROOT / "tests/data/nlu_test.yml")
    shipped = load_config(ROOT / "config.yml")
    specs = [s.as_dict() for s in shipped.pipeline]
    diet = [
        {"name": "DIETClassifier", "C": 50} if s["name"] == "LogisticRegressionClassifier" else s
        for s in specs
    ]
    norm_jieba = [{"name": "ChineseTextNormalizer"}, {"name": "JiebaTokenizer"}]
    rows = [
        run("shipped config.yml", shipped, data, test),
        run("shipped, DIETClassifier for the classifier", config(diet), data, test),
        run(
            "RegexEntityExtractor alone",
            config([*norm_jieba, {"name": "RegexEntityExtractor"}]),
            data,
            test,
        ),
        run(
            "CRFEntityExtractor (characters)",
            config([*norm_jieba, {"name": "CRFEntityExtractor"}]),
            data,
            test,
        ),
        run(
            "CRFEntityExtractor (jieba tokens)",
            config([*norm_jieba, {"name": "CRFEntityExtractor", "granularity": "tokens"}]),
            data,
            test,
        ),
        run(
            "Regex + CRF (characters)",
            config([*norm_jieba, {"name": "RegexEntityExtractor"}, {"name": "CRFEntityExtractor"}]),
            data,
            test,
        ),
        run("Rasa-style zh pipeline (no normaliser)", config(RASA_ZH), data, test),
    ]
    if not args.quick:
        rasa_default_zh = [
            {"name": "JiebaTokenizer"},
            {"name": "RegexFeaturizer"},
            {"name": "LexicalSyntacticFeaturizer"},
            {"name": "CountVectorsFeaturizer"},
            {
                "name": "CountVectorsFeaturizer",
                "analyzer": "char_wb",
                "min_ngram": 1,
                "max_ngram": 4,
            },
            {"name": "DIETClassifier", "epochs": 100},
            {"name": "EntitySynonymMapper"},
        ]
        rows += [
            run("Rasa default featurizers + DIET on zh", config(rasa_default_zh), data, test),
            run(
                "CountVectors char_wb + SklearnIntentClassifier",
                config(
                    [
                        {"name": "JiebaTokenizer"},
                        {
                            "name": "CountVectorsFeaturizer",
                            "analyzer": "char_wb",
                            "min_ngram": 1,
                            "max_ngram": 4,
                        },
                        {"name": "SklearnIntentClassifier"},
                    ]
                ),
                data,
                test,
            ),
            run(
                "MITIE pipeline (substituted)",
                config(
                    [
                        {"name": "MitieNLP"},
                        {"name": "MitieTokenizer"},
                        {"name": "MitieFeaturizer"},
                        {"name": "MitieIntentClassifier"},
                        {"name": "MitieEntityExtractor"},
                    ]
                ),
                data,
                test,
            ),
            run(
                "SpacyNLP (blank) + SpacyFeaturizer + LR",
                config(
                    [
                        {"name": "SpacyNLP", "model": "zh_core_web_md"},
                        {"name": "SpacyTokenizer"},
                        {"name": "SpacyFeaturizer"},
                        {"name": "LogisticRegressionClassifier"},
                    ]
                ),
                data,
                test,
            ),
            run(
                "KeywordIntentClassifier",
                config([{"name": "ChineseTextNormalizer"}, {"name": "KeywordIntentClassifier"}]),
                data,
                test,
            ),
        ]
    sample = TrainingData(
        random.Random(7).sample(data.examples, 300), data.synonyms, data.regexes, data.lookups
    )
    rows.append(run("Rasa-style zh pipeline, 300 examples", config(RASA_ZH), sample, test))
    out = ROOT / "results" / "bench_nlu_compat.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "training_examples": len(data.examples),
                "test_examples": len(test.examples),
                "rows": rows,
            },
            ensure_ascii=False,
            indent=2,
        ),
        encoding="utf-8",
    )
    print(
        f"training examples {len(data.examples)}, held out {len(test.examples)}; written to {out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
