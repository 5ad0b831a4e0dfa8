"""Several processes, for real: two ``bot run`` instances on one PostgreSQL (a fresh schema,
dropped afterwards) and one Redis, behind a real nginx running ``deploy/nginx.conf``
(rendered into a temporary folder). One conversation's messages go alternately to both
instances; the store holds each exactly once, in order. Also: the shipped deployment files
parse, and ``bot run --workers 2`` replaces a worker that was killed.

Skips with the reason when nginx, PostgreSQL or Redis is missing."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from backends import pg_problem, pg_url, redis_problem
from test_server_project import TrainedBot, trained_bot
from test_server_run import descendants, free_port

from bench.soak import NGINX, Deployment, check_store, render_nginx, run_load

__all__ = ["trained_bot"]
REPO = Path(__file__).resolve().parents[1]


def deployment_problem() -> str | None:
    if not Path(NGINX).exists():
        return f"nginx not installed (looked for {NGINX})"
    return pg_problem() or redis_problem()


@pytest.fixture(scope="module")
def deployment(
    trained_bot: TrainedBot, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    problem = deployment_problem()
    if problem:
        pytest.skip(problem)
    work = tmp_path_factory.mktemp("multiprocess")
    with Deployment(trained_bot.root, work, instances=2, pg_url=pg_url()) as running:
        yield running


def post(base: str, sender: str, text: str, message_id: str) -> httpx.Response:
    body = {"sender": sender, "message": text, "metadata": {"message_id": message_id}}
    return httpx.post(f"{base}/webhooks/rest/webhook", json=body, timeout=60)


def test_one_conversation_alternating_between_instances_is_stored_once_in_order(
    deployment: Deployment,
) -> None:
    first, second = deployment.bots
    sender = f"mp-{uuid.uuid4().hex[:8]}"  # Redis remembers message_ids for 10 minutes
    texts = ["你好", "开户要带什么材料", "信用卡怎么还款", "网点几点开门"] * 2
    answers = []
    for n, text in enumerate(texts):
        bot = (first, second)[n % 2]
        reply = post(bot.url, sender, text, f"a{n}")
        assert reply.status_code == 200, reply.text
        answers.append(reply.json())
        # the client did not get the answer and retries on the other instance: same replies
        other = (first, second)[(n + 1) % 2]
        retry = post(other.url, sender, text, f"a{n}")
        assert retry.status_code == 200 and retry.json() == answers[-1]
    assert "身份证" in answers[1][0]["text"]
    stored = deployment.stored_messages(sender)[sender]
    assert stored == [f"a{n}" for n in range(len(texts))]


def test_load_through_nginx_reaches_both_and_loses_nothing(deployment: Deployment) -> None:
    prefix, result = asyncio.run(run_load(deployment.url, 12, 4))
    assert len(result.acked) == 48, result.figures()
    assert not result.errors, result.figures()
    check = check_store(deployment.stored_messages(prefix), result)
    assert check.ok, check
    for bot in deployment.bots:  # nginx spread the conversations over both instances
        metrics = httpx.get(f"{bot.url}/metrics", timeout=10).text
        turns = re.search(r'^bot_turns_total\{channel="rest"\} (\d+)', metrics, re.M)
        assert turns is not None and float(turns.group(1)) > 0, metrics


def test_nginx_refuses_an_oversized_body_and_passes_the_bots_413(
    deployment: Deployment,
) -> None:
    huge = httpx.post(f"{deployment.url}/webhooks/rest/webhook", content=b"x" * 400_000, timeout=30)
    assert huge.status_code == 413  # nginx's cap (client_max_body_size)
    over = httpx.post(
        f"{deployment.url}/webhooks/rest/webhook",
        json={"sender": f"mp-big-{uuid.uuid4().hex[:8]}", "message": "x" * 100_000},
        timeout=30,
    )
    assert over.status_code == 413 and "larger than" in over.json()["error"]  # the bot's


def test_the_shipped_deployment_files_parse(tmp_path: Path) -> None:
    compose = yaml.safe_load((REPO / "deploy" / "compose.yml").read_text(encoding="utf-8"))
    assert {"bankbot1", "bankbot2", "nginx", "postgres", "redis"} <= set(compose["services"])
    for name in ("bankbot1", "bankbot2"):
        service = compose["services"][name]
        assert service["environment"]["BOT_REDIS_URL"].startswith("redis://")
        assert service["depends_on"]["postgres"] == {"condition": "service_healthy"}
    unit = (REPO / "deploy" / "bankbot@.service").read_text(encoding="utf-8")
    assert "--port %i" in unit and "Restart=always" in unit
    if not Path(NGINX).exists():
        pytest.skip(f"nginx not installed (looked for {NGINX}); compose and unit checked")
    template = (REPO / "deploy" / "nginx.conf").read_text(encoding="utf-8")
    conf = tmp_path / "nginx.conf"
    conf.write_text(render_nginx(template, free_port(), [free_port(), free_port()], tmp_path))
    checked = subprocess.run(
        [NGINX, "-t", "-p", str(tmp_path), "-c", str(conf), "-e", str(tmp_path / "e.log")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert checked.returncode == 0, checked.stderr


def test_a_killed_worker_is_logged_and_replaced(trained_bot: TrainedBot, tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "BOT_DB_URL": f"sqlite:///{tmp_path}/t.db", "PYTHONUNBUFFERED": "1"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    env.pop("BOT_REDIS_URL", None)
    log_path = tmp_path / "server.log"
    root = str(trained_bot.root)
    command = [sys.executable, "-m", "bot", "run", "--workers", "2", "--port", str(port)]
    command += ["--project", root]
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            command,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=root,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"

    def workers() -> set[int]:  # processes that answer HTTP hold a model (a large RSS)
        found = set()
        for pid in descendants(server.pid):
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            rss = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
            if rss > 200_000:
                found.add(pid)
        return found

    def wait(condition: object, timeout: float = 150) -> None:
        deadline = time.monotonic() + timeout
        while not condition():  # type: ignore[operator]
            assert server.poll() is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.3)

    def healthy() -> bool:
        try:
            return httpx.get(f"{base}/health", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        # both workers serving (a worker killed while it still loads is another case: see
        # docs/deployment.md, "Limits")
        wait(lambda: healthy() and len(workers()) == 2)
        wait(lambda: log_path.read_text().count("Worker ready") >= 2)
        before = workers()
        victim = min(before)
        os.kill(victim, signal.SIGKILL)
        wait(lambda: "died" in log_path.read_text())
        wait(lambda: len(workers()) == 2 and victim not in workers())
        wait(healthy)
        for n in range(4):
            reply = httpx.post(
                f"{base}/webhooks/rest/webhook",
                json={"sender": f"k{n}", "message": "你好"},
                timeout=60,
            )
            assert reply.status_code == 200
    finally:
        server.terminate()
        server.wait(40)
    text = log_path.read_text()
    died = [line for line in text.splitlines() if "died" in line]
    assert len(died) == 1 and f"pid {victim}" in died[0] and "signal 9" in died[0], text
    assert server.returncode == 0
