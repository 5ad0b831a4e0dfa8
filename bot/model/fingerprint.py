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


_CORE_CODE = ("tracker.py", "training_events.py", "stories.py", "story_reader.py", "story_graph.py")


def core_fingerprint(project: Project, config: BotConfig) -> str:
    """What the dialogue policies are trained from: policies config, domain, stories, code."""
    digest = hashlib.sha256()
    digest.update(f"bankbot {__version__}\n".encode())
    core = Path(__file__).resolve().parents[1] / "core"
    code = [core / name for name in _CORE_CODE] + sorted((core / "policies").glob("*.py"))
    for path in code:
        if path.is_file():
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update(json.dumps([p.as_dict() for p in config.policies], sort_keys=True).encode())
    files = [project.domain_file] if project.domain_file.is_file() else []
    if project.stories_dir.is_dir():
        files += sorted(p for p in project.stories_dir.rglob("*") if p.suffix in {".yml", ".yaml"})
    for path in files:
        digest.update(str(path.relative_to(project.root)).encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()
