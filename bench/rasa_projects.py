"""Rasa 3.x projects as they are: training time and own test stories per project.

Each folder of ``tests/rasa_projects/`` is copied unchanged into a temporary folder, trained
with ``python -m bot train`` (a fresh process, as a user runs it) and tested with
``python -m bot test core`` on its own ``tests/test_stories.yml``. A project whose ``endpoints.yml``
names an action server gets ``bot run actions`` started beside it. Prints one row per project:
training and test seconds (wall, including start-up), stories passed, action accuracy.

Run: ``.venv/bin/python bench/rasa_projects.py [--project NAME ...]`` from the repository root.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import yaml

ROOT = Path(__file__).resolve().parents[1]
PROJECTS = ROOT / "tests" / "rasa_projects"


def bot(args: list[str], cwd: Path) -> tuple[int, str, float]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "bot", *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    return done.returncode, done.stdout + done.stderr, time.perf_counter() - started


def start_action_server(root: Path) -> subprocess.Popen[bytes] | None:
    """``bot run actions`` when the project's endpoints.yml names an action server, as a Rasa
    user starts ``rasa run actions`` beside ``rasa test``; ``None`` without one."""
    endpoints = root / "endpoints.yml"
    data = yaml.safe_load(endpoints.read_text("utf-8")) if endpoints.is_file() else None
    url = ((data or {}).get("action_endpoint") or {}).get("url")
    if not url:
        return None
    parts = urlsplit(url)
    server = subprocess.Popen(
        [sys.executable, "-m", "bot", "run", "actions", "--port", str(parts.port or 5055)],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    health = f"{parts.scheme}://{parts.hostname}:{parts.port or 5055}/health"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(health, timeout=1):
                return server
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    server.kill()
    raise SystemExit(f"the action server of {root.name} did not start")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", action="append", help="only these projects")
    args = parser.parse_args()
    names = args.project or sorted(
        p.name for p in PROJECTS.iterdir() if (p / "config.yml").is_file()
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            root = Path(tmp) / name
            shutil.copytree(PROJECTS / name, root)
            code, out, train_s = bot(["train"], root)
            if code != 0:
                print(f"{name}: bot train failed:\n{out}")
                return 1
            actions = start_action_server(root)
            try:
                code, out, test_s = bot(["test", "core", "--out", "results"], root)
            finally:
                if actions is not None:
                    actions.terminate()
                    actions.wait(10)
            report = json.loads((root / "results" / "story_report.json").read_text("utf-8"))
            stories = report["stories"]
            passed = sum(1 for s in stories if s["passed"])
            rows.append(
                (name, train_s, test_s, passed, len(stories), report.get("action_accuracy"))
            )
    print(f"{'project':<22} {'train s':>8} {'test s':>7} {'stories':>9} {'action acc':>11}")
    for name, train_s, test_s, passed, total, accuracy in rows:
        acc = f"{accuracy:.3f}" if isinstance(accuracy, float) else "-"
        print(f"{name:<22} {train_s:>8.1f} {test_s:>7.1f} {passed:>4}/{total:<4} {acc:>11}")
    return 0 if all(p == t for _, _, _, p, t, _ in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
