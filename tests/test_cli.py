"""The ``bot`` command line, in-process through ``main`` and as a real subprocess."""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.cli.main import build_parser, main
from bot.nlu.fallback import FALLBACK_INTENT

REPORTS = (
    "intent_report.json",
    "intent_errors.json",
    "intent_confusion_matrix.png",
    "intent_histogram.png",
    "entity_report.json",
)


def command_paths(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple]:
    paths = [prefix]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                paths.extend(command_paths(sub, (*prefix, name)))
    return paths


PATHS = command_paths(build_parser())


def test_all_commands_are_known() -> None:
    assert {("train",), ("parse",), ("shell",), ("test",), ("data",), ("data", "validate")} <= set(
        PATHS
    )


@pytest.mark.parametrize("path", PATHS, ids=[" ".join(p) or "bot" for p in PATHS])
def test_help_for_every_command(path: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*path, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: bot {' '.join(path)}".rstrip())
    assert "--help" in out


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([])
    assert exit_info.value.code == 2
    assert "usage: bot" in capsys.readouterr().err


def test_parse_prints_the_parse_json(tiny_model: Any, capsys: pytest.CaptureFixture[str]) -> None:
    text = "查下尾号5678的工资卡余额"
    assert main(["parse", "--project", str(tiny_model.root), text]) == 0
    out = capsys.readouterr().out
    assert text in out  # Chinese is printed as is, not as \\u escapes
    result = json.loads(out)
    assert result == tiny_model.model.nlu.parse(text)
    assert result["intent"]["name"] == "query_balance"
    assert result["entities"][0]["value"] == "5678"


def test_parse_with_explicit_model_and_env_project(
    tiny_model: Any,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert (
        main(
            ["parse", "--model", str(tiny_model.archive), "--project", str(tiny_model.root), "你好"]
        )
        == 0
    )
    assert json.loads(capsys.readouterr().out)["intent"]["name"] == "greet"
    monkeypatch.setenv("BOT_PROJECT", str(tiny_model.root))
    assert main(["parse", "你好"]) == 0
    assert json.loads(capsys.readouterr().out)["text"] == "你好"


def test_parse_stdin_prints_one_json_per_line(
    tiny_model: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = ["查下尾号5678的余额", "", "你好", "卡丢了\r"]
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(lines) + "\n"))
    assert main(["parse", "--project", str(tiny_model.root), "-"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 4
    results = [json.loads(line) for line in out]
    assert [r["text"] for r in results] == ["查下尾号5678的余额", "", "你好", "卡丢了"]
    assert results[1]["intent"]["name"] == FALLBACK_INTENT
    assert results[2]["intent"]["name"] == "greet"


def test_shell_with_piped_input_prints_json_lines(
    tiny_model: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("你好\n我的卡丢了\n"))
    assert main(["shell", "nlu", "--project", str(tiny_model.root)]) == 0
    out = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["intent"]["name"] for r in out] == ["greet", "report_loss"]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_shell_interactive(
    tiny_model: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", _Terminal("查下尾号5678的工资卡余额\n/exit\n不会读到\n"))
    assert main(["shell", "nlu", "--project", str(tiny_model.root)]) == 0
    out = capsys.readouterr().out
    assert "intent: query_balance" in out
    assert "entity: card_last4 = '5678'" in out
    assert "entity: account_type = 'debit_card'" in out
    assert "不会读到" not in out


def test_test_nlu_writes_reports(
    tiny_model: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "results"
    test_file = tiny_model.root / "tests" / "data" / "nlu_test.yml"
    code = main(
        [
            "test",
            "nlu",
            "--project",
            str(tiny_model.root),
            "--nlu",
            str(test_file),
            "--out",
            str(out),
        ]
    )
    assert code == 0
    for name in REPORTS:
        assert (out / name).is_file() and (out / name).stat().st_size > 0
    report = json.loads((out / "intent_report.json").read_text(encoding="utf-8"))
    assert {"greet", "query_balance", "report_loss"} <= set(report)
    assert report["query_balance"]["support"] == 2
    entities = json.loads((out / "entity_report.json").read_text(encoding="utf-8"))
    assert "card_last4" in entities and "micro avg" in entities
    printed = capsys.readouterr().out
    assert "intent accuracy" in printed and "macro-F1" in printed and "entity F1" in printed


def test_test_nlu_defaults_to_tests_data(
    tiny_model: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "default"
    assert main(["test", "--project", str(tiny_model.root), "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["n"] == 5


def test_test_nlu_cross_validation(tiny_project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tiny_project / "cv"
    code = main(
        [
            "test",
            "nlu",
            "--project",
            str(tiny_project),
            "--cross-validation",
            "--folds",
            "2",
            "--out",
            "cv",
        ]
    )
    assert code == 0
    cv = json.loads((out / "cross_validation.json").read_text(encoding="utf-8"))
    assert cv["folds"] == 2
    assert 0.0 <= cv["test"]["intent_accuracy"]["mean"] <= 1.0
    for name in REPORTS:
        assert (out / name).is_file()
    assert "2-fold cross-validation (18 examples)" in capsys.readouterr().out
    assert not (tiny_project / "models").exists()  # cross-validation trains nothing to disk


def test_test_nlu_bad_arguments(tiny_model: Any, tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="--folds must be at least 2"):
        main(["test", "--project", str(tiny_model.root), "--cross-validation", "--folds", "1"])
    with pytest.raises(SystemExit, match="does not exist"):
        main(["test", "--project", str(tiny_model.root), "--nlu", str(tmp_path / "no.yml")])


def test_test_nlu_with_a_broken_test_file(
    tiny_model: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("nlu:\n- intent: greet\n  examples: |\n    - [x](bad name)\n", encoding="utf-8")
    assert (
        main(
            [
                "test",
                "--project",
                str(tiny_model.root),
                "--nlu",
                str(bad),
                "--out",
                str(tmp_path / "o"),
            ]
        )
        == 1
    )
    assert "bad.yml:4" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [["parse", "你好"], ["parse", "-"], ["shell", "nlu"], ["test", "nlu", "--out", "r"]],
    ids=["parse", "parse-stdin", "shell", "test"],
)
def test_no_model_is_a_clear_error(
    tiny_project: Path,
    argv: list[str],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("你好\n"))
    assert main([*argv, "--project", str(tiny_project)]) == 1
    captured = capsys.readouterr()
    assert "error: no trained model" in captured.err
    assert "bot train" in captured.err
    assert "{" not in captured.out  # no parse result was printed


def test_missing_project_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["parse", "--project", str(tmp_path), "你好"]) == 1
    assert "has no config.yml" in capsys.readouterr().err


def test_train_then_skip_then_force(tiny_project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--project", str(tiny_project)]) == 0
    assert "Trained on 18 examples of 3 intents" in capsys.readouterr().out
    assert main(["train", "--project", str(tiny_project)]) == 0
    assert "Nothing changed since" in capsys.readouterr().out
    assert main(["train", "--project", str(tiny_project), "--force"]) == 0
    assert "Trained on 18 examples" in capsys.readouterr().out
    assert len(list((tiny_project / "models").glob("*.tar.gz"))) == 2


def test_train_with_unknown_component(
    tiny_project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tiny_project / "config.yml"
    config.write_text(
        config.read_text(encoding="utf-8").replace(
            "policies: []", "  - name: NoSuchComponent\npolicies: []"
        ),
        encoding="utf-8",
    )
    assert main(["train", "--project", str(tiny_project)]) == 1
    err = capsys.readouterr().err
    assert "unknown pipeline component 'NoSuchComponent'" in err
    assert "JiebaTokenizer" in err  # the known ones are listed


def test_train_with_data_errors(tiny_project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tiny_project / "nlu_data" / "bad.yml").write_text(
        "nlu:\n- intent: greet\n  examples: |\n    - [x](bad name)\n", encoding="utf-8"
    )
    assert main(["train", "--project", str(tiny_project)]) == 1
    err = capsys.readouterr().err
    assert "bot data validate" in err and "nlu_data/bad.yml:4" in err


# Real processes: the installed console script and ``python -m bot``.


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("BOT_PROJECT", None)
    env["PYTHONIOENCODING"] = "utf-8"  # strict decoding, as on most developer machines
    return env


def test_console_script_help_and_version() -> None:
    script = Path(sys.executable).with_name("bot")
    assert script.is_file(), "the 'bot' console script is not installed in this environment"
    done = subprocess.run(
        [str(script), "--help"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
        check=False,
    )
    assert done.returncode == 0
    assert "usage: bot" in done.stdout and "train" in done.stdout
    version = subprocess.run(
        [str(script), "--version"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
        check=False,
    )
    assert version.returncode == 0 and version.stdout.startswith("bankbot ")


def test_python_m_bot_parse_stdin(tiny_model: Any) -> None:
    payload = "查下尾号5678的余额\n".encode() + "卡丢了\n".encode("gbk") + "你好\n".encode()
    done = subprocess.run(
        [sys.executable, "-m", "bot", "parse", "--project", str(tiny_model.root), "-"],
        input=payload,
        capture_output=True,
        env=_env(),
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    results = [json.loads(line) for line in done.stdout.decode("utf-8").splitlines()]
    assert len(results) == 3  # a line that is not UTF-8 still gets a result
    assert results[0]["entities"][0]["value"] == "5678"
    assert "\ufffd" in results[1]["text"]
    assert results[2]["intent"]["name"] == "greet"


def test_python_m_bot_without_model_exits_1(tiny_project: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bot", "parse", "--project", str(tiny_project), "你好"],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert "no trained model" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "--auth-token", "x", "--port", "1"],
        ["run", "--port", "1", "--auth-token", "x"],
        ["run", "--enable-api", "--auth-token", "x", "-p", "1"],
        ["run", "--enable-api", "--jwt-secret", "actions", "--jwt-method", "HS256", "--port", "1"],
    ],
)
def test_bot_run_takes_rasas_http_api_flags(argv: list[str]) -> None:
    """Option values never become the 'actions' target (even a value spelled 'actions')."""
    args = build_parser().parse_args(argv)
    assert args.handler.__name__ == "run_server"
    assert args.run_target is None and args.server_port == 1
    assert args.auth_token == "x" or args.jwt_secret == "actions"
    if args.jwt_secret:
        assert args.jwt_method == "HS256" and args.auth_token is None


def test_bot_run_takes_rasas_logging_flags() -> None:
    import logging

    parse = build_parser().parse_args
    assert parse(["run", "--debug", "--port", "1"]).log_level == logging.DEBUG
    assert parse(["run", "-vv"]).log_level == logging.DEBUG
    assert parse(["run", "-v", "--enable-api", "--cors", "*"]).log_level == logging.INFO
    assert parse(["run", "--log-file", "x.log"]).log_file == "x.log"
    assert parse(["run"]).log_level is None


def test_bot_run_cors_and_the_actions_target() -> None:
    args = build_parser().parse_args(["run", "--cors", "*", "--port", "2"])
    assert args.cors == ["*"] and args.server_port == 2 and args.run_target is None
    args = build_parser().parse_args(["run", "--auth-token", "x", "actions", "--port", "5056"])
    assert args.handler.__name__ == "run_actions" and args.port == 5056
    assert args.auth_token == "x"


def test_bot_run_flags_reach_the_server_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.cli import run_cmd

    (tmp_path / "config.yml").write_text("language: zh\n", encoding="utf-8")
    seen: dict[str, Any] = {}
    monkeypatch.setattr(
        "bot.server.run.serve", lambda project, settings, model: seen.update(settings=settings)
    )
    args = build_parser().parse_args(
        [
            "run",
            "--project",
            str(tmp_path),
            "--enable-api",
            "--auth-token",
            "t0ken",
            "--jwt-secret",
            "k" * 32,
            "--jwt-method",
            "hs512",
            "--cors",
            "https://a.example",
            "--port",
            "5099",
        ]
    )
    assert run_cmd.run_server(args) == 0
    settings = seen["settings"].server  # the server part of the project's settings
    assert settings.port == 5099 and settings.auth_token == "t0ken"
    assert settings.api_jwt.secret == "k" * 32 and settings.api_jwt.method == "HS512"
    assert settings.cors_origins == ("https://a.example",)
