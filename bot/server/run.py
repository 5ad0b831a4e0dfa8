"""Serving the project: one process (``workers=1``) or Sanic's worker manager, each worker
loading the latest model itself.

With several workers the managing process loads no model: it holds a bare app of the same
name that only carries the server settings, checks that a model exists, and starts the
workers; each worker loads the model once (so N workers cost N models, not N + 1, and start
side by side instead of after the manager's load).

Sanic's manager notices a worker that died but does not replace it; :func:`supervise` does:
a thread of the managing process logs the dead worker (name, pid, exit code) and asks the
manager to start it again (its monitor restarts it), at most once per ``RESTART_PAUSE``."""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
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
SUPERVISE_SECONDS = 0.5  # how often the managing process looks at its workers
RESTART_PAUSE = 2.0  # at least this long between two restarts of one worker
# Sanic gives up (and stops every worker) when a worker is not serving after 30 s; loading
# the model on a busy machine may take longer.
WORKER_START_SECONDS = 180
# Connections the kernel queues while a worker is busy (Sanic's default is 100): behind nginx
# a burst of new connections otherwise overflows it (connect timeouts, 504s).
BACKLOG = 1024

logger = logging.getLogger(__name__)


def dead_workers(manager: Any) -> list[Any]:
    """The server worker processes of Sanic's ``manager`` that have exited with an error
    (killed, crashed), as opposed to stopping when asked."""
    if getattr(manager, "_shutting_down", False):
        return []
    dead = []
    for process in manager.transient_processes:
        try:
            alive = process.is_alive()
            code = process.exitcode
        except (AssertionError, AttributeError, ValueError):  # not started yet
            continue
        if not alive and code not in (None, 0):
            dead.append(process)
    return dead


def _watch(manager: Any, stop: threading.Event, interval: float) -> None:
    suspects: set[str] = set()
    restarted: dict[str, float] = {}
    while not stop.wait(interval):
        dead = {p.name: p for p in dead_workers(manager)}
        for name, process in dead.items():
            # seen dead twice in a row (not a worker stopping during a shutdown) and not
            # restarted just now
            if name not in suspects or time.monotonic() - restarted.get(name, -1e9) < (
                RESTART_PAUSE
            ):
                continue
            if getattr(manager, "_shutting_down", False):
                return
            code = process.exitcode
            how = f"signal {-code}" if code < 0 else f"exit code {code}"
            logger.error("worker %s (pid %s) died (%s); starting a new one", name, process.pid, how)
            restarted[name] = time.monotonic()
            manager.monitor_publisher.send(f"{name}:")  # the monitor restarts it
        suspects = set(dead)


def supervise(app: Sanic[Any, Any], interval: float = SUPERVISE_SECONDS) -> threading.Event:
    """Replace dead workers of ``app``'s manager once it runs (and give a starting worker
    ``WORKER_START_SECONDS``); set the returned event to stop watching."""
    from sanic.worker.manager import WorkerManager
    from sanic.worker.process import WorkerProcess

    threshold = WORKER_START_SECONDS * 10  # Sanic counts tenths of a second
    WorkerManager.THRESHOLD = WorkerProcess.THRESHOLD = max(WorkerProcess.THRESHOLD, threshold)
    stop = threading.Event()

    @app.main_process_ready
    async def start_watching(app: Sanic[Any, Any]) -> None:
        thread = threading.Thread(
            target=_watch, args=(app.manager, stop, interval), name="bankbot-supervisor"
        )
        thread.daemon = True
        thread.start()

    @app.main_process_stop
    async def stop_watching(app: Sanic[Any, Any]) -> None:
        stop.set()

    return stop


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
        backlog=BACKLOG,
    )
    if single:
        Sanic.serve_single(primary=app)
    else:
        supervise(app)
        Sanic.serve(primary=app, app_loader=loader)
