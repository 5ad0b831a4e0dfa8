"""``bot visualize``: the stories as a graph image for trainers."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    from bot.cli.options import add_project_option

    visualize = sub.add_parser(
        "visualize",
        help="draw the stories as a graph",
        description="Expand checkpoints and 'or' steps, merge the stories' common beginnings "
        "and write the graph as a Graphviz .dot file and a PNG image. Intents, actions, slot "
        "events and active loops are drawn in different styles. Rules are not drawn.",
    )
    add_project_option(visualize)
    visualize.add_argument(
        "--data",
        metavar="PATH",
        nargs="+",
        action="extend",
        default=None,
        help="training data files or folders (default: data/, stories/)",
    )
    visualize.add_argument(
        "--stories",
        metavar="PATH",
        help="a story file or folder (default: the project's training data: data/, "
        "stories/ or --data)",
    )
    visualize.add_argument(
        "--out", metavar="FILE", default="stories.png", help="PNG image (default stories.png)"
    )
    visualize.add_argument(
        "--dot",
        metavar="FILE",
        default="stories.dot",
        help="Graphviz file, always written (default stories.dot)",
    )
    visualize.add_argument("--no-png", action="store_true", help="write only the .dot file")
    visualize.set_defaults(handler=run_visualize)


def _story_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.suffix in {".yml", ".yaml"})
    return []


def run_visualize(args: argparse.Namespace) -> int:
    from bot.cli.options import project_from_args
    from bot.errors import BotError
    from bot.training.story_graph import expand
    from bot.training.story_reader import load_story_files
    from bot.training.visualize import MAX_PNG_NODES, write_visualization

    project = project_from_args(args)
    source: Path | str
    if args.stories:
        source = Path(args.stories)
        files = _story_files(source)
    else:
        files = project.data_files()
        source = ", ".join(str(p) for p in project.training_paths()) or str(project.data_dir)
    stories, _, problems = load_story_files(files, project.root)
    for problem in problems:
        print(problem, file=sys.stderr)
    if not stories:
        raise BotError(f"no stories found in {source}; write '- story:' items under 'stories:'")
    flat, truncated = expand(stories)
    if truncated:
        print(f"warning: only the first {len(flat)} expanded stories are drawn", file=sys.stderr)
    png = None if args.no_png else Path(args.out)
    graph = write_visualization(flat, Path(args.dot), png)
    if png is not None and len(graph.nodes) > MAX_PNG_NODES:
        print(
            f"warning: {len(graph.nodes)} nodes are too many for a readable PNG (limit "
            f"{MAX_PNG_NODES}); open {args.dot} with Graphviz, or pick files with --stories",
            file=sys.stderr,
        )
        png = None
    written = f"{args.dot}" + ("" if png is None else f" and {png}")
    print(
        f"wrote {written}: {len(flat)} stories, {len(graph.nodes)} nodes, {len(graph.edges)} edges"
    )
    return 0
