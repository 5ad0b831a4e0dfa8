"""Clarify before handing off: how many vague messages are handed off needlessly and how many
explicit asks for a person are missed, on ``tests/data/handoff_intent_set.yml`` (messages
written for the test, not in the NLU data), each the first message of a fresh conversation.

    .venv/bin/python bench/clarify.py [--set tests/data/handoff_intent_set.yml] [--verbose]

It trains a copy of the project (config, domain, NLU data, stories, actions and knowledge
base sources) in a temporary folder, then sends every message through the engine with the
project's handoff.yml (the handoff stage runs after each turn, as in the server): a message
counts as handed off when the conversation is paused or queued after it. Prints the counts,
the rates and, with ``--verbose``, every wrong decision with what the bot said.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from bot.agent import create_executor  # noqa: E402
from bot.core.lock_store import InMemoryLockStore  # noqa: E402
from bot.core.messages import UserMessage  # noqa: E402
from bot.core.processor import MessageProcessor  # noqa: E402
from bot.core.tracker_store import InMemoryTrackerStore  # noqa: E402
from bot.endpoints import read_endpoints  # noqa: E402
from bot.handoff.config import parse  # noqa: E402
from bot.handoff.factory import knowledge_search  # noqa: E402
from bot.handoff.service import HandoffService  # noqa: E402
from bot.handoff.store import HandoffStore  # noqa: E402
from bot.model import load_model  # noqa: E402
from bot.project import Project  # noqa: E402
from bot.train import train  # noqa: E402

COPY = ("nlu_data", "sentiment", "stories", "actions", "kb_index/sources")


def trained_copy(folder: Path) -> Path:
    root = folder / "bot"
    root.mkdir()
    for name in ("config.yml", "domain.yml"):
        shutil.copy(ROOT / name, root / name)
    for name in COPY:
        shutil.copytree(ROOT / name, root / name)
    train(Project(root))
    return root


async def decisions(root: Path, messages: list[str]) -> list[tuple[str, bool, str]]:
    """(message, handed off, what the bot said) per message."""
    model = load_model(sorted((root / "models").glob("*.tar.gz"))[-1])
    assert model.domain is not None and model.core is not None
    executor = create_executor(
        Project(root), read_endpoints(Project(root)), set(model.domain.actions)
    )
    processor = MessageProcessor(
        model.domain,
        model.core,
        model.nlu,
        InMemoryTrackerStore(),
        InMemoryLockStore(),
        executor,
        seed=1,
    )
    config = yaml.safe_load((ROOT / "handoff.yml").read_text(encoding="utf-8"))
    for group in config["groups"]:
        group["hours"] = {"time": "00:00-24:00"}
    config["queue"]["auto_assign"] = False
    search, category = knowledge_search(root)
    service = HandoffService(
        parse(config, {}),
        HandoffStore.from_url("sqlite://"),
        processor,
        search=search,
        categories=category,
    )
    processor.add_stage(service.stage)
    out = []
    for i, text in enumerate(messages):
        sender = f"c{i}"
        result = await processor.handle(UserMessage(text, sender_id=sender, input_channel="rest"))
        tracker = await processor.get_tracker(sender)
        queued = service.store.handoffs.latest(sender) is not None
        said = " | ".join(str(m.get("text") or "") for m in result.messages)
        out.append((text, tracker.paused or queued, said))
    await service.drain()
    return out


def measure(root: Path, data: dict[str, list[str]]) -> dict[str, Any]:
    vague, explicit = data["vague"], data["explicit"]
    got = asyncio.run(decisions(root, [*vague, *explicit]))
    needless = [(t, s) for t, off, s in got[: len(vague)] if off]
    missed = [(t, s) for t, off, s in got[len(vague) :] if not off]
    return {"vague": len(vague), "explicit": len(explicit), "needless": needless, "missed": missed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", type=Path, default=ROOT / "tests/data/handoff_intent_set.yml")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    data = yaml.safe_load(args.set.read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory() as tmp:
        figures = measure(trained_copy(Path(tmp)), data)
    n_vague, n_explicit = figures["vague"], figures["explicit"]
    needless, missed = figures["needless"], figures["missed"]
    print(f"messages: {n_vague + n_explicit} ({n_vague} vague, {n_explicit} explicit)")
    print(f"needless handoffs: {len(needless)}/{n_vague} ({len(needless) / n_vague:.1%})")
    print(f"missed explicit asks: {len(missed)}/{n_explicit} ({len(missed) / n_explicit:.1%})")
    if args.verbose:
        for text, said in needless:
            print(f"  needless: {text} -> {said}")
        for text, said in missed:
            print(f"  missed:   {text} -> {said}")


if __name__ == "__main__":
    main()
