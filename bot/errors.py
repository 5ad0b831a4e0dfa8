"""Exceptions shared across the engine. Each carries a message a trainer can act on."""

from __future__ import annotations


class BotError(Exception):
    """Base class for errors that the CLI prints without a traceback."""


class ConfigError(BotError):
    """``config.yml`` or ``domain.yml`` is malformed or names something unknown."""


class TrainingDataError(BotError):
    """A training data file cannot be read at all (YAML syntax, wrong top-level shape)."""


class ModelNotFoundError(BotError):
    """No trained model archive exists yet."""
