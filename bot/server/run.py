"""Serving the project: one process (``workers=1``) or Sanic's worker manager, each worker
loading the latest model itself."""

from __future__ import annotations

import os
import tempfile
from functools import partial
from pathlib import Path

from sanic import Sanic
from sanic.worker.loader import AppLoader

from bot.project import Project
from bot.server.app import app_for_project
from bot.server.settings import ServerSettings


def serve(project: Project, settings: ServerSettings, model: Path | None = None) -> None:
    settings.check()
    os.environ["BOT_PROJECT"] = str(project.root)  # the project's actions find their data
    if settings.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # before any worker imports prometheus_client: /metrics sums over the workers
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="bankbot-metrics-")
    loader = AppLoader(factory=partial(app_for_project, str(project.root),
                                       str(model) if model else None, settings))
    app = loader.load()
    single = settings.workers == 1
    app.prepare(host=settings.host, port=settings.port, workers=settings.workers,
                single_process=single, motd=False, access_log=False)
    if single:
        Sanic.serve_single(primary=app)
    else:
        Sanic.serve(primary=app, app_loader=loader)
