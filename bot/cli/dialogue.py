"""``bot shell`` (the whole assistant) and ``bot test core`` (test stories)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any


def _format(message: dict[str, Any]) -> str:
    lines = []
    if message.get("text"):
        lines.append(f"🤖 {message['text']}")
    for button in message.get("buttons") or []:
        lines.append(f"   [{button.get('title')}] → {button.get('payload')}")
    if message.get("image"):
        lines.append(f"   (image) {message['image']}")
    if message.get("custom"):
        lines.append(f"   (custom) {message['custom']}")
    return "\n".join(lines)


def run_dialogue_shell(args: argparse.Namespace) -> int:
    from bot.agent import Agent
    from bot.cli.options import model_path, project_from_args
    from bot.core.messages import UserMessage

    project = project_from_args(args)
    agent = Agent.load(project, model_path(args))
    interactive = sys.stdin.isatty()

    async def turn(text: str) -> None:
        result = await agent.handle(UserMessage(text, args.sender, "shell", {}, args.customer))
        if args.debug:
            intent = result.parse_data.get("intent") or {}
            print(
                f"   · intent {intent.get('name')} ({float(intent.get('confidence') or 0):.2f})"
                + "".join(
                    f" · {e['entity']}={e['value']}"
                    for e in result.parse_data.get("entities") or []
                )
            )
            print("   · actions " + ", ".join(f"{a} [{p} {c:.2f}]" for a, p, c in result.actions))
        for message in result.messages:
            print(_format(message), flush=True)

    async def loop() -> None:
        if interactive:
            print(f"示例银行 assistant ({agent.model.meta.name}). /exit or Ctrl-D to quit.")
        while True:
            try:
                text = input("你: ") if interactive else sys.stdin.readline()
            except EOFError:
                break
            if not interactive and text == "":
                break
            text = text.rstrip("\r\n")
            if text.strip() in {"/exit", "/quit"}:
                break
            if not interactive:
                print(f"你: {text}")
            await turn(text)

    asyncio.run(loop())
    return 0


def run_story_tests(args: argparse.Namespace, optional: bool = False) -> int:
    """Run the test stories; with ``optional`` (``bot test`` without a target) a project
    without test stories or without a dialogue model is reported and skipped."""
    from rich.console import Console

    from bot.agent import create_executor
    from bot.cli.options import model_path, project_from_args
    from bot.endpoints import read_endpoints
    from bot.evaluation.stories import run_story, write_reports
    from bot.model import load_model
    from bot.training.story_reader import load_test_stories

    project = project_from_args(args)
    console = Console()
    source = Path(args.stories) if args.stories else project.test_stories_path
    if not source.is_absolute():
        source = project.root / source
    if source.is_dir():
        paths = sorted(p for p in source.rglob("*") if p.suffix in {".yml", ".yaml"})
    elif source.is_file():
        paths = [source]
    else:
        if optional:
            console.print(f"No test stories at {source}; dialogue tests skipped.")
            return 0
        console.print(f"error: no test stories at {source}", style="red")
        return 1
    stories, problems = load_test_stories(paths, project.root)
    errors = [p for p in problems if p.level == "error"]
    for problem in errors:
        console.print(str(problem), style="red")
    if errors:
        return 1
    if not stories:
        if optional:
            console.print(f"No test stories in {source}; dialogue tests skipped.")
            return 0
        console.print(
            f"error: no test stories in {source} (files with 'stories:' whose "
            "steps have 'user:' or 'intent:')",
            style="red",
        )
        return 1
    model = load_model(model_path(args) or project.models_dir)
    if (model.core is None or model.domain is None) and optional:
        console.print("The model has no dialogue part; dialogue tests skipped.")
        return 0
    if model.core is None or model.domain is None:
        console.print("error: the model has no dialogue part; run 'bot train'", style="red")
        return 1
    executor = create_executor(project, read_endpoints(project), set(model.domain.actions))

    async def run_all() -> list[Any]:
        return [await run_story(story, model, executor) for story in stories]

    results = asyncio.run(run_all())
    out = Path(args.out)
    if not out.is_absolute():
        out = project.root / out
    report = write_reports(results, out)
    for result in results:
        if not result.passed:
            console.print(
                f"✗ {result.story.name} ({result.story.source}): {result.failure}", style="red"
            )
    console.print(
        f"{report['passed']}/{report['total']} test stories passed · action accuracy "
        f"{report['action_accuracy']:.4f} · reports in {out}"
    )
    return 0 if report["failed"] == 0 else 1
