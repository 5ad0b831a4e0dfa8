"""Rasa 3.x projects as they are: training time and own test stories per project.

Each folder of ``tests/rasa_projects/`` is copied unchanged into a temporary folder, trained
with ``python -m bot train`` (a fresh process, as a user runs it) and tested with
``python -m bot test core`` on its own ``tests/test_stories.yml``. Prints one row per project:
NLU examples, training seconds (wall, including start-up), stories passed, action accuracy.

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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROJECTS = ROOT / "tests" / "rasa_projects"


def bot(args: list[str], cwd: Path) -> tuple[int, str, float]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "bot", *args], cwd=cwd, capture_output=True,
                          text=True, check=False)
    return done.returncode, done.stdout + done.stderr, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", action="append", help="only these projects")
    args = parser.parse_args()
    names = args.project or sorted(p.name for p in PROJECTS.iterdir()
                                   if (p / "config.yml").is_file())
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            root = Path(tmp) / name
            shutil.copytree(PROJECTS / name, root)
            code, out, train_s = bot(["train"], root)
            if code != 0:
                print(f"{name}: bot train failed:\n{out}")
                return 1
            code, out, test_s = bot(["test", "core", "--out", "results"], root)
            report = json.loads((root / "results" / "story_report.json").read_text("utf-8"))
            stories = report["stories"]
            passed = sum(1 for s in stories if s["passed"])
            rows.append((name, train_s, test_s, passed, len(stories),
                         report.get("action_accuracy")))
    print(f"{'project':<22} {'train s':>8} {'test s':>7} {'stories':>9} {'action acc':>11}")
    for name, train_s, test_s, passed, total, accuracy in rows:
        acc = f"{accuracy:.3f}" if isinstance(accuracy, float) else "-"
        print(f"{name:<22} {train_s:>8.1f} {test_s:>7.1f} {passed:>4}/{total:<4} {acc:>11}")
    return 0 if all(p == t for _, _, _, p, t, _ in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
