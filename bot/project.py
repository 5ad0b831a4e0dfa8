"""Where a project's files live. A project is a folder holding ``config.yml``.

Two layouts are read, ours and Rasa's, in any mix:

- ours: ``nlu_data/`` (NLU YAML), ``stories/`` (stories and rules), ``domain.yml``;
- Rasa's: ``data/`` where any YAML file may hold ``nlu``, ``stories``, ``rules`` and
  ``responses`` keys in any mix, the domain as ``domain.yml`` or a ``domain/`` folder.

Every path can be overridden as Rasa's flags do (``--data``, ``--domain``, ``--config``,
``--endpoints``, ``--credentials``, ``--out``); relative overrides are taken from the
working directory, as Rasa takes them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from bot.errors import ConfigError

YAML_SUFFIXES = frozenset({".yml", ".yaml"})


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
        return self.endpoints_path or self.root / "endpoints.yml"

    @property
    def credentials_file(self) -> Path:
        return self.credentials_path or self.root / "credentials.yml"

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

    def training_paths(self) -> tuple[Path, ...]:
        """Where training data is read: ``--data`` paths, else ``nlu_data/``, ``stories/``
        and ``data/`` (those that exist)."""
        if self.data_paths is not None:
            return self.data_paths
        return tuple(p for p in (self.nlu_dir, self.stories_dir, self.data_dir) if p.exists())

    def data_files(self) -> list[Path]:
        """Every YAML training file (any mix of nlu / stories / rules / responses keys)."""
        return yaml_files(self.training_paths())

    def nlu_files(self) -> list[Path]:
        """Every YAML file under ``nlu_data/`` (ours), sorted so training is deterministic."""
        if not self.nlu_dir.is_dir():
            return []
        return sorted(p for p in self.nlu_dir.rglob("*") if p.suffix in YAML_SUFFIXES)

    @classmethod
    def find(cls, start: str | Path | None = None) -> Project:
        """The project at ``start`` (or ``$BOT_PROJECT``, or the working directory)."""
        base = Path(start or os.environ.get("BOT_PROJECT") or Path.cwd()).resolve()
        if not (base / "config.yml").is_file():
            raise ConfigError(
                f"{base} has no config.yml. Run the command in the project folder "
                "or pass --project DIR."
            )
        return cls(base)
