"""``bot train``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    from bot.cli.options import add_project_options

    parser = sub.add_parser(
        "train",
        help="train the model (skipped when nothing changed)",
        description="Train the NLU pipeline and the dialogue policies from config.yml, the "
        "domain and the training data (data/, nlu_data/, stories/ or --data) into models/. "
        "Skips training when the data and config fingerprint is unchanged.",
    )
    add_project_options(parser, training=True, model=False)
    parser.add_argument("--force", action="store_true", help="train even if nothing changed")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from bot.cli.options import project_from_args
    from bot.config import describe_defaults, load_config
    from bot.train import train

    project = project_from_args(args)
    for line in describe_defaults(load_config(project.config_file, project.root)):
        print(line, flush=True)
    console = Console(stderr=True)
    with Progress(
        TextColumn("[bold]training[/bold] {task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("loading data", total=None)

        def report(stage: str, done: int, total: int) -> None:
            progress.update(task, description=stage, completed=done, total=total)

        result = train(project, force=args.force, progress=report)
    for note in result.notes:
        print(note)
    if result.kb is not None:
        kb = result.kb
        if kb.skipped:
            print("Knowledge base unchanged; not rebuilt.")
        else:
            print(
                f"Knowledge base: {kb.entries} entries, {kb.variants} questions indexed "
                f"({kb.index_kind}) in {kb.seconds:.1f} s"
            )
    if result.skipped:
        print(
            f"Nothing changed since {result.archive.name}; no training needed (--force to retrain)."
        )
    else:
        size_mb = result.archive.stat().st_size / 1e6
        print(
            f"Trained on {result.examples} examples of {result.intents} intents in "
            f"{result.seconds:.1f} s → {_shown(result.archive, project.root)} "
            f"({size_mb:.1f} MB)"
        )
    return 0


def _shown(path: Path, root: Path) -> Path:
    return path.relative_to(root) if path.is_relative_to(root) else path
