"""``bot train``: read the project, train what changed, write one model archive."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from bot.config import load_config
from bot.errors import TrainingDataError
from bot.model import latest_model, read_meta, save_model, training_fingerprint
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
    config = load_config(project.config_file)
    pipeline = NLUPipeline.from_config(config, project.root)
    pipeline.train(data, progress)
    return pipeline


def train(
    project: Project, *, force: bool = False, progress: ProgressCallback | None = None
) -> TrainResult:
    config = load_config(project.config_file)
    fingerprint = training_fingerprint(project, config)
    previous = latest_model(project.models_dir)
    if previous is not None and not force:
        try:
            unchanged = read_meta(previous).fingerprint == fingerprint
        except Exception:  # an unreadable archive is simply retrained
            unchanged = False
        if unchanged:
            return TrainResult(previous, True, 0.0, 0, 0)
    started = time.perf_counter()
    data = load_training_data(project)
    pipeline = NLUPipeline.from_config(config, project.root)
    pipeline.train(data, progress)
    seconds = time.perf_counter() - started
    archive = save_model(
        project.models_dir,
        pipeline,
        fingerprint,
        {"language": config.language, "assistant_id": config.assistant_id},
        {
            "seconds": round(seconds, 3),
            "examples": len(data.examples),
            "intents": data.intents,
        },
    )
    return TrainResult(archive, False, seconds, len(data.examples), len(data.intents))
