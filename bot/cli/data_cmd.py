"""``bot data validate``."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    from bot.cli.options import add_project_options

    data = sub.add_parser("data", help="check the training data", description="Data tools.")
    data_sub = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    data_sub.required = True
    validate = data_sub.add_parser(
        "validate",
        help="check the training data against the domain",
        description="Check schema and consistency of the domain and the training data "
        "(data/, nlu_data/, stories/ or --data): unknown top-level keys, intents, entities and "
        "actions, duplicate examples, annotations that do not line up with tokens, empty "
        "intents and intents with too few examples, story conflicts. Exit code 1 on errors.",
    )
    add_project_options(validate, model=False)
    validate.add_argument(
        "--min-examples",
        type=int,
        default=10,
        help="warn about intents with fewer examples than this (default 10)",
    )
    validate.add_argument(
        "--fail-on-warnings", action="store_true", help="exit non-zero on warnings too"
    )
    validate.set_defaults(handler=run_validate)


def run_validate(args: argparse.Namespace) -> int:
    from bot.cli.options import project_from_args
    from bot.validation import validate_project

    project = project_from_args(args)
    problems = validate_project(project, min_examples=args.min_examples)
    errors = [p for p in problems if p.level == "error"]
    warnings = [p for p in problems if p.level == "warning"]
    for problem in problems:
        print(problem)
    print(f"{len(errors)} error(s), {len(warnings)} warning(s)")
    if errors or (warnings and args.fail_on_warnings):
        return 1
    return 0
