"""Trained model archives under ``models/``."""

from bot.model.archive import (
    LoadedModel,
    ModelMeta,
    latest_model,
    load_model,
    read_meta,
    save_model,
)
from bot.model.fingerprint import training_fingerprint

__all__ = [
    "LoadedModel",
    "ModelMeta",
    "latest_model",
    "load_model",
    "read_meta",
    "save_model",
    "training_fingerprint",
]
