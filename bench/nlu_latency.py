"""NLU figures: training time, archive size, in-process parse latency, ``bot parse`` cold start.

Run: ``.venv/bin/python bench/nlu_latency.py`` from the project root (``make bench``).
Trains into a temporary copy of the project; prints a table and writes
``results/bench_nlu.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.model import load_model  # noqa: E402
from bot.project import Project  # noqa: E402
from bot.train import train  # noqa: E402
from bot.training import read_nlu_file  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=20, help="passes over the test set")
    parser.add_argument("--cold-runs", type=int, default=3, help="cold starts of 'bot parse'")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for name in ("config.yml", "domain.yml"):
            shutil.copy(ROOT / name, work / name)
        shutil.copytree(ROOT / "nlu_data", work / "nlu_data")
        shutil.copytree(ROOT / "sentiment", work / "sentiment")
        project = Project(work)

        started = time.perf_counter()
        result = train(project, force=True)
        train_seconds = time.perf_counter() - started
        archive_mb = result.archive.stat().st_size / 1e6

        model = load_model(result.archive)
        texts = [e.text for e in read_nlu_file(ROOT / "tests/data/nlu_test.yml").examples]
        for text in texts:  # warm-up
            model.nlu.parse(text)
        latencies = []
        loop_start = time.perf_counter()
        for _ in range(args.repeats):
            for text in texts:
                t0 = time.perf_counter()
                model.nlu.parse(text)
                latencies.append((time.perf_counter() - t0) * 1000)
        loop_seconds = time.perf_counter() - loop_start

        cold = []
        for _ in range(args.cold_runs):
            t0 = time.perf_counter()
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "bot",
                    "parse",
                    "查下尾号1234的余额",
                    "--project",
                    str(work),
                ],
                check=True,
                capture_output=True,
            )
            cold.append(time.perf_counter() - t0)

    figures = {
        "training_examples": result.examples,
        "training_seconds": round(train_seconds, 2),
        "archive_mb": round(archive_mb, 2),
        "parse_n": len(latencies),
        "parse_p50_ms": round(percentile(latencies, 50), 3),
        "parse_p90_ms": round(percentile(latencies, 90), 3),
        "parse_p99_ms": round(percentile(latencies, 99), 3),
        "parse_mean_ms": round(statistics.mean(latencies), 3),
        "parses_per_second": round(len(latencies) / loop_seconds, 1),
        "cold_start_parse_seconds_median": round(statistics.median(cold), 2),
        "cold_start_parse_seconds_max": round(max(cold), 2),
    }
    targets = {
        "training_seconds": 15,
        "archive_mb": 20,
        "parse_p50_ms": 1,
        "parse_p99_ms": 5,
        "cold_start_parse_seconds_max": 3,
    }
    print(f"{'figure':36} {'value':>10}  target")
    for key, value in figures.items():
        target = targets.get(key)
        mark = "" if target is None else (f"≤ {target}  " + ("ok" if value <= target else "MISSED"))
        print(f"{key:36} {value:>10}  {mark}")
    out = ROOT / "results"
    out.mkdir(exist_ok=True)
    (out / "bench_nlu.json").write_text(json.dumps(figures, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
