"""Which core-banking backend to use, from the ``bank:`` section of ``endpoints.yml``::

    bank:
      type: http                       # or sandbox (the default)
      base_url: https://core.example-bank.cn/api/v1
      token: ${CORE_BANK_TOKEN}        # ${VAR} is read from the environment
      timeout: 2.0                     # seconds
    # sandbox: path: data/sandbox_bank.db (relative to the project folder)

``BOT_BANK_URL`` (which also selects ``http``) and ``BOT_BANK_TOKEN`` override the file.
The file is the project's ``endpoints.yml``, or ``$BOT_ENDPOINTS`` (set by ``--endpoints``).
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bot.bank.interfaces import CoreBanking
from bot.endpoints import load_endpoints
from bot.errors import ConfigError
from bot.project import Project

logger = logging.getLogger(__name__)

ENV_URL = "BOT_BANK_URL"
ENV_TOKEN = "BOT_BANK_TOKEN"
ENV_PROJECT = "BOT_PROJECT"
KEYS = frozenset({"type", "path", "base_url", "token", "timeout"})
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

_default: CoreBanking | None = None
_default_lock = threading.Lock()


def _expand(value: Any, key: str) -> Any:
    if not isinstance(value, str):
        return value

    def lookup(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise ConfigError(f"bank.{key} uses ${{{name}}} but {name} is not set")
        return os.environ[name]

    return _VAR.sub(lookup, value)


def create_backend(config: Mapping[str, Any] | None, project_root: Path) -> CoreBanking:
    """The backend ``config`` (the ``bank:`` section, or ``None``) asks for."""
    if config is not None and not isinstance(config, Mapping):
        raise ConfigError("the bank section of endpoints.yml must be a mapping")
    section = {key: _expand(value, key) for key, value in (config or {}).items()}
    unknown = set(section) - KEYS
    if unknown:
        raise ConfigError(f"unknown bank setting(s) {sorted(unknown)}; known: {sorted(KEYS)}")
    env_url = os.environ.get(ENV_URL)
    if env_url:
        section["type"], section["base_url"] = "http", env_url
    if os.environ.get(ENV_TOKEN):
        section["token"] = os.environ[ENV_TOKEN]
    kind = section.get("type") or "sandbox"
    if kind == "sandbox":
        from bot.bank.sandbox import DEFAULT_PATH, SandboxBank

        path = Path(str(section.get("path") or DEFAULT_PATH))
        return SandboxBank(path if path.is_absolute() else project_root / path)
    if kind == "http":
        from bot.bank.http_client import DEFAULT_TIMEOUT, HttpCoreBanking

        base_url = section.get("base_url")
        if not isinstance(base_url, str) or not base_url:
            raise ConfigError(f"bank.type http needs bank.base_url (or {ENV_URL})")
        timeout = section.get("timeout", DEFAULT_TIMEOUT)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise ConfigError(f"bank.timeout must be a positive number of seconds, got {timeout!r}")
        token = section.get("token")
        if token is not None and not isinstance(token, str):
            raise ConfigError("bank.token must be text")
        if not token:
            logger.warning("the core-banking gateway %s is used without a token", base_url)
        try:
            return HttpCoreBanking(base_url, token or None, float(timeout))
        except ValueError as exc:
            raise ConfigError(f"bank: {exc}") from exc
    raise ConfigError(f"unknown bank.type {kind!r}: use sandbox or http")


def bank_config(project_root: Path, endpoints_file: Path | None = None) -> Mapping[str, Any] | None:
    """The ``bank:`` section of ``endpoints_file`` (default: the project's, see
    :attr:`bot.project.Project.endpoints_file`), if any."""
    return load_endpoints(Project(project_root, endpoints_path=endpoints_file)).bank


def project_root() -> Path:
    """``$BOT_PROJECT``, or the working directory."""
    return Path(os.environ.get(ENV_PROJECT) or Path.cwd()).resolve()


def default_backend() -> CoreBanking:
    """The project's backend, created once per process (thread-safe)."""
    global _default
    with _default_lock:
        if _default is None:
            root = project_root()
            _default = create_backend(bank_config(root), root)
        return _default


def reset_default_backend() -> None:
    """Close and forget the backend of :func:`default_backend` (tests, reconfiguration)."""
    global _default
    with _default_lock:
        if _default is not None:
            _default.close()
        _default = None
