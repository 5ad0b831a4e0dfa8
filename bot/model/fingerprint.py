"""A hash of everything training reads, so ``bot train`` can skip unchanged work."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from bot import __version__
from bot.config import BotConfig
from bot.nlu.registry import component_class
from bot.project import Project


def _code_files() -> list[Path]:
    """The engine code a trained model depends on: a change there means retraining."""
    package = Path(__file__).resolve().parents[1]
    return sorted((package / "nlu").glob("*.py"))


def training_fingerprint(project: Project, config: BotConfig) -> str:
    digest = hashlib.sha256()
    digest.update(f"bankbot {__version__}\n".encode())
    for path in _code_files():
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(json.dumps(config.pipeline_dicts(), sort_keys=True).encode())
    files: list[Path] = list(project.nlu_files())
    for spec in config.pipeline:
        # The component's default counts too (JiebaTokenizer reads nlu_data/userdict.txt
        # even when config.yml does not name it).
        options = {**component_class(spec.name).defaults, **spec.options}
        dictionary = options.get("dictionary_path")
        if isinstance(dictionary, str) and (project.root / dictionary).is_file():
            files.append(project.root / dictionary)
    for path in sorted(set(files)):
        digest.update(str(path.relative_to(project.root)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()
