"""Trained model archives under ``models/``."""

from bot.model.archive import (
    LoadedModel,
    ModelMeta,
    latest_model,
    load_model,
    read_meta,
    save_model,
    unpacked_folder,
)
from bot.model.fingerprint import core_fingerprint, training_fingerprint

__all__ = [
    "LoadedModel",
    "ModelMeta",
    "core_fingerprint",
    "latest_model",
    "load_model",
    "read_meta",
    "save_model",
    "training_fingerprint",
    "unpacked_folder",
]
