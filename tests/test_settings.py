"""The settings object (bot.server.project_settings): every file read once, the parts as
their own loaders make them, env overrides, and errors of one line naming file, line,
problem and fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.config import load_config
from bot.endpoints import Endpoints
from bot.errors import ConfigError
from bot.handoff import config as handoff_config
from bot.kb.settings import read_settings
from bot.project import Project
from bot.redis import REDIS_URL_ENV
from bot.server.project_settings import Settings
from bot.server.settings import OPERATOR_TOKEN_ENV, load_settings
from bot.settings_file import read_mapping, read_settings_file

REPO = Path(__file__).resolve().parents[1]


def project(tmp_path: Path, files: dict[str, str]) -> Project:
    (tmp_path / "config.yml").write_text("language: zh\n", encoding="utf-8")
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    return Project(tmp_path)


def one_line_error(tmp_path: Path, files: dict[str, str]) -> str:
    with pytest.raises(ConfigError) as info:
        Settings.load(project(tmp_path, files), env={})
    message = str(info.value)
    assert "\n" not in message
    return message


def test_the_parts_are_those_of_their_own_loaders() -> None:
    repo = Project(REPO)
    settings = Settings.load(repo, env={})
    assert settings.config == load_config(repo.config_file, repo.root)
    assert settings.server == load_settings(repo, env={})
    assert settings.knowledge_base == read_settings(repo.config_file)
    assert settings.handoff == handoff_config.load(repo.root, {})
    assert settings.config_file.data["language"] == "zh"
    assert not settings.production and settings.redis_url is None


def test_every_file_is_read_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = project(
        tmp_path,
        {"handoff.yml": "groups: [账户]\n", "endpoints.yml": "lock_store: {type: memory}\n"},
    )
    reads: list[str] = []
    read_text = Path.read_text

    def counting(path: Path, *args: object, **kwargs: object) -> str:
        reads.append(path.name)
        return read_text(path, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "read_text", counting)
    settings = Settings.load(root, env={})
    assert sorted(reads) == ["config.yml", "endpoints.yml", "handoff.yml"]
    assert settings.endpoints.lock_store == {"type": "memory"}
    assert settings.handoff.default_group == "账户"


def test_environment_overrides(tmp_path: Path) -> None:
    env = {
        REDIS_URL_ENV: "redis://cache:6379/1",
        OPERATOR_TOKEN_ENV: "o" * 20,
        handoff_config.AGENT_SECRET_ENV: "a" * 20,
    }
    settings = Settings.load(project(tmp_path, {}), env=env)
    assert settings.redis_url == settings.endpoints.redis_url == "redis://cache:6379/1"
    assert settings.server.operator_token == "o" * 20
    assert settings.handoff.agent_secret == "a" * 20


def test_missing_files_are_defaults(tmp_path: Path) -> None:
    settings = Settings.load(project(tmp_path, {}), env={})
    assert settings.endpoints == Endpoints()
    assert not settings.endpoints_file.exists and not settings.handoff_file.exists
    assert settings.handoff == handoff_config.parse({}, {})


def test_a_bad_value_names_the_file_and_its_line(tmp_path: Path) -> None:
    message = one_line_error(
        tmp_path, {"config.yml": "language: zh\nserver:\n  host: 0.0.0.0\n  port: x\n"}
    )
    assert message.startswith(f"{tmp_path / 'config.yml'}:4: server.port must be a number")
    assert "Fix: correct that value (docs/server.md)" in message


def test_an_unknown_knowledge_base_option_names_its_line(tmp_path: Path) -> None:
    message = one_line_error(
        tmp_path, {"config.yml": "language: zh\nknowledge_base:\n  index: flat\n  indx: hnsw\n"}
    )
    assert message.startswith(f"{tmp_path / 'config.yml'}:4: unknown option 'knowledge_base.indx'")
    assert "config.yml: " not in message.split(":4: ", 1)[1]  # the file is said once


def test_a_handoff_error_names_handoff_yml_and_the_group(tmp_path: Path) -> None:
    message = one_line_error(
        tmp_path, {"handoff.yml": "groups:\n  - name: 账户\n  - description: 无名\n"}
    )
    assert message.startswith(f"{tmp_path / 'handoff.yml'}:3: groups[1] has no name")
    assert message.endswith("Fix: correct that value (docs/handoff.md)")


def test_an_endpoints_section_must_be_a_mapping(tmp_path: Path) -> None:
    message = one_line_error(tmp_path, {"endpoints.yml": "action_endpoint: {}\nbank: sandbox\n"})
    assert message.startswith(f"{tmp_path / 'endpoints.yml'}:2: bank must be a mapping")
    assert "Fix: write 'bank:'" in message


def test_invalid_yaml_is_one_line_with_its_line(tmp_path: Path) -> None:
    message = one_line_error(tmp_path, {"handoff.yml": "groups:\n  - name: [账户\n"})
    assert message.startswith(f"{tmp_path / 'handoff.yml'}:")
    assert "invalid YAML" in message and "Fix:" in message


def test_a_file_that_is_no_mapping(tmp_path: Path) -> None:
    message = one_line_error(tmp_path, {"endpoints.yml": "- tracker_store\n"})
    assert message.startswith(
        f"{tmp_path / 'endpoints.yml'}:1: expected a mapping "
        "(action_endpoint, tracker_store, lock_store, ...), got a list"
    )


def test_a_missing_config_says_how_to_fix_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config.yml does not exist. Fix: create it"):
        Settings.load(Project(tmp_path), env={})
    assert read_mapping(tmp_path / "absent.yml") == {}


def test_key_lines(tmp_path: Path) -> None:
    path = tmp_path / "x.yml"
    path.write_text("a:\n  b:\n    - c: 1\n    - c: 2\n      d: 3\ne: {f: 4}\n", encoding="utf-8")
    file = read_settings_file(path)
    assert [file.line_of(k) for k in ("a", "a.b", "a.b[0].c", "a.b[1]", "a.b[1].d", "e.f")] == [
        1,
        2,
        3,
        4,
        5,
        6,
    ]
    assert file.line_of("a.b[7].zz") == 2  # the deepest part that is there
    assert file.line_of("nothing") == 1
    assert str(file.error("x.yml: e.f must be text", fix="quote it")) == (
        f"{path}:6: e.f must be text. Fix: quote it"
    )


def test_bot_run_reads_each_settings_file_once(
    tiny_model: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``bot run`` up to a built app (model, stores, handoff, channels): config.yml,
    endpoints.yml, handoff.yml and credentials.yml are each read once, by the settings."""
    from collections import Counter

    from bot.cli import run_cmd
    from bot.cli.main import build_parser
    from bot.server.app import app_for_project

    root = tmp_path / "bank"
    root.mkdir()
    (root / "config.yml").write_text(
        (tiny_model.root / "config.yml").read_text(encoding="utf-8")
        + "channels:\n  wechat:\n    reply_timeout: 3\n",
        encoding="utf-8",
    )
    (root / "endpoints.yml").write_text("lock_store: {type: memory}\n", encoding="utf-8")
    (root / "handoff.yml").write_text("groups: [账户]\n", encoding="utf-8")
    (root / "credentials.yml").write_text("rest:\n", encoding="utf-8")
    for name in ("BOT_ENDPOINTS", "BOT_CREDENTIALS", "BOT_PROJECT"):
        monkeypatch.setenv(name, "")  # 'bot run' sets them; removed again after the test
    monkeypatch.setenv(handoff_config.AGENT_SECRET_ENV, "s" * 32)
    reads: Counter[str] = Counter()
    path_open = Path.open  # read_text and read_bytes open through it

    def counting_open(path: Path, *args: Any, **kwargs: Any) -> Any:
        reads[path.name] += 1
        return path_open(path, *args, **kwargs)

    built: dict[str, Any] = {}

    def serve(project: Project, settings: Settings, model: Path | None = None) -> None:
        built.update(app=app_for_project(project, model, settings, "reads_once"), settings=settings)

    monkeypatch.setattr("bot.server.run.serve", serve)
    monkeypatch.setattr(Path, "open", counting_open)
    args = build_parser().parse_args(
        ["run", "--project", str(root), "--model", str(tiny_model.archive), "--port", "5098"]
    )
    assert run_cmd.run_server(args) == 0
    monkeypatch.undo()
    settings_files = {
        name: reads[name]
        for name in ("config.yml", "endpoints.yml", "handoff.yml", "credentials.yml")
    }
    assert settings_files == dict.fromkeys(settings_files, 1)
    app, settings = built["app"], built["settings"]
    assert app.ctx.settings is settings.server and settings.server.port == 5098
    assert app.ctx.handoff.config is settings.handoff
    assert settings.handoff.default_group == "账户"
    assert settings.handoff.agent_secret == "s" * 32  # the environment still wins
    assert settings.wechat.reply_timeout == 3.0
    assert settings.endpoints.lock_store == {"type": "memory"}


@pytest.mark.parametrize(
    ("name", "text", "line", "what"),
    [
        (
            "handoff.yml",
            "groups:\n  - name: 账户\n    hours: 9-5\n",
            3,
            "groups[0].hours.time must look like 08:30-21:00, got '9-5'",
        ),
        (
            "endpoints.yml",
            "tracker_store:\n  type: sql\nlock_store: redis\n",
            3,
            "lock_store must be a mapping",
        ),
        ("endpoints.yml", "action_endpoint:\n  url: http: x\n", 2, "invalid YAML"),
    ],
)
def test_bot_run_with_a_broken_file_is_one_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    text: str,
    line: int,
    what: str,
) -> None:
    from bot.cli.main import main

    root = project(tmp_path, {name: text})
    monkeypatch.setattr("bot.server.run.serve", lambda *a: pytest.fail("served"))
    for env in ("BOT_ENDPOINTS", "BOT_CREDENTIALS"):
        monkeypatch.setenv(env, "")
    assert main(["run", "--project", str(root.root)]) != 0
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert f"{root.root / name}:{line}: {what}" in err
    assert "Fix:" in err


def test_the_settings_reach_the_workers_whole() -> None:
    """Sanic's workers get the settings pickled (``bot run --workers N``)."""
    import pickle

    settings = Settings.load(Project(REPO), env={})
    again = pickle.loads(pickle.dumps(settings))
    assert again == settings and again.handoff == settings.handoff
