"""``bot train``: read the project, train what changed, write one model archive.

NLU and dialogue have separate fingerprints: an unchanged part is copied from the previous
archive instead of being trained again; when nothing changed no archive is written.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bot.config import BotConfig, load_config
from bot.core.policies.ensemble import PolicyEnsemble
from bot.core.stories import Story
from bot.core.story_graph import flatten
from bot.core.story_reader import load_story_files
from bot.domain import load_domain
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
from bot.training import TrainingData, load_nlu_files


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


def load_training_data(project: Project) -> TrainingData:
    data = load_nlu_files(project.nlu_files(), project.root)
    errors = [p for p in data.problems if p.level == "error"]
    if errors:
        listing = "\n".join(f"  {p}" for p in errors[:20])
        raise TrainingDataError(
            f"the NLU data has {len(errors)} error(s); run 'bot data validate':\n{listing}"
        )
    if not data.examples:
        raise TrainingDataError(f"no intent examples under {project.nlu_dir}")
    if len(data.intents) < 2:
        raise TrainingDataError("training needs at least two intents with examples")
    return data


def train_nlu_pipeline(
    project: Project, data: TrainingData, progress: ProgressCallback | None = None
) -> NLUPipeline:
    """A trained NLU pipeline for ``data`` (nothing saved)."""
    config = load_config(project.config_file)
    pipeline = NLUPipeline.from_config(config, project.root)
    pipeline.train(data, progress)
    return pipeline


def story_paths(project: Project) -> list[Path]:
    if not project.stories_dir.is_dir():
        return []
    return sorted(p for p in project.stories_dir.rglob("*") if p.suffix in {".yml", ".yaml"})


def load_dialogue_data(project: Project) -> tuple[list[Story], list[Story]]:
    """Flattened stories and rules of ``stories/``; errors stop training."""
    stories, rules, problems = load_story_files(story_paths(project), project.root)
    errors = [p for p in problems if p.level == "error"]
    if errors:
        listing = "\n".join(f"  {p}" for p in errors[:20])
        raise TrainingDataError(
            f"the stories have {len(errors)} error(s); run 'bot data validate':\n{listing}"
        )
    return flatten(stories), flatten(rules)


def train_core(project: Project, config: BotConfig) -> tuple[PolicyEnsemble, int, int]:
    domain = load_domain(project.domain_file)
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

    raw = yaml.safe_load(project.config_file.read_text(encoding="utf-8")) or {}
    try:
        texts = [e.text for e in load_nlu_files(project.nlu_files(), project.root).examples]
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
    config = load_config(project.config_file)
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
    if progress:
        progress("dialogue policies", 0, 1)
    core, n_stories, n_rules = train_core(project, config)
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
        domain_file=project.domain_file if project.domain_file.is_file() else None,
        fingerprints={"nlu": nlu_fp, "core": core_fp},
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
    )
