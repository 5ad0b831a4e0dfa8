"""The test stories (tests/stories) in both action modes of issue 6, and an unreachable or
silent action server.

The project (config, domain, NLU data, stories, actions, knowledge-base sources, test
stories) is copied to a temporary folder, its sandbox bank is reset and it is trained once.
Then the whole story suite runs

(a) with the actions in-process (no ``endpoints.yml``), and
(b) against ``bot run actions`` (rasa_sdk's action server) started on a free port, with
    ``action_endpoint`` in ``endpoints.yml``;

both must pass every story. ``bot test core`` runs as a subprocess with ``BOT_PROJECT`` set
to the copy: ``actions/common.py`` reads ``BOT_PROJECT`` when it is imported and caches its
bank backend, so a fresh process is the only way to be sure the copy's actions and sandbox
are the ones used (other tests of this session import other ``actions`` packages).

Finally, with ``action_endpoint`` pointing at a closed port (and at a server that accepts
connections but never answers), a balance question gets the polite failure message with a
转人工 button, and the conversation goes on.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

# The engine's built-in utter_action_failed (bot/resources/responses/engine.yml), as sent.
ACTION_FAILED_TEXT = (
    "抱歉，系统暂时无法完成您的请求，请稍后再试。如需帮助，可以点击“转人工”由人工客服为您服务。"
)
HUMAN_BUTTON = {"title": "转人工", "payload": "/request_human"}

REPO = Path(__file__).resolve().parents[1]
COPIED = (
    "config.yml",
    "domain.yml",
    "nlu_data",
    "sentiment",
    "stories",
    "actions",
    "kb_index/sources",
    "tests/stories",
)
SUITE_TIMEOUT = 900  # seconds for one `bot test core` run (100+ stories, NLU and actions)
SERVER_START_TIMEOUT = 90.0

pytestmark = pytest.mark.slow


def _env(project: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["BOT_PROJECT"] = str(project)
    for name in ("BOT_BANK_URL", "BOT_BANK_TOKEN"):  # always the copy's sandbox
        env.pop(name, None)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    return env


def _bot(
    project: Path, *args: str, timeout: float = SUITE_TIMEOUT
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args, "--project", str(project)],
        cwd=project,
        env=_env(project),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _story_count(folder: Path) -> int:
    count = 0
    for path in sorted(folder.rglob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        count += len(data.get("stories") or [])
    return count


def _write_endpoints(project: Path, url: str, timeout: float) -> None:
    (project / "endpoints.yml").write_text(
        yaml.safe_dump({"action_endpoint": {"url": url, "timeout": timeout}}),
        encoding="utf-8",
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("action_modes")
    for name in COPIED:
        source = REPO / name
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            shutil.copy(source, target)
    reset = _bot(root, "sandbox", "reset", timeout=120)
    assert reset.returncode == 0, reset.stdout + reset.stderr
    trained = _bot(root, "train", timeout=900)
    assert trained.returncode == 0, trained.stdout + trained.stderr
    assert list((root / "models").glob("*.tar.gz")), "bot train wrote no model"
    return root


@pytest.fixture
def no_endpoints(project: Path) -> Iterator[Path]:
    endpoints = project / "endpoints.yml"
    endpoints.unlink(missing_ok=True)
    yield project
    endpoints.unlink(missing_ok=True)


def _run_suite(project: Path, out: str) -> dict:
    # Every run starts from the seeded sandbox (stories freeze cards).
    reset = _bot(project, "sandbox", "reset", timeout=120)
    assert reset.returncode == 0, reset.stdout + reset.stderr
    done = _bot(project, "test", "core", "--out", out)
    report_path = project / out / "story_report.json"
    assert report_path.is_file(), done.stdout + done.stderr
    report = json.loads(report_path.read_text(encoding="utf-8"))
    failures = [f"{s['name']}: {s['failure']}" for s in report["stories"] if not s["passed"]]
    assert not failures, "\n".join(failures)
    assert done.returncode == 0, done.stdout + done.stderr
    assert report["total"] == _story_count(project / "tests" / "stories")
    assert report["passed"] == report["total"] > 0
    # A failed custom action is still listed as run (with the polite failure message), so
    # the action names alone would not notice an action server that is down.
    failed_turns = [
        f"{story['name']}: {turn['user'].strip()}"
        for story in report["stories"]
        for turn in story["transcript"]
        if ACTION_FAILED_TEXT in turn["bot"]
    ]
    assert not failed_turns, "custom actions failed in:\n" + "\n".join(failed_turns)
    return report


def test_stories_pass_with_in_process_actions(no_endpoints: Path) -> None:
    report = _run_suite(no_endpoints, "results/in_process")
    # The actions really ran in-process against the sandbox: a verified balance answer.
    answers = [
        text
        for story in report["stories"]
        if story["name"] == "balance of a customer with one account is answered directly"
        for turn in story["transcript"]
        for text in turn["bot"]
    ]
    assert any("尾号8888" in (t or "") and "128,000.00" in (t or "") for t in answers), answers


@pytest.fixture
def action_server(no_endpoints: Path) -> Iterator[str]:
    project = no_endpoints
    port = _free_port()
    log = (project / f"action_server_{port}.log").open("w", encoding="utf-8")
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bot",
            "run",
            "actions",
            "--port",
            str(port),
            "--project",
            str(project),
        ],
        cwd=project,
        env=_env(project),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while True:
            assert server.poll() is None, f"the action server exited with {server.returncode}: " + (
                project / f"action_server_{port}.log"
            ).read_text(encoding="utf-8")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            assert time.monotonic() < deadline, "the action server did not come up"
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/webhook"
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=15)
        log.close()


def test_stories_pass_with_the_action_server(no_endpoints: Path, action_server: str) -> None:
    project = no_endpoints
    # A generous timeout: the first calls load the knowledge base in the server.
    _write_endpoints(project, action_server, 10.0)
    report = _run_suite(project, "results/action_server")
    answers = [
        text
        for story in report["stories"]
        if story["name"] == "progress by application id"
        for turn in story["transcript"]
        for text in turn["bot"]
    ]
    assert any("L20261101001" in (t or "") and "风控审批" in (t or "") for t in answers), answers


def _ask_balance(project: Path) -> tuple[list[dict], list[dict]]:
    from bot.agent import Agent
    from bot.core.tracker_store import InMemoryTrackerStore
    from bot.project import Project

    agent = Agent.load(Project(project), tracker_store=InMemoryTrackerStore(), seed=7)

    async def talk() -> tuple[list[dict], list[dict]]:
        first = await agent.handle_text("查下我的余额", "down-1", customer_id="C1001")
        then = await agent.handle_text("您好啊", "down-1", customer_id="C1001")
        return first, then

    return asyncio.run(talk())


def _assert_polite_failure(first: list[dict], then: list[dict]) -> None:
    assert [m.get("text") for m in first] == [ACTION_FAILED_TEXT], first
    assert first[0].get("buttons") == [HUMAN_BUTTON]
    # Nothing crashed: the conversation goes on (the greeting is a response, no action server).
    assert then and then[0].get("text", "").startswith("您好"), then


def test_closed_action_server_port_gives_the_polite_failure(no_endpoints: Path) -> None:
    project = no_endpoints
    _write_endpoints(project, f"http://127.0.0.1:{_free_port()}/webhook", 1.0)
    _assert_polite_failure(*_ask_balance(project))


def test_silent_action_server_gives_the_polite_failure(no_endpoints: Path) -> None:
    """A server that accepts the connection but never answers: the timeout applies."""
    project = no_endpoints
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:  # hold the connections open without ever replying
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
                accepted.append(conn)
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        port = listener.getsockname()[1]
        _write_endpoints(project, f"http://127.0.0.1:{port}/webhook", 1.0)
        _assert_polite_failure(*_ask_balance(project))
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in accepted:
            conn.close()
        listener.close()
