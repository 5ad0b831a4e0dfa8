"""``bot run actions``: rasa_sdk's own action server for the project's ``actions/``."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any


def register(sub: Any) -> None:
    from bot.cli.main import add_project_option

    run = sub.add_parser("run", help="run a server", description="Run a server.")
    run_sub = run.add_subparsers(dest="run_target", metavar="TARGET")
    run_sub.required = True
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
