"""/metrics with several workers: prometheus-client's multiprocess mode sums every worker's
counts (``PROMETHEUS_MULTIPROC_DIR``, set by ``bot run --workers N``). Each worker is a real
process here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

WORKER = """
from bot.core.messages import TurnResult
from bot.server.metrics import BotMetrics
m = BotMetrics()
for _ in range({turns}):
    m.observe_turn("rest", 0.001, TurnResult([], [], {{"intent": {{"name": "faq"}}}}, []))
print(m.render().decode())
"""


def run_worker(turns: int, folder: Path) -> str:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    done = subprocess.run(
        [sys.executable, "-c", WORKER.format(turns=turns)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return done.stdout


def test_metrics_are_summed_over_worker_processes(tmp_path: Path) -> None:
    run_worker(3, tmp_path)
    text = run_worker(2, tmp_path)  # the second worker reports both
    assert 'bot_turns_total{channel="rest"} 5.0' in text
    assert 'bot_intents_total{intent="faq"} 5.0' in text
    assert 'bot_turn_latency_seconds_count{channel="rest"} 5.0' in text
