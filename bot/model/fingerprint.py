"""A hash of everything training reads, so ``bot train`` can skip unchanged work.

Every training data file counts (``nlu_data/``, ``stories/``, ``data/`` or the ``--data``
paths) and every file of the domain (``domain.yml`` or the whole ``domain/`` folder). A
data file may mix keys: the NLU fingerprint takes its ``nlu:`` part, the dialogue
fingerprint its ``stories:``, ``rules:`` and ``responses:`` parts, so a new story does not
retrain the NLU (a file that is not readable YAML counts whole in both).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

import yaml

from bot import __version__
from bot.config import BotConfig
from bot.nlu.registry import component_class
from bot.project import Project

PACKAGE = Path(__file__).resolve().parents[1]  # bot/


def _code_files() -> list[Path]:
    """The engine code a trained model depends on: a change there means retraining."""
    return sorted((PACKAGE / "nlu").rglob("*.py"))


def training_fingerprint(project: Project, config: BotConfig) -> str:
    digest = hashlib.sha256()
    digest.update(f"bankbot {__version__}\n".encode())
    for path in _code_files():
        code = path.relative_to(PACKAGE).as_posix()
        digest.update(code.encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(json.dumps(config.pipeline_dicts(), sort_keys=True).encode())
    _data_parts(digest, project, ("nlu",))
    files: list[Path] = []
    for spec in config.pipeline:
        # Every file option (``*_path``) counts, the component's defaults too (JiebaTokenizer
        # reads nlu_data/userdict.txt, SentimentAnalyzer sentiment/*.yml, unnamed in config).
        options = {**component_class(spec.name).defaults, **spec.options}
        for key, value in options.items():
            if key.endswith("_path") and isinstance(value, str) and value:
                path = project.root / value  # an absolute value stays absolute
                if path.is_file():
                    files.append(path)
    for path in sorted(set(files)):
        name = path.relative_to(project.root) if path.is_relative_to(project.root) else path
        digest.update(str(name).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


_CORE_CODE = (
    "core/tracker.py",
    "core/training_events.py",
    "core/stories.py",
    "training/story_reader.py",
    "training/story_graph.py",
)


def core_fingerprint(project: Project, config: BotConfig) -> str:
    """What the dialogue policies are trained from: policies config, domain, stories, code."""
    digest = hashlib.sha256()
    digest.update(f"bankbot {__version__}\n".encode())
    code = [PACKAGE / name for name in _CORE_CODE] + sorted(
        (PACKAGE / "core" / "policies").glob("*.py")
    )
    for path in code:
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(json.dumps([p.as_dict() for p in config.policies], sort_keys=True).encode())
    domain = [p for p in project.domain_files() if p.is_file()]
    _whole_files(digest, project, domain)
    _data_parts(digest, project, ("stories", "rules", "responses"))
    return digest.hexdigest()


def _name(project: Project, path: Path) -> str:
    return str(path.relative_to(project.root) if path.is_relative_to(project.root) else path)


def _whole_files(digest: hashlib._Hash, project: Project, files: Iterable[Path]) -> None:
    for path in files:
        digest.update(_name(project, path).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")


def _data_parts(digest: hashlib._Hash, project: Project, keys: tuple[str, ...]) -> None:
    """The ``keys`` parts of every data file (the whole file when it is not YAML)."""
    for path in project.data_files():
        raw = path.read_bytes()
        try:
            data = yaml.safe_load(raw)
        except yaml.YAMLError:
            data = None
        digest.update(_name(project, path).encode() + b"\0")
        if isinstance(data, dict):
            part = {k: data[k] for k in keys if k in data}
            digest.update(json.dumps(part, sort_keys=True, default=str).encode() + b"\0")
        else:
            digest.update(raw + b"\0")
