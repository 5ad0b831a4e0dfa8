"""``bot train``: read the project, train what changed, write one model archive.

NLU and dialogue have separate fingerprints: an unchanged part is copied from the previous
archive instead of being trained again; when nothing changed no archive is written.
Training data is every YAML file of the project's data paths (``nlu_data/``, ``stories/``,
``data/`` or ``--data``), each holding ``nlu``, ``stories``, ``rules`` and ``responses`` in
any mix; a file that holds none of them, or an unknown top-level key, stops training.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.config import BotConfig, load_config
from bot.core.policies.ensemble import PolicyEnsemble
from bot.core.stories import Story
from bot.domain import Domain, load_project_domain
from bot.errors import TrainingDataError
from bot.model import (
    core_fingerprint,
    latest_model,
    read_meta,
    save_model,
    training_fingerprint,
    unpacked_folder,
)
from bot.nlu.pipeline import NLUPipeline, ProgressCallback
from bot.project import Project
from bot.settings_file import read_mapping
from bot.training import Problem, TrainingData, load_nlu_files
from bot.training.nlu_yaml import check_data_file
from bot.training.story_graph import flatten
from bot.training.story_reader import load_story_files


@dataclass(frozen=True)
class TrainResult:
    archive: Path
    skipped: bool
    seconds: float
    examples: int
    intents: int
    nlu_reused: bool = False
    stories: int = 0
    rules: int = 0
    kb: Any = None  # bot.kb.build.BuildResult when the project has a knowledge base
    # Lines for the trainer: substituted components and policies, options not honoured
    # (the defaults applied to config.yml: bot.config.describe_defaults).
    notes: tuple[str, ...] = ()


def _shown(project: Project, path: Path) -> str:
    shown = str(path.relative_to(project.root) if path.is_relative_to(project.root) else path)
    return f"{shown}/" if path.is_dir() else shown


def _raise_errors(problems: list[Problem], what: str) -> None:
    """One line for one error, else a count and the first twenty, each file:line first."""
    errors = [p for p in problems if p.level == "error"]
    if len(errors) == 1:
        (error,) = errors
        where = f"{error.source}: " if error.source else ""
        raise TrainingDataError(
            f"{where}{error.message}. Fix: {error.hint} (all checks: 'bot data validate')"
        )
    if errors:
        listing = "\n".join(f"  {p}" for p in errors[:20])
        raise TrainingDataError(
            f"{what} has {len(errors)} error(s); run 'bot data validate':\n{listing}"
        )


def data_files(project: Project) -> list[Path]:
    """The training data files, their top level checked (YAML syntax, known keys)."""
    where = project.training_paths()
    files = project.data_files()
    unread = project.unread_data_files()
    if not files and unread:
        raise TrainingDataError(
            f"{_shown(project, unread[0])}: Markdown/JSON training data (Rasa 1.x/2.x) is not "
            "read. Fix: convert it to YAML with Rasa 2's 'rasa data convert nlu' / 'rasa data "
            "convert core' (format: docs/nlu-data.md)"
        )
    if not files:
        shown = ", ".join(_shown(project, p) for p in where) or (
            f"{project.root} (no data/, nlu_data/ or stories/ folder)"
        )
        raise TrainingDataError(
            f"no training data files in {shown}. Fix: put YAML files with 'nlu:', 'stories:' or "
            "'rules:' under data/, or pass --data PATH"
        )
    problems = [p for path in files for p in check_data_file(path, _shown(project, path))]
    _raise_errors(problems, "the training data")
    return files


def load_training_data(project: Project) -> TrainingData:
    files = data_files(project)
    data = load_nlu_files(files, project.root)
    _raise_errors(data.problems, "the NLU data")
    if not data.examples:
        shown = ", ".join(_shown(project, p) for p in project.training_paths())
        raise TrainingDataError(
            f"no NLU examples in {shown}. Fix: add 'nlu:' with '- intent: name' and "
            "'examples: |' lines to a data file"
        )
    if len(data.intents) < 2:
        raise TrainingDataError(
            f"training needs at least two intents with examples, found {data.intents}. Fix: "
            "add examples of another intent"
        )
    return data


def train_nlu_pipeline(
    project: Project, data: TrainingData, progress: ProgressCallback | None = None
) -> NLUPipeline:
    """A trained NLU pipeline for ``data`` (nothing saved)."""
    config = load_config(project.config_file, project.root)
    pipeline = NLUPipeline.from_config(config, project.root)
    pipeline.train(data, progress)
    return pipeline


def story_paths(project: Project) -> list[Path]:
    """The files stories and rules are read from (every data file)."""
    return project.data_files()


def load_dialogue_data(project: Project) -> tuple[list[Story], list[Story]]:
    """Flattened stories and rules of the data files; errors stop training."""
    stories, rules, problems = load_story_files(story_paths(project), project.root)
    _raise_errors(problems, "the stories")
    return flatten(stories), flatten(rules)


def train_core(
    project: Project, config: BotConfig, domain: Domain | None = None
) -> tuple[PolicyEnsemble, int, int]:
    domain = domain or load_project_domain(project)
    stories, rules = load_dialogue_data(project)
    ensemble = PolicyEnsemble.from_specs(config.policies)
    ensemble.train(stories, rules, domain)
    return ensemble, len(stories), len(rules)


def build_kb(project: Project, force: bool, show_progress: bool) -> Any:
    """Build ``kb_index/`` when it has sources (skipped inside when nothing changed)."""
    kb_dir = project.root / "kb_index"
    if not (kb_dir / "sources").is_dir():
        return None
    from bot.kb.build import build_knowledge_base

    raw = read_mapping(project.config_file, required=True)
    try:
        texts = [e.text for e in load_nlu_files(project.data_files(), project.root).examples]
    except Exception:  # the NLU data is reported by NLU training itself
        texts = []
    return build_knowledge_base(kb_dir, raw, texts, force, show_progress, root=project.root)


def train(
    project: Project,
    *,
    force: bool = False,
    progress: ProgressCallback | None = None,
    kb_progress: bool = False,
) -> TrainResult:
    config = load_config(project.config_file, project.root)
    notes: list[str] = []
    kb = build_kb(project, force, kb_progress)
    nlu_fp = training_fingerprint(project, config)
    core_fp = core_fingerprint(project, config)
    fingerprint = hashlib.sha256(f"{nlu_fp}:{core_fp}".encode()).hexdigest()
    previous = latest_model(project.models_dir)
    previous_meta = None
    if previous is not None:
        try:
            previous_meta = read_meta(previous)
        except Exception:  # an unreadable archive is simply retrained
            previous_meta = None
    if (
        previous is not None
        and previous_meta is not None
        and not force
        and previous_meta.fingerprint == fingerprint
    ):
        return TrainResult(previous, True, 0.0, 0, 0, kb=kb)
    started = time.perf_counter()
    data = load_training_data(project)
    domain = load_project_domain(project)
    nlu: NLUPipeline | Path
    reused = False
    if (
        not force
        and previous is not None
        and previous_meta is not None
        and previous_meta.fingerprints.get("nlu") == nlu_fp
    ):
        nlu = unpacked_folder(previous) / "nlu"
        reused = True
    else:
        pipeline = NLUPipeline.from_config(config, project.root)
        pipeline.train(data, progress)
        nlu = pipeline
        notes.extend(pipeline.notes())  # substituted components, unhonoured options
    if progress:
        progress("dialogue policies", 0, 1)
    core, n_stories, n_rules = train_core(project, config, domain)
    notes.extend(core.notes())
    seconds = time.perf_counter() - started
    archive = save_model(
        project.models_dir,
        nlu,
        fingerprint,
        {
            "language": config.language,
            "assistant_id": config.assistant_id,
            "policies": [p.as_dict() for p in config.policies],
        },
        {
            "seconds": round(seconds, 3),
            "examples": len(data.examples),
            "intents": data.intents,
            "stories": n_stories,
            "rules": n_rules,
            "nlu_reused": reused,
        },
        core=core,
        domain=domain,
        fingerprints={"nlu": nlu_fp, "core": core_fp},
        name=project.fixed_model_name,
    )
    return TrainResult(
        archive,
        False,
        seconds,
        len(data.examples),
        len(data.intents),
        reused,
        n_stories,
        n_rules,
        kb,
        tuple(notes),
    )
