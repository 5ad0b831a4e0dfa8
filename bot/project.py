"""Where a project's files live. A project is a folder holding ``config.yml``."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from bot.errors import ConfigError


@dataclass(frozen=True)
class Project:
    root: Path

    @property
    def config_file(self) -> Path:
        return self.root / "config.yml"

    @property
    def domain_file(self) -> Path:
        return self.root / "domain.yml"

    @property
    def nlu_dir(self) -> Path:
        return self.root / "nlu_data"

    @property
    def stories_dir(self) -> Path:
        return self.root / "stories"

    @property
    def models_dir(self) -> Path:
        return self.root / "models"

    @property
    def tests_dir(self) -> Path:
        return self.root / "tests"

    @property
    def nlu_test_file(self) -> Path:
        return self.tests_dir / "data" / "nlu_test.yml"

    def nlu_files(self) -> list[Path]:
        """Every YAML file under ``nlu_data/``, sorted so training is deterministic."""
        if not self.nlu_dir.is_dir():
            return []
        return sorted(p for p in self.nlu_dir.rglob("*") if p.suffix in {".yml", ".yaml"})

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
