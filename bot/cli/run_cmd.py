"""``bot run``: the assistant's HTTP server (``bot/server``); ``bot run actions``: rasa_sdk's own
action server for the project's ``actions/``."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any


def register(sub: Any) -> None:
    from bot.cli.main import add_project_option

    run = sub.add_parser(
        "run",
        help="run the assistant's HTTP server (or 'bot run actions')",
        description="Start the HTTP server (channels, API) with the latest model. Host, port "
        "and workers default to 'server:' in config.yml, then 127.0.0.1:5005 and 1 worker. "
        "'bot run actions' starts the action server instead.",
    )
    add_project_option(run)
    run.add_argument("--host", dest="server_host", default=None, help="default 127.0.0.1")
    run.add_argument("--port", dest="server_port", type=int, default=None, help="default 5005")
    run.add_argument("--workers", dest="server_workers", type=int, default=None,
                     help="worker processes (default 1)")
    run.add_argument("--model", dest="server_model", default=None,
                     help="model archive (default: the latest in models/)")
    run.set_defaults(handler=run_server)
    run_sub = run.add_subparsers(dest="run_target", metavar="TARGET")
    actions = run_sub.add_parser(
        "actions",
        help="start rasa_sdk's action server for actions/ (port 5055)",
        description="Start rasa_sdk's action server with the project's actions/ package. "
        "Point the assistant at it with 'action_endpoint: {url: "
        "http://localhost:5055/webhook}' in endpoints.yml.",
    )
    add_project_option(actions)
    actions.add_argument("--port", type=int, default=5055, help="port (default 5055)")
    actions.add_argument("--actions", default="actions", help="action package (default actions)")
    actions.set_defaults(handler=run_actions)


def run_server(args: argparse.Namespace) -> int:
    from dataclasses import replace
    from pathlib import Path

    from bot.project import Project
    from bot.server.run import serve
    from bot.server.settings import load_settings

    project = Project.find(args.project)
    settings = load_settings(project)
    settings = replace(
        settings,
        host=args.server_host or settings.host,
        port=settings.port if args.server_port is None else args.server_port,
        workers=max(1, args.server_workers or settings.workers),
    )
    settings.check()
    base = f"http://{'127.0.0.1' if settings.host in ('0.0.0.0', '::') else settings.host}" \
           f":{settings.port}"
    print(f"bankbot: serving {project.root} with {settings.workers} "
          f"worker{'s' if settings.workers > 1 else ''}; Ctrl+C stops\n"
          f"  chat page (H5):  {base}/\n"
          f"  agent console:   {base}/agent   (bot agents add NAME --groups 账户 to create one)\n"
          f"  API:             {base}/openapi.json", flush=True)
    serve(project, settings, Path(args.server_model) if args.server_model else None)
    return 0


def run_actions(args: argparse.Namespace) -> int:
    from rasa_sdk.endpoint import run
    from rasa_sdk.executor import ActionExecutor

    from bot.project import Project

    project = Project.find(args.project)
    os.environ["BOT_PROJECT"] = str(project.root)
    os.chdir(project.root)
    if str(project.root) not in sys.path:
        sys.path.insert(0, str(project.root))
    executor = ActionExecutor()
    executor.register_package(args.actions)
    run(executor, port=args.port, endpoints=str(project.root / "endpoints.yml"))
    return 0
