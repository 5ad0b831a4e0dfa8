"""``python -m bot agents add/list/remove/tickets`` as a real subprocess, in a temporary copy
of the project (config.yml, domain.yml, handoff.yml) with ``$BOT_DB_URL`` in that folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.handoff.records import Handoff, new_id
from bot.handoff.store import HandoffStore

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "bot"
    root.mkdir()
    for name in ("config.yml", "domain.yml", "handoff.yml"):
        shutil.copy(REPO / name, root / name)
    return root


def db_url(project: Path) -> str:
    return f"sqlite:///{project / 'data' / 'agents.db'}"


def bot(
    project: Path,
    *args: str,
    cwd: Path | None = None,
    password_env: str | None = None,
    stdin: str = "",
) -> Run:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BOT_")}
    env["BOT_DB_URL"] = db_url(project)
    if password_env is not None:
        env["BOT_AGENT_PASSWORD"] = password_env
    done = subprocess.run(
        [sys.executable, "-m", "bot", "agents", *args],
        cwd=cwd or project,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return Run(done.returncode, done.stdout, done.stderr)


def store(project: Path) -> HandoffStore:
    return HandoffStore.from_url(db_url(project))


def test_add_list_remove(project: Path) -> None:
    empty = bot(project, "list")
    assert empty.code == 0 and "no agents; add one with: bot agents add" in empty.out

    added = bot(project, "add", "alice", "--password", "alice-password", "--groups", "账户, 信用卡")
    assert added.code == 0, added.err
    assert added.out.strip() == "added agent alice (groups 账户, 信用卡, capacity 3)"
    sup = bot(
        project,
        "add",
        "sue",
        "--password",
        "sue-password-1",
        "--groups",
        "投诉",
        "--role",
        "supervisor",
        "--capacity",
        "5",
    )
    assert sup.code == 0, sup.err
    assert sup.out.strip() == "added supervisor sue (groups 投诉, capacity 5)"
    assert (project / "data" / "agents.db").is_file()  # where $BOT_DB_URL points

    listing = bot(project, "list")
    assert listing.code == 0
    assert listing.out.splitlines() == [
        "alice\tagent\t账户,信用卡\tcapacity 3\taway",
        "sue\tsupervisor\t投诉\tcapacity 5\taway",
    ]
    # what the server will check at login
    accounts = store(project)
    assert accounts.agents.authenticate("alice", "alice-password") is not None
    assert accounts.agents.authenticate("sue", "sue-password-1") is not None
    accounts.engine.dispose()

    removed = bot(project, "remove", "alice")
    assert removed.code == 0 and removed.out.strip() == "removed alice"
    assert bot(project, "list").out.splitlines() == ["sue\tsupervisor\t投诉\tcapacity 5\taway"]
    again = bot(project, "remove", "alice")
    assert again.code == 1 and "no agent alice" in again.out


def test_password_from_the_environment(project: Path) -> None:
    added = bot(project, "add", "bob", "--groups", "贷款", password_env="from-env-pass")
    assert added.code == 0, added.err
    accounts = store(project)
    assert accounts.agents.authenticate("bob", "from-env-pass") is not None
    accounts.engine.dispose()


def test_project_option_from_another_folder(project: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    added = bot(
        project,
        "add",
        "carol",
        "--password",
        "carol-password",
        "--groups",
        "账户",
        "--project",
        str(project),
        cwd=elsewhere,
    )
    assert added.code == 0, added.err
    assert "carol" in bot(project, "list", "--project", str(project), cwd=elsewhere).out
    missing = bot(project, "list", cwd=elsewhere)
    assert missing.code == 1 and "has no config.yml" in missing.err


def test_unknown_group_is_refused(project: Path) -> None:
    refused = bot(
        project, "add", "alice", "--password", "alice-password", "--groups", "账户,外星人"
    )
    assert refused.code == 1
    groups = "账户, 信用卡, 贷款, 投诉, 老年客户专线"
    assert f"error: unknown group(s) 外星人; handoff.yml has {groups}" in refused.err
    assert "Traceback" not in refused.err
    assert "no agents" in bot(project, "list").out


def test_short_password_is_refused(project: Path) -> None:
    refused = bot(project, "add", "alice", "--password", "short", "--groups", "账户")
    assert refused.code == 1
    assert "error: the password must have at least 8 characters" in refused.err
    assert "Traceback" not in refused.err
    assert "no agents" in bot(project, "list").out


def test_duplicate_agent_is_refused(project: Path) -> None:
    assert (
        bot(project, "add", "alice", "--password", "alice-password", "--groups", "账户").code == 0
    )
    again = bot(project, "add", "alice", "--password", "other-password", "--groups", "信用卡")
    assert again.code == 1 and "error: agent 'alice' exists already" in again.err


def test_bad_role_is_a_usage_error(project: Path) -> None:
    refused = bot(
        project,
        "add",
        "alice",
        "--password",
        "alice-password",
        "--groups",
        "账户",
        "--role",
        "admin",
    )
    assert refused.code == 2 and "invalid choice: 'admin'" in refused.err


def test_zero_capacity_is_refused(project: Path) -> None:
    """``--capacity 0`` must be an error, not silently the default capacity."""
    refused = bot(
        project,
        "add",
        "alice",
        "--password",
        "alice-password",
        "--groups",
        "账户",
        "--capacity",
        "0",
    )
    assert refused.code == 1 and "capacity must be at least 1" in refused.err
    assert "no agents" in bot(project, "list").out


def test_no_password_without_a_terminal_is_a_clear_error(project: Path) -> None:
    """No --password, no $BOT_AGENT_PASSWORD and nothing on stdin (a script, CI): exit 1 with
    a message naming both ways to give it, not a traceback."""
    refused = bot(project, "add", "alice", "--groups", "账户")
    assert refused.code == 1
    assert "Traceback" not in refused.err
    assert "--password" in refused.err and "BOT_AGENT_PASSWORD" in refused.err


def test_tickets(project: Path) -> None:
    empty = bot(project, "tickets")
    assert empty.code == 0 and empty.out.strip() == "no open tickets"
    queue = store(project)
    for conversation, customer, group in (("conv-1", "C1001", "贷款"), ("conv-2", None, "账户")):
        handoff = Handoff(
            new_id(), conversation, "rest", customer, None, group, 0, "rule", None, "leaving", 100.0
        )
        queue.handoffs.enqueue(handoff, {})
        assert (
            queue.tickets.to_ticket(
                handoff.id, f"{conversation} 请回电 138****5678", 1_700_000_000.0
            )
            is not None
        )
    queue.engine.dispose()
    listing = bot(project, "tickets")
    assert listing.code == 0
    lines = listing.out.splitlines()
    assert len(lines) == 2
    first, second = (line.split("\t") for line in lines)
    assert first[0] == "#1" and first[2:] == ["贷款", "C1001", "conv-1 请回电 138****5678"]
    assert second[0] == "#2" and second[2:] == ["账户", "conv-2", "conv-2 请回电 138****5678"]
    assert len(first[1]) == len("2023-11-14 22:13")  # a local date and time


def test_removing_an_agent_puts_their_open_conversations_back_in_the_queue(project: Path) -> None:
    assert bot(project, "add", "dan", "--password", "dan-password", "--groups", "账户").code == 0
    accounts = store(project)
    mine = []
    for i, status in enumerate(("assign", "accept")):
        handoff, _ = accounts.handoffs.enqueue(
            Handoff(
                new_id(),
                f"d{i}",
                "rest",
                None,
                None,
                "账户",
                0,
                "customer_request",
                None,
                "waiting",
                100.0 + i,
            ),
            {},
        )
        getattr(accounts.handoffs, status)(handoff.id, "dan", 200.0)
        mine.append(handoff.id)
    accounts.engine.dispose()
    removed = bot(project, "remove", "dan")
    assert removed.code == 0, removed.err
    assert removed.out.strip() == "removed dan; 2 open conversation(s) went back to the queue"
    accounts = store(project)
    waiting = accounts.handoffs.waiting()
    assert [h.id for h in waiting] == mine  # their place in time kept
    assert all(h.agent is None for h in waiting)
    assert [e["action"] for e in accounts.audit.log(actions=["requeue", "remove_agent"])] == [
        "requeue",
        "requeue",
        "remove_agent",
    ]
    accounts.engine.dispose()
