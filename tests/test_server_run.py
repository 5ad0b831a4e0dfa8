"""``bot run``: with several workers the managing process loads no model; every worker
answers; without a model the server says so and exits."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from test_server_project import TrainedBot, trained_bot

__all__ = ["trained_bot"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def descendants(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids = [int(k) for k in (task / "children").read_text().split()]
        except OSError:
            continue
        for kid in kids:
            found += [kid, *descendants(kid)]
    return found


def test_two_workers_answer_and_the_manager_loads_no_model(
    trained_bot: TrainedBot, tmp_path: Path
) -> None:
    port = free_port()
    env = {**os.environ, "BOT_DB_URL": f"sqlite:///{tmp_path}/t.db"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    log = (tmp_path / "server.log").open("wb")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bot",
            "run",
            "--port",
            str(port),
            "--workers",
            "2",
            "--project",
            str(trained_bot.root),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=trained_bot.root,
        start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        health = None
        while time.monotonic() < deadline:
            try:
                health = httpx.get(f"{base}/health", timeout=5)
                break
            except httpx.HTTPError:
                assert server.poll() is None, (tmp_path / "server.log").read_text()
                time.sleep(0.2)
        assert health is not None and health.status_code == 200
        assert health.json()["model"] == trained_bot.model.path.name.removesuffix(".tar.gz")
        for i in range(6):  # several connections: both workers get some
            with httpx.Client(timeout=30) as client:
                reply = client.post(
                    f"{base}/webhooks/rest/webhook",
                    json={"sender": f"w{i}", "message": "开户要带什么材料"},
                )
            assert reply.status_code == 200 and "身份证" in reply.json()[0]["text"]
        sizes = sorted(rss_kb(pid) for pid in descendants(server.pid))
        # two workers each hold a model; the manager (and Sanic's helpers) hold none
        assert len([s for s in sizes if s > 200_000]) == 2, sizes
        assert rss_kb(server.pid) < min(sizes[-2:]) / 2, (rss_kb(server.pid), sizes)
    finally:
        server.terminate()
        server.wait(30)
        log.close()
    assert server.returncode == 0


def test_no_model_is_a_clear_error(trained_bot: TrainedBot, tmp_path: Path) -> None:
    root = tmp_path / "bot"
    root.mkdir()
    for name in ("config.yml", "domain.yml"):
        shutil.copy(trained_bot.root / name, root / name)
    for workers in ("1", "2"):
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "bot",
                "run",
                "--port",
                str(free_port()),
                "--workers",
                workers,
                "--project",
                str(root),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=root,
        )
        assert done.returncode != 0
        assert "bot train" in done.stderr, done.stderr
