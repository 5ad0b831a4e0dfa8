"""``bot sandbox reset`` and ``bot sandbox show``."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from bot.bank.interfaces import UnknownCustomer
from bot.bank.sandbox import ACCOUNTS, SandboxBank
from bot.cli import sandbox_cmd
from bot.errors import BotError, ConfigError


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bot")
    sub = parser.add_subparsers(dest="command", required=True)
    sandbox_cmd.register(sub)
    args = parser.parse_args(argv)
    code: int = args.handler(args)
    return code


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("BOT_PROJECT", raising=False)
    (tmp_path / "config.yml").write_text("language: zh\n", encoding="utf-8")
    return tmp_path


def test_reset_reseeds_and_prints_counts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bank.db"
    with SandboxBank(path) as bank:
        bank.freeze_card("C1001", "1234")
    assert run(["sandbox", "reset", "--path", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"6 customers, {len(ACCOUNTS)} accounts, 8 applications" in out
    assert str(path) in out
    with SandboxBank(path) as bank:
        assert not bank.accounts("C1001")[0].frozen


def test_reset_uses_the_project_default(project: Path) -> None:
    assert run(["sandbox", "reset", "--project", str(project)]) == 0
    assert (project / "data" / "sandbox_bank.db").is_file()


def test_reset_uses_bank_path_of_endpoints(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (project / "endpoints.yml").write_text(
        "bank:\n  type: sandbox\n  path: var/core.db\n", encoding="utf-8"
    )
    monkeypatch.chdir(project)
    assert run(["sandbox", "reset"]) == 0
    assert (project / "var" / "core.db").is_file()
    assert not (project / "data").exists()


def test_outside_a_project_needs_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BOT_PROJECT", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError):
        run(["sandbox", "reset"])


def test_show_customer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bank.db"
    assert run(["sandbox", "show", "C1001", "--path", str(path)]) == 0
    out = capsys.readouterr().out
    for expected in (
        "C1001",
        "张伟",
        "尾号1234",
        "52,380.50 元",
        "尾号5678",
        "50,000.00 元",
        "31,200.00 元",
        "18,800.00 元",
        "2026-12-05",
        "L20261101001",
        "200,000.00 元",
        "风控审批",
        "R20261115002",
        "顺丰 SF1234567890",
    ):
        assert expected in out
    for row in ACCOUNTS:
        assert row[3] not in out
    assert not re.search(r"\d{12,}", out)


def test_show_frozen_card_and_new_limit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bank.db"
    with SandboxBank(path) as bank:
        bank.freeze_card("C1003", "3141")
    run(["sandbox", "show", "C1003", "--path", str(path)])
    assert "已冻结" in capsys.readouterr().out
    run(["sandbox", "show", "C1002", "--path", str(path)])
    out = capsys.readouterr().out
    assert "尾号8888" in out and "128,000.00 元" in out and "30,000.00 元" in out


def test_show_lists_customers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["sandbox", "show", "--path", str(tmp_path / "bank.db")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == [
        "C1001",
        "C1002",
        "C1003",
        "C1004",
        "C1005",
        "C1006",
    ]


def test_show_unknown_customer(tmp_path: Path) -> None:
    with pytest.raises(UnknownCustomer) as info:
        run(["sandbox", "show", "C9999", "--path", str(tmp_path / "bank.db")])
    assert isinstance(info.value, BotError)  # `bot` prints it without a traceback


def test_through_the_bot_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from bot.cli.main import main

    path = str(tmp_path / "bank.db")
    assert main(["sandbox", "reset", "--path", path]) == 0
    assert "6 customers" in capsys.readouterr().out
    assert main(["sandbox", "show", "C9999", "--path", path]) == 1
    assert "C9999" in capsys.readouterr().err
