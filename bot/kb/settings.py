"""The ``knowledge_base:`` section of config.yml, with defaults for everything not given."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from bot.errors import ConfigError
from bot.settings_file import read_mapping

SECTION = "knowledge_base"


@dataclass(frozen=True)
class Thresholds:
    """On calibrated scores (the probability that an entry answers the query):

    ``answer`` when the top entry scores at least ``answer`` and leads the next one by at
    least ``margin``; else ``clarify`` when the top entry scores at least ``clarify``, offering
    it and up to ``max_clarify - 1`` more entries scoring at least ``candidate``; else ``none``.
    """

    answer: float = 0.6
    margin: float = 0.2
    clarify: float = 0.3
    candidate: float = 0.1
    max_clarify: int = 3


@dataclass(frozen=True)
class KBSettings:
    embedder: dict[str, Any] = field(default_factory=lambda: {"name": "tfidf_svd"})
    dictionary_path: str | None = None
    index: str = "auto"
    flat_max_vectors: int = 10000
    hnsw_m: int = 16
    ef_construction: int = 40
    ef_search: int = 64
    nprobe: int = 16
    classifier_max_entries: int = 1000
    calibration_queries: int = 2000
    dense_candidates: int = 40
    lexical_candidates: int = 40
    classifier_candidates: int = 10
    lexical_budget: int = 10000
    search_threads: int = 1
    # Searches remembered per loaded build (0: none). A search is a pure function of the
    # build, the text, top, channel and day, and customers ask the same questions again.
    search_cache: int = 2048
    thresholds: Thresholds = field(default_factory=Thresholds)
    root: Path | None = field(default=None, compare=False)

    def dictionary_file(self) -> Path | None:
        """The jieba user dictionary, relative to the project folder."""
        if not self.dictionary_path:
            return None
        path = Path(self.dictionary_path)
        return path if path.is_absolute() or self.root is None else self.root / path

    def build_options(self) -> dict[str, Any]:
        """What a build depends on (part of the build fingerprint)."""
        keys = (
            "embedder",
            "dictionary_path",
            "index",
            "flat_max_vectors",
            "hnsw_m",
            "ef_construction",
            "classifier_max_entries",
            "calibration_queries",
            "dense_candidates",
            "lexical_candidates",
            "classifier_candidates",
            "lexical_budget",
        )
        data = asdict(self)
        return {k: data[k] for k in keys}

    @classmethod
    def from_config(cls, config: dict[str, Any] | None, root: Path | None = None) -> KBSettings:
        """From a whole config.yml mapping or just its ``knowledge_base`` section."""
        config = config or {}
        if not isinstance(config, dict):
            raise ConfigError("config.yml must be a mapping")
        known = {f.name for f in fields(cls)} - {"root"}
        if SECTION in config:
            section = config[SECTION] or {}
        elif config and set(config) <= known:  # the section itself
            section = config
        else:
            section = {}
        if not isinstance(section, dict):
            raise ConfigError(f"config.yml: '{SECTION}' must be a mapping")
        values: dict[str, Any] = {"root": root}
        for key, value in section.items():
            if key not in known:
                raise ConfigError(
                    f"config.yml: unknown option '{SECTION}.{key}'; known: "
                    + ", ".join(sorted(known))
                )
            if key == "thresholds":
                values[key] = _thresholds(value)
            elif key == "embedder":
                if isinstance(value, str):
                    value = {"name": value}
                if not isinstance(value, dict) or not isinstance(value.get("name"), str):
                    raise ConfigError(
                        f"config.yml: '{SECTION}.embedder' needs a 'name' such as tfidf_svd"
                    )
                values[key] = dict(value)
            elif key == "index":
                values[key] = str(value)
            elif key == "dictionary_path":
                if value is not None and not isinstance(value, str):
                    raise ConfigError(f"config.yml: '{SECTION}.dictionary_path' must be a path")
                values[key] = value
            else:
                if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                    raise ConfigError(f"config.yml: '{SECTION}.{key}' must be a whole number ≥ 0")
                values[key] = value
        return cls(**values)


def _thresholds(value: Any) -> Thresholds:
    if not isinstance(value, dict):
        raise ConfigError(f"config.yml: '{SECTION}.thresholds' must be a mapping")
    names = {f.name for f in fields(Thresholds)}
    out: dict[str, Any] = {}
    for key, raw in value.items():
        if key not in names:
            raise ConfigError(
                f"config.yml: unknown option '{SECTION}.thresholds.{key}'; known: "
                + ", ".join(sorted(names))
            )
        if key == "max_clarify":
            if not isinstance(raw, int) or raw < 1:
                raise ConfigError(f"config.yml: '{SECTION}.thresholds.max_clarify' must be ≥ 1")
            out[key] = raw
        else:
            if not isinstance(raw, int | float) or not 0.0 <= float(raw) <= 1.0:
                raise ConfigError(
                    f"config.yml: '{SECTION}.thresholds.{key}' must be a number in [0, 1]"
                )
            out[key] = float(raw)
    return Thresholds(**out)


def read_config_mapping(config_file: Path | None) -> dict[str, Any]:
    """The whole config.yml as a mapping ({} when the file is missing)."""
    if config_file is None or not config_file.is_file():
        return {}
    return read_mapping(config_file, holds="language, pipeline, knowledge_base, ...")


def read_settings(config_file: Path | None) -> KBSettings:
    """Settings from a config.yml file (defaults when it is missing or has no section)."""
    root = config_file.parent if config_file is not None else None
    return KBSettings.from_config(read_config_mapping(config_file), root)
