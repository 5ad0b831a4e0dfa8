"""Reading one settings file (``config.yml``, ``endpoints.yml``, ``handoff.yml``,
``credentials.yml``): a YAML mapping that remembers the line of every key, or a
:class:`~bot.errors.ConfigError` of one line naming the file, the line, the problem and the
fix."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bot.errors import ConfigError
from bot.project import yaml_error

# A key path in an error message: server.rate_limit.burst, groups[0].hours, 'knowledge_base.x'
_KEY_PATH = re.compile(r"[A-Za-z_][\w-]*(?:\[\d+\])*(?:\.[A-Za-z_][\w-]*(?:\[\d+\])*)*")
_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
_FILE_PREFIX = re.compile(r"^[\w.-]+\.ya?ml:\s*")


@dataclass(frozen=True)
class SettingsFile:
    """A settings file's mapping (``{}`` for an empty or absent file) and where each key is."""

    path: Path
    data: dict[str, Any]
    exists: bool = True
    lines: dict[tuple[str | int, ...], int] = field(default_factory=dict, compare=False)

    def line_of(self, key_path: str) -> int:
        """The 1-based line of ``key_path`` (``server.rate_limit``, ``groups[0].hours``): of
        its deepest part that is in the file; 1 when none is."""
        return self._line(key_path) or 1

    def _line(self, key_path: str) -> int | None:
        steps: list[str | int] = [
            name if index == "" else int(index) for name, index in _STEP.findall(key_path)
        ]
        while steps:
            line = self.lines.get(tuple(steps))
            if line is not None:
                return line
            steps.pop()
        return None

    def error(self, message: str, fix: str = "") -> ConfigError:
        """``message`` as one line ``file:line: message. Fix: fix``, the line that of the
        first key path of the message that is in the file; a leading ``file:`` of the message
        is dropped."""
        message = _FILE_PREFIX.sub("", message.removeprefix(f"{self.path}:"), count=1).strip()
        line = next(
            (
                found
                for match in _KEY_PATH.finditer(message)
                if (found := self._line(match.group(0))) is not None
            ),
            1,
        )
        text = f"{self.path}:{line}: {message.rstrip('.')}"
        if fix and "Fix:" not in message:
            text += f". Fix: {fix}"
        return ConfigError(text)


def read_settings_file(
    path: Path, *, required: bool = False, holds: str = "", missing_fix: str = "create it"
) -> SettingsFile:
    """The file's mapping with the lines of its keys: empty when the file is empty, or
    missing and not ``required``.

    ``holds`` names what the mapping is for (``"action_endpoint, tracker_store, ..."``) in the
    error when the file holds something else; ``missing_fix`` says how to fix a missing
    required file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        if not required:
            return SettingsFile(path, {}, exists=False)
        raise ConfigError(f"{path} does not exist. Fix: {missing_fix}") from exc
    except IsADirectoryError as exc:
        raise ConfigError(f"{path} is a folder, not a YAML file. Fix: give the file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"{path}: cannot be read ({exc}). Fix: make it a readable UTF-8 file"
        ) from exc
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        raise ConfigError(yaml_error(path, exc)) from exc
    finally:
        loader.dispose()
    if data is None:
        return SettingsFile(path, {})
    if not isinstance(data, dict):
        what = f" ({holds})" if holds else ""
        raise ConfigError(
            f"{path}:1: expected a mapping{what}, got {_kind(data)}. Fix: write "
            "'key: value' lines at the top level"
        )
    assert node is not None
    lines: dict[tuple[str | int, ...], int] = {}
    _key_lines(node, (), lines)
    return SettingsFile(path, data, lines=lines)


def read_mapping(
    path: Path, *, required: bool = False, holds: str = "", missing_fix: str = "create it"
) -> dict[str, Any]:
    """:func:`read_settings_file`'s mapping."""
    return read_settings_file(path, required=required, holds=holds, missing_fix=missing_fix).data


def _key_lines(
    node: yaml.Node, prefix: tuple[str | int, ...], lines: dict[tuple[str | int, ...], int]
) -> None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                path = (*prefix, str(key.value))
                lines.setdefault(path, key.start_mark.line + 1)
                _key_lines(value, path, lines)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            path = (*prefix, i)
            lines.setdefault(path, item.start_mark.line + 1)
            _key_lines(item, path, lines)


def _kind(value: Any) -> str:
    return {
        list: "a list",
        str: "a text",
        int: "a number",
        float: "a number",
        bool: "a boolean",
    }.get(type(value), type(value).__name__)
