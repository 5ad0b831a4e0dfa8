"""Serving the project: one process (``workers=1``) or Sanic's worker manager, each worker
loading the latest model itself.

With several workers the managing process loads no model: it holds a bare app of the same
name that only carries the server settings, checks that a model exists, and starts the
workers; each worker loads the model once (so N workers cost N models, not N + 1, and start
side by side instead of after the manager's load)."""

from __future__ import annotations

import os
import tempfile
from functools import partial
from pathlib import Path
from typing import Any

from sanic import Sanic
from sanic.worker.loader import AppLoader

from bot.errors import ModelNotFoundError
from bot.model.archive import latest_model, read_meta
from bot.project import Project
from bot.server.app import app_for_project
from bot.server.project_settings import Settings

APP_NAME = "bankbot"


def _manager_app(project: Project, model: Path | None) -> Sanic[Any, Any]:
    """The managing process's app: the workers' name and settings, no model."""
    archive = model if model is not None else latest_model(project.models_dir)
    if archive is None or not Path(archive).is_file():
        raise ModelNotFoundError(
            f"no trained model at {model or project.models_dir}. Train one with 'bot train'."
        )
    read_meta(Path(archive))  # a model archive, before N workers find out it is not
    return Sanic(APP_NAME)


def serve(project: Project, project_settings: Settings, model: Path | None = None) -> None:
    """Serve ``project`` with its settings (read once here; each worker gets them)."""
    settings = project_settings.server
    settings.check()
    os.environ["BOT_PROJECT"] = str(project.root)  # the project's actions find their data
    # Sanic reads SANIC_* when an app is made, in this process and in every worker: a client
    # that never completes a request head (garbage, a bare-LF request line) gets a 408 and is
    # closed after request_timeout, an idle connection after keep_alive_timeout.
    os.environ["SANIC_REQUEST_TIMEOUT"] = f"{settings.request_timeout:g}"
    os.environ["SANIC_KEEP_ALIVE_TIMEOUT"] = f"{settings.keep_alive_timeout:g}"
    if settings.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # before any worker imports prometheus_client: /metrics sums over the workers
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="bankbot-metrics-")
    # the Project itself, so that overridden paths (--credentials, ...) reach every worker
    loader = AppLoader(
        factory=partial(
            app_for_project, project, str(model) if model else None, project_settings, APP_NAME
        )
    )
    single = settings.workers == 1
    app = loader.load() if single else _manager_app(project, model)
    app.prepare(
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        single_process=single,
        motd=False,
        access_log=False,
    )
    if single:
        Sanic.serve_single(primary=app)
    else:
        Sanic.serve(primary=app, app_loader=loader)
