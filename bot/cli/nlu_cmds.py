"""``bot parse``, ``bot shell nlu`` and ``bot test nlu``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    from bot.cli.options import add_project_options

    parse = sub.add_parser(
        "parse",
        help="parse a message with the trained NLU model",
        description="Print the /model/parse JSON for TEXT. With '-', read one message per "
        "line from standard input and print one JSON object per line.",
    )
    add_project_options(parse)
    parse.add_argument("text", help="the message, or '-' to read lines from standard input")
    parse.set_defaults(handler=run_parse)

    shell = sub.add_parser(
        "shell",
        help="chat with the assistant in the terminal",
        description="'bot shell' talks to the whole assistant (NLU, policies, actions); "
        "'bot shell nlu' only shows the intent and entities of each message. When standard "
        "input is not a terminal, one customer message is read per line.",
    )
    add_project_options(shell)
    shell.add_argument(
        "target",
        nargs="?",
        default="core",
        choices=["core", "nlu"],
        help="core (default): the whole assistant; nlu: the NLU only",
    )
    shell.add_argument(
        "--debug",
        action="store_true",
        help="show the intent, entities and predicted actions of each turn",
    )
    shell.add_argument("--sender", default="shell", help="conversation id (default: shell)")
    shell.add_argument(
        "--customer", metavar="ID", help="verified customer id for this conversation, e.g. C1001"
    )
    shell.set_defaults(handler=run_shell)

    test = sub.add_parser(
        "test",
        help="evaluate the model on held-out data",
        description="'bot test nlu' evaluates intents and entities on tests/data/nlu_test.yml "
        "(or --nlu FILE), or by --cross-validation on the training data. 'bot test core' "
        "runs the test stories of tests/stories/, else of tests/ (Rasa's "
        "tests/test_stories.yml).",
    )
    add_project_options(test)
    test.add_argument(
        "target",
        nargs="?",
        default="all",
        choices=["all", "core", "nlu"],
        help="core: test stories; nlu: held-out NLU data; all (default): both",
    )
    test.add_argument(
        "--stories",
        metavar="PATH",
        default=None,
        help="test story file or folder (default: tests/stories/, else tests/)",
    )
    test.add_argument("--nlu", metavar="FILE", help="held-out NLU YAML file")
    test.add_argument("--out", metavar="DIR", default="results", help="report folder")
    test.add_argument("--cross-validation", action="store_true", help="k-fold cross-validation")
    test.add_argument("--folds", type=int, default=5, help="folds for cross-validation")
    test.set_defaults(handler=run_test)


def _load(args: argparse.Namespace) -> Any:
    from bot.cli.options import model_path, project_from_args
    from bot.model import load_model

    project = project_from_args(args)
    return load_model(model_path(args) or project.models_dir)


def _dumps(result: dict[str, Any]) -> str:
    return json.dumps(result, ensure_ascii=False)


def run_parse(args: argparse.Namespace) -> int:
    model = _load(args)
    if args.text != "-":
        print(json.dumps(model.nlu.parse(args.text), ensure_ascii=False, indent=2))
        return 0
    for line in _stdin_lines():
        print(_dumps(model.nlu.parse(line)), flush=True)
    return 0


def _stdin_lines() -> Iterator[str]:
    """Lines of standard input without their line ends. Bytes that are not UTF-8 (a GBK
    file, say) become U+FFFD instead of ending the command with a traceback."""
    reconfigure = getattr(sys.stdin, "reconfigure", None)
    if reconfigure is not None:
        reconfigure(errors="replace")
    for line in sys.stdin:
        yield line.rstrip("\r\n")


def _describe(result: dict[str, Any]) -> str:
    intent = result["intent"]
    lines = [f"  intent: {intent['name']} ({intent['confidence']:.2f})"]
    others = [r for r in result["intent_ranking"][1:4]]
    if others:
        lines.append(
            "  next:   " + ", ".join(f"{r['name']} ({r['confidence']:.2f})" for r in others)
        )
    for e in result["entities"]:
        surface = result["text"][e["start"] : e["end"]]
        lines.append(f"  entity: {e['entity']} = {e['value']!r}  ← {surface!r}")
    return "\n".join(lines)


def run_shell(args: argparse.Namespace) -> int:
    if args.target == "core":
        from bot.cli.dialogue import run_dialogue_shell

        return run_dialogue_shell(args)
    model = _load(args)
    if not sys.stdin.isatty():
        for line in _stdin_lines():
            print(_dumps(model.nlu.parse(line)), flush=True)
        return 0
    print(f"Model {model.meta.name}. Type a message; /exit or Ctrl-D to quit.")
    while True:
        try:
            text = input("你: ")
        except EOFError:
            print()
            return 0
        if text.strip() in {"/exit", "/quit"}:
            return 0
        print(_describe(model.nlu.parse(text)))


def run_test(args: argparse.Namespace) -> int:
    if args.target == "core":
        from bot.cli.dialogue import run_story_tests

        return run_story_tests(args)
    if args.target == "all":
        from bot.cli.dialogue import run_story_tests

        nlu_code = run_nlu_test(args, optional=True)
        core_code = run_story_tests(args, optional=True)
        return nlu_code or core_code
    return run_nlu_test(args)


def run_nlu_test(args: argparse.Namespace, optional: bool = False) -> int:
    """Evaluate the NLU; with ``optional`` (``bot test`` without a target) a project
    without an NLU test set (a Rasa project: test stories only) is reported and skipped."""
    from rich.console import Console
    from rich.table import Table

    from bot.cli.options import project_from_args
    from bot.config import load_config
    from bot.evaluation.nlu import cross_validate, entity_extractors, evaluate, write_reports
    from bot.nlu.pipeline import NLUPipeline
    from bot.train import load_training_data
    from bot.training import read_nlu_file

    project = project_from_args(args)
    console = Console()
    out = Path(args.out)
    if not out.is_absolute():
        out = project.root / out
    config = load_config(project.config_file, project.root)
    extractors = entity_extractors(NLUPipeline.from_config(config, project.root))

    if args.cross_validation:
        if args.folds < 2:
            raise SystemExit("error: --folds must be at least 2")
        data = load_training_data(project)
        cv = cross_validate(
            data,
            lambda: NLUPipeline.from_config(config, project.root),
            args.folds,
            lambda i, n: console.print(f"fold {i}/{n} ...", style="dim"),
        )
        write_reports(cv.pooled, out, extractors)
        summary = cv.summary()
        (out / "cross_validation.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
        table = Table(title=f"{args.folds}-fold cross-validation ({len(data.examples)} examples)")
        for column in ("metric", "test mean", "test std"):
            table.add_column(column)
        for metric, stat in summary["test"].items():
            table.add_row(metric, f"{stat['mean']:.4f}", f"{stat['std']:.4f}")
        train_acc = summary["train"]["intent_accuracy"]
        table.add_row(
            "train intent_accuracy", f"{train_acc['mean']:.4f}", f"{train_acc['std']:.4f}"
        )
        console.print(table)
        _print_extractor_f1(console, cv.pooled, extractors)
        console.print(f"Reports written to {out}")
        return 0

    test_file = Path(args.nlu) if args.nlu else project.nlu_test_file
    if not test_file.is_file():
        if optional and not args.nlu:
            console.print(
                f"No NLU test set at {test_file}; NLU evaluation skipped (--nlu FILE "
                "or --cross-validation)."
            )
            return 0
        raise SystemExit(f"error: test file {test_file} does not exist (use --nlu FILE)")
    test_data = read_nlu_file(test_file)
    if test_data.problems:
        for problem in test_data.problems:
            console.print(str(problem), style="red")
        return 1
    model = _load(args)
    extractors = entity_extractors(model.nlu)
    result = evaluate(model.nlu, test_data.examples)
    try:
        from bot.nlu.normalizer import normalise

        result.training_texts = frozenset(
            normalise(e.text)[0] for e in load_training_data(project).examples
        )
    except Exception:  # the training data is not needed to evaluate
        pass
    write_reports(result, out, extractors)
    report = result.intent_report()
    table = Table(
        title=f"NLU evaluation on {test_file.name} ({len(result.predictions)} utterances)"
    )
    for column in ("intent", "precision", "recall", "f1", "support"):
        table.add_column(column, justify="right" if column != "intent" else "left")
    for label in sorted(
        k for k in report if isinstance(report[k], dict) and "support" in report[k]
    ):
        row = report[label]
        table.add_row(
            label,
            f"{row['precision']:.3f}",
            f"{row['recall']:.3f}",
            f"{row['f1-score']:.3f}",
            str(int(row["support"])),
        )
    console.print(table)
    entity = result.entity_report()
    console.print(
        f"intent accuracy {result.accuracy:.4f}   macro-F1 {result.macro_f1:.4f}   "
        f"entity F1 {entity['micro avg']['f1-score']:.4f} "
        f"(P {entity['micro avg']['precision']:.4f}, R {entity['micro avg']['recall']:.4f})"
    )
    _print_extractor_f1(console, result, extractors)
    overlap = result.overlap()
    if result.training_texts:
        console.print(
            f"{overlap['also_in_training']} of {len(result.predictions)} test utterances also "
            f"occur in the training data; intent accuracy on the {overlap['unseen']} unseen: "
            f"{overlap['unseen_intent_accuracy']}"
        )
    console.print(f"Reports written to {out}")
    return 0


def _print_extractor_f1(console: Any, result: Any, extractors: list[str]) -> None:
    """One line per entity extractor (its own predictions only; roles as entity#role)."""
    if len(extractors) < 1:
        return
    for name in extractors:
        report = result.entity_report(name)["micro avg"]
        console.print(
            f"  {name}: entity F1 {report['f1-score']:.4f} "
            f"(P {report['precision']:.4f}, R {report['recall']:.4f}, support {report['support']})"
        )
