"""One ``.tar.gz`` per trained model: ``model.json`` (resolved config, fingerprint) plus
``nlu/`` with one folder per component, ``core/`` and the merged ``domain.yml``. Archives
are named ``<time>-<fingerprint>.tar.gz``, or ``<name>.tar.gz`` with Rasa's
``--fixed-model-name`` (overwritten by the next training); the newest archive is the one
written last. They are unpacked once into ``models/.unpacked/<name>/`` and loaded from
there (a rewritten archive of the same name is unpacked again)."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bot import __version__
from bot.core.policies.ensemble import PolicyEnsemble
from bot.domain import Domain, load_domain
from bot.errors import ModelNotFoundError
from bot.nlu.pipeline import NLUPipeline

FORMAT_VERSION = 2  # bump when a saved component layout changes
META = "model.json"
_SOURCE = ".archive"  # in an unpacked copy: the archive's mtime and size it was unpacked from


@dataclass(frozen=True)
class ModelMeta:
    name: str
    fingerprint: str
    created_at: str
    bot_version: str
    config: dict[str, Any]
    training: dict[str, Any]
    fingerprints: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, name: str, data: dict[str, Any]) -> ModelMeta:
        return cls(
            name=name,
            fingerprint=data["fingerprint"],
            created_at=data["created_at"],
            bot_version=data.get("bot_version", "?"),
            config=data.get("config", {}),
            training=data.get("training", {}),
            fingerprints=data.get("fingerprints", {}),
        )


@dataclass
class LoadedModel:
    meta: ModelMeta
    nlu: NLUPipeline
    path: Path
    core: PolicyEnsemble | None = None
    domain: Domain | None = None
    folder: Path | None = None


def save_model(
    models_dir: Path,
    nlu: NLUPipeline | Path,
    fingerprint: str,
    config: dict[str, Any],
    training: dict[str, Any],
    *,
    core: PolicyEnsemble | None = None,
    domain_file: Path | None = None,
    domain: Domain | None = None,
    fingerprints: dict[str, str] | None = None,
    name: str | None = None,
) -> Path:
    """Write an archive (``<name>.tar.gz`` when ``name`` is given). ``nlu`` may be the
    folder of an earlier model's NLU part (reused when its fingerprint is unchanged). The
    domain is ``domain`` as merged (a domain folder, data file responses), or a file."""
    models_dir.mkdir(parents=True, exist_ok=True)
    if name is None:
        # Microseconds keep names unique and in training order when two models are trained
        # within one second (latest_model sorts equal times by name).
        now = time.time()
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now)) + f"-{int(now % 1 * 1e6):06d}"
        name = f"{stamp}-{fingerprint[:8]}"
    meta = {
        "format_version": FORMAT_VERSION,
        "bot_version": __version__,
        "created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "fingerprint": fingerprint,
        "fingerprints": fingerprints or {},
        "config": {**config, "pipeline": _pipeline_config(nlu)},
        "training": training,
    }
    with tempfile.TemporaryDirectory(dir=models_dir) as tmp:
        work = Path(tmp)
        if isinstance(nlu, Path):
            shutil.copytree(nlu, work / "nlu")
        else:
            nlu.persist(work / "nlu")
        if core is not None:
            core.persist(work / "core")
        if domain is not None:
            (work / "domain.yml").write_text(
                yaml.safe_dump(domain.raw, allow_unicode=True, sort_keys=False), encoding="utf-8"
            )
        elif domain_file is not None:
            shutil.copy(domain_file, work / "domain.yml")
        (work / META).write_text(json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8")
        partial = models_dir / f".{name}.tar.gz.partial"
        with tarfile.open(partial, "w:gz") as tar:
            tar.add(work / META, arcname=META)
            for part in ("nlu", "core", "domain.yml"):
                if (work / part).exists():
                    tar.add(work / part, arcname=part)
        target = models_dir / f"{name}.tar.gz"
        partial.replace(target)  # atomic: a reader never sees half an archive
    return target


def _pipeline_config(nlu: NLUPipeline | Path) -> list[dict[str, Any]]:
    if isinstance(nlu, Path):
        specs: list[dict[str, Any]] = json.loads((nlu / "pipeline.json").read_text("utf-8"))
        return specs
    return nlu.resolved_config()


def latest_model(models_dir: Path) -> Path | None:
    """The archive written last (equal times: the last name)."""
    if not models_dir.is_dir():
        return None
    archives = [(p.stat().st_mtime_ns, p.name, p) for p in models_dir.glob("*.tar.gz")]
    return max(archives)[2] if archives else None


def read_meta(archive: Path) -> ModelMeta:
    with tarfile.open(archive, "r:gz") as tar:
        member = tar.extractfile(META)
        if member is None:
            raise ModelNotFoundError(f"{archive} has no {META}; retrain with 'bot train'")
        data = json.load(io.TextIOWrapper(member, encoding="utf-8"))
    return ModelMeta.from_dict(archive.name.removesuffix(".tar.gz"), data)


def _unpack(archive: Path) -> Path:
    name = archive.name.removesuffix(".tar.gz")
    cache = archive.parent / ".unpacked"
    target = cache / name
    stat = archive.stat()
    stamp = f"{stat.st_mtime_ns}:{stat.st_size}"
    if (target / META).is_file():
        source = target / _SOURCE
        if not source.is_file() or source.read_text(encoding="utf-8") == stamp:
            return target
        # A fixed-name archive written again: its old unpacked copy goes.
        stale = cache / f".{name}.stale.{time.time_ns()}"
        with contextlib.suppress(OSError):  # another process moved it first
            target.rename(stale)
        shutil.rmtree(stale, ignore_errors=True)
    cache.mkdir(exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=cache, prefix=f".{name}."))
    try:
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(tmp, filter="data")
        (tmp / _SOURCE).write_text(stamp, encoding="utf-8")
        try:
            tmp.rename(target)
        except OSError:  # another process unpacked it first
            shutil.rmtree(tmp, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def load_model(path: Path) -> LoadedModel:
    """Load an archive, the newest archive when ``path`` is a models folder, or an
    unpacked model folder (holding ``model.json``)."""
    if path.is_dir() and (path / META).is_file():
        archive, folder = path, path
    else:
        found = latest_model(path) if path.is_dir() else path
        if found is None or not found.is_file():
            raise ModelNotFoundError(
                f"no trained model in {path}. Fix: train one with 'bot train', or pass "
                "--model with an archive (.tar.gz) or a models folder"
            )
        try:
            archive, folder = found, _unpack(found)
        except (tarfile.TarError, EOFError) as exc:
            raise ModelNotFoundError(
                f"{found} is not a model archive ({exc}). Fix: pass --model with a .tar.gz "
                "written by 'bot train', or retrain"
            ) from exc
    data = json.loads((folder / META).read_text(encoding="utf-8"))
    if data.get("format_version") != FORMAT_VERSION:
        raise ModelNotFoundError(
            f"{archive.name} was written by another version of bankbot (format "
            f"{data.get('format_version')}, need {FORMAT_VERSION}); retrain with 'bot train'"
        )
    meta = ModelMeta.from_dict(archive.name.removesuffix(".tar.gz"), data)
    core = PolicyEnsemble.load(folder / "core") if (folder / "core").is_dir() else None
    domain = load_domain(folder / "domain.yml") if (folder / "domain.yml").is_file() else None
    return LoadedModel(meta, NLUPipeline.load(folder / "nlu"), archive, core, domain, folder)


def unpacked_folder(archive: Path) -> Path:
    """The unpacked copy of ``archive`` (unpacking it if needed)."""
    return _unpack(archive)
