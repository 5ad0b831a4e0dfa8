"""Faults under load, bounded (``bench/soak.py`` is the full-size run): two ``bot run``
instances behind nginx, PostgreSQL and Redis through TCP proxies that cut and restore their
connections, a remote action server. Clients retry with ``metadata.message_id``; after each
run every acknowledged turn is in the store exactly once and in order.

Skips with the reason when nginx, PostgreSQL or Redis is missing."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from backends import pg_problem, pg_url, redis_problem
from test_server_project import TrainedBot, trained_bot

from bench.soak import (
    NGINX,
    Deployment,
    LoadResult,
    actions_fault,
    check_store,
    kill_fault,
    polite_failures,
    proxy_fault,
    run_load,
)

__all__ = ["trained_bot"]
CONVERSATIONS, TURNS = 20, 5
OUTAGE = 3.0  # seconds


@pytest.fixture(scope="module")
def deployment(
    trained_bot: TrainedBot, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    if not Path(NGINX).exists():
        pytest.skip(f"nginx not installed (looked for {NGINX})")
    problem = pg_problem() or redis_problem()
    if problem:
        pytest.skip(problem)
    work = tmp_path_factory.mktemp("faults")
    with Deployment(trained_bot.root, work, instances=2, actions=True, pg_url=pg_url()) as running:
        yield running


class NewLog:
    """What the instances logged since it was made."""

    def __init__(self, deployment: Deployment) -> None:
        self.paths = [bot.log for bot in deployment.bots]
        self.sizes = [path.stat().st_size for path in self.paths]

    def per_instance(self) -> list[str]:
        texts = []
        for path, size in zip(self.paths, self.sizes, strict=True):
            with path.open("rb") as f:
                f.seek(size)
                texts.append(f.read().decode("utf-8", "replace"))
        return texts


def load(deployment: Deployment, fault: object) -> tuple[LoadResult, dict[str, object]]:
    prefix, result = asyncio.run(
        run_load(deployment.url, CONVERSATIONS, TURNS, fault=fault)  # type: ignore[arg-type]
    )
    figures = result.figures()
    check = check_store(deployment.stored_messages(prefix), result)
    assert len(result.acked) == CONVERSATIONS * TURNS, (figures, deployment.logs())
    assert check.ok, (check, figures)
    return result, figures


def test_postgres_cut_is_503_with_retry_after_and_recovers(deployment: Deployment) -> None:
    assert deployment.pg_proxy is not None
    log = NewLog(deployment)
    result, figures = load(deployment, proxy_fault(deployment.pg_proxy, OUTAGE))
    assert result.bare_503 == 0, figures  # every 503 had Retry-After and a JSON message
    during = figures["errors_during"]
    assert isinstance(during, dict) and during.get("http_503", 0) > 0, figures
    assert set(during) <= {"http_503"}, figures  # never a 500, a hang or a reset
    assert figures["errors_after"] == {}, figures  # back by itself
    for text in log.per_instance():
        lines = [line for line in text.splitlines() if "database unavailable" in line]
        assert len(lines) <= 2, text  # one line per outage, not one per request
        assert "Traceback" not in text, text


def test_redis_cut_degrades_without_errors(deployment: Deployment) -> None:
    assert deployment.redis_proxy is not None
    log = NewLog(deployment)
    result, figures = load(deployment, proxy_fault(deployment.redis_proxy, OUTAGE))
    assert result.errors == [], figures  # locks, limits and message_ids per process
    for text in log.per_instance():
        lines = [line for line in text.splitlines() if "Redis unavailable" in line]
        assert len(lines) <= 4, text  # once per use and outage: locks, limits, bus
        assert "Traceback" not in text, text


def test_a_killed_action_server_gives_the_polite_failure_and_the_handoff(
    deployment: Deployment,
) -> None:
    result, figures = load(deployment, actions_fault(deployment, OUTAGE))
    assert result.errors == [], figures
    assert polite_failures(result) > 0, figures  # 抱歉… with the 转人工 button


def test_a_killed_instance_loses_and_doubles_nothing(deployment: Deployment) -> None:
    _result, figures = load(deployment, kill_fault(deployment, index=0, down=1.0))
    errors = figures["errors_during"]
    assert isinstance(errors, dict)
    assert not [kind for kind in errors if kind == "http_500"], figures
