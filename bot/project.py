"""Where a project's files live. A project is a folder holding ``config.yml``.

Two layouts are read, ours and Rasa's, in any mix:

- ours: ``nlu_data/`` (NLU YAML), ``stories/`` (stories and rules), ``domain.yml``;
- Rasa's: ``data/`` where any YAML file may hold ``nlu``, ``stories``, ``rules`` and
  ``responses`` keys in any mix, the domain as ``domain.yml`` or a ``domain/`` folder.

Every path can be overridden as Rasa's flags do (``--data``, ``--domain``, ``--config``,
``--endpoints``, ``--credentials``, ``--out``, ``--fixed-model-name``); relative overrides
are taken from the working directory, as Rasa takes them. Test stories are read from our
``tests/stories/`` or else from Rasa's ``tests/`` (e.g. ``tests/test_stories.yml``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from bot.errors import ConfigError

YAML_SUFFIXES = frozenset({".yml", ".yaml"})
# Set by the CLI's --endpoints / --credentials, so that a project found again elsewhere in
# the process or in a server worker (which gets only the folder) reads the same files.
ENV_ENDPOINTS = "BOT_ENDPOINTS"
ENV_CREDENTIALS = "BOT_CREDENTIALS"


def _from_env(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


def yaml_error_line(exc: Exception) -> tuple[int, str]:
    """The 1-based line and the one-line problem of a PyYAML error (line 1 if unknown)."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = mark.line + 1 if mark is not None else 1
    problem = str(getattr(exc, "problem", None) or exc).split("\n")[0]
    return line, problem


def yaml_error(file: str | Path, exc: Exception) -> str:
    """``file:line: invalid YAML: problem. Fix: ...`` on one line."""
    line, problem = yaml_error_line(exc)
    return (
        f"{file}:{line}: invalid YAML: {problem}. Fix: correct the YAML syntax on that line "
        "(indentation, a missing ':' or an unclosed bracket or quote)"
    )


def yaml_files(paths: tuple[Path, ...]) -> list[Path]:
    """Every YAML file of ``paths`` (files as they are, folders searched), sorted, once."""
    found: set[Path] = set()
    for path in paths:
        if path.is_file() and path.suffix in YAML_SUFFIXES:
            found.add(path)
        elif path.is_dir():
            found.update(p for p in path.rglob("*") if p.suffix in YAML_SUFFIXES and p.is_file())
    return sorted(found)


@dataclass(frozen=True)
class Project:
    root: Path
    # Overrides (None: the default place under ``root``).
    config_path: Path | None = None
    domain_path: Path | None = None
    data_paths: tuple[Path, ...] | None = None
    endpoints_path: Path | None = None
    credentials_path: Path | None = None
    models_path: Path | None = None
    fixed_model_name: str | None = None

    @property
    def config_file(self) -> Path:
        return self.config_path or self.root / "config.yml"

    @property
    def domain_file(self) -> Path:
        """The domain: ``domain.yml`` (or ``.yaml``), else a ``domain/`` folder; may not exist."""
        if self.domain_path is not None:
            return self.domain_path
        for name in ("domain.yml", "domain.yaml"):
            if (self.root / name).is_file():
                return self.root / name
        if (self.root / "domain").is_dir():
            return self.root / "domain"
        return self.root / "domain.yml"

    @property
    def endpoints_file(self) -> Path:
        """``--endpoints``, else ``$BOT_ENDPOINTS``, else ``endpoints.yml``."""
        return self.endpoints_path or _from_env(ENV_ENDPOINTS) or self.root / "endpoints.yml"

    @property
    def credentials_file(self) -> Path:
        """``--credentials``, else ``$BOT_CREDENTIALS``, else ``credentials.yml``."""
        return self.credentials_path or _from_env(ENV_CREDENTIALS) or self.root / "credentials.yml"

    @property
    def nlu_dir(self) -> Path:
        return self.root / "nlu_data"

    @property
    def stories_dir(self) -> Path:
        return self.root / "stories"

    @property
    def data_dir(self) -> Path:
        """Rasa's ``data/`` folder."""
        return self.root / "data"

    @property
    def models_dir(self) -> Path:
        return self.models_path or self.root / "models"

    @property
    def tests_dir(self) -> Path:
        return self.root / "tests"

    @property
    def nlu_test_file(self) -> Path:
        return self.tests_dir / "data" / "nlu_test.yml"

    @property
    def test_stories_path(self) -> Path:
        """Where ``bot test core`` reads test stories: ``tests/stories/`` (ours) if it
        exists, else Rasa's ``tests/`` folder (files without ``stories:`` hold nothing)."""
        ours = self.tests_dir / "stories"
        return ours if ours.exists() else self.tests_dir

    def training_paths(self) -> tuple[Path, ...]:
        """Where training data is read: ``--data`` paths, else ``nlu_data/``, ``stories/``
        and ``data/`` (those that exist)."""
        if self.data_paths is not None:
            return self.data_paths
        return tuple(p for p in (self.nlu_dir, self.stories_dir, self.data_dir) if p.exists())

    def data_files(self) -> list[Path]:
        """Every YAML training file (any mix of nlu / stories / rules / responses keys)."""
        return yaml_files(self.training_paths())

    def unread_data_files(self) -> list[Path]:
        """Rasa 1.x/2.x Markdown and JSON training data under the data paths: not read."""
        found: set[Path] = set()
        for path in self.training_paths():
            candidates = [path] if path.is_file() else path.rglob("*") if path.is_dir() else []
            found.update(
                p
                for p in candidates
                if p.suffix in {".md", ".json"}
                and p.is_file()
                and not p.name.lower().startswith("readme")
            )
        return sorted(found)

    def nlu_files(self) -> list[Path]:
        """The files NLU data is read from: every data file (the NLU reader takes the
        ``nlu:`` key of each and ignores the other keys)."""
        return self.data_files()

    def domain_files(self) -> list[Path]:
        """The domain's YAML files: the one file, or every YAML file of the folder."""
        domain = self.domain_file
        return yaml_files((domain,)) if domain.is_dir() else [domain]

    @classmethod
    def find(
        cls,
        start: str | Path | Project | None = None,
        *,
        config: str | Path | None = None,
        domain: str | Path | None = None,
        data: list[str] | tuple[str | Path, ...] | None = None,
        endpoints: str | Path | None = None,
        credentials: str | Path | None = None,
        out: str | Path | None = None,
        fixed_model_name: str | None = None,
    ) -> Project:
        """The project at ``start`` (or ``$BOT_PROJECT``, or the working directory), with
        Rasa's path overrides (relative ones from the working directory). A ``Project``
        is returned as it is."""
        if isinstance(start, Project):
            return start
        base = Path(start or os.environ.get("BOT_PROJECT") or Path.cwd()).resolve()

        def given(value: str | Path | None, flag: str, must_exist: bool = True) -> Path | None:
            if value is None:
                return None
            path = Path(value).resolve()
            if must_exist and not path.exists():
                raise ConfigError(f"{flag} {value}: no such file or folder. Fix the path.")
            return path

        config_path = given(config, "--config")
        if not (config_path or base / "config.yml").is_file():
            raise ConfigError(
                f"{base} has no config.yml. Run the command in the project folder "
                "or pass --project DIR (or --config FILE)."
            )
        if fixed_model_name is not None and (
            not fixed_model_name or "/" in fixed_model_name or fixed_model_name.startswith(".")
        ):
            raise ConfigError(
                f"--fixed-model-name {fixed_model_name!r}: give a plain name such as 'bank' "
                "(the archive becomes models/bank.tar.gz)"
            )
        data_paths = None
        if data:
            data_paths = tuple(p for p in (given(d, "--data") for d in data) if p is not None)
        return cls(
            base,
            config_path=config_path,
            domain_path=given(domain, "--domain"),
            data_paths=data_paths,
            endpoints_path=given(endpoints, "--endpoints"),
            credentials_path=given(credentials, "--credentials"),
            models_path=given(out, "--out", must_exist=False),
            fixed_model_name=(
                fixed_model_name.removesuffix(".tar.gz") if fixed_model_name else None
            ),
        )
