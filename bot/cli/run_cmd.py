"""``bot run``: the assistant's HTTP server (``bot/server``); ``bot run actions``: rasa_sdk's own
action server for the project's ``actions/`` package or ``actions.py`` module."""

from __future__ import annotations

import argparse
import logging
import os
from typing import Any


def register(sub: Any) -> None:
    from bot.cli.options import add_project_option, add_project_options

    run = sub.add_parser(
        "run",
        help="run the assistant's HTTP server (or 'bot run actions')",
        description="Start the HTTP server (channels, API) with the latest model. Host, port "
        "and workers default to 'server:' in config.yml, then 127.0.0.1:5005 and 1 worker. "
        "'bot run actions' starts the action server instead.",
    )
    add_project_options(run)
    run.add_argument(
        "--host", "--interface", "-i", dest="server_host", default=None, help="default 127.0.0.1"
    )
    run.add_argument(
        "--port", "-p", dest="server_port", type=int, default=None, help="default 5005"
    )
    run.add_argument(
        "--workers",
        dest="server_workers",
        type=int,
        default=None,
        help="worker processes (default 1); one that dies is logged and replaced",
    )
    api = run.add_argument_group("HTTP API (as Rasa's flags)")
    api.add_argument(
        "--enable-api",
        action="store_true",
        help="accepted for Rasa's command lines: the HTTP API (/status, /model/"
        "parse, /conversations/...) is always mounted, and closed unless "
        "--auth-token or --jwt-secret (or server: in config.yml) gives "
        "credentials",
    )
    api.add_argument(
        "--auth-token",
        metavar="TOKEN",
        default=None,
        help="token the HTTP API accepts as ?token=TOKEN (default: "
        "$BOT_AUTH_TOKEN or server.auth_token in config.yml)",
    )
    api.add_argument(
        "--jwt-secret",
        metavar="KEY",
        default=None,
        help="key verifying 'Authorization: Bearer <JWT>' on the HTTP API: the "
        "shared secret for HS*, the public key (PEM text or file) otherwise",
    )
    api.add_argument(
        "--jwt-method",
        metavar="METHOD",
        default=None,
        help="JWT algorithm of --jwt-secret (default HS256)",
    )
    api.add_argument(
        "--cors",
        metavar="ORIGIN",
        nargs="*",
        action="extend",
        default=None,
        help="origins browsers may call the server from ('*': any)",
    )
    logs = run.add_argument_group("logging (as Rasa's flags)")
    logs.add_argument(
        "-v",
        "--verbose",
        dest="log_level",
        action="store_const",
        const=logging.INFO,
        default=None,
        help="log at INFO level",
    )
    logs.add_argument(
        "-vv",
        "--debug",
        dest="log_level",
        action="store_const",
        const=logging.DEBUG,
        help="log at DEBUG level",
    )
    logs.add_argument(
        "--quiet",
        dest="log_level",
        action="store_const",
        const=logging.WARNING,
        help="log warnings and errors only",
    )
    logs.add_argument(
        "--log-file",
        metavar="FILE",
        default=None,
        help="write the log to FILE instead of standard error",
    )
    run.set_defaults(handler=run_server)
    run_sub = run.add_subparsers(dest="run_target", metavar="TARGET")
    actions = run_sub.add_parser(
        "actions",
        help="start rasa_sdk's action server for actions/ or actions.py (port 5055)",
        description="Start rasa_sdk's action server with the project's actions/ package or "
        "actions.py module. Point the assistant at it with 'action_endpoint: {url: "
        "http://localhost:5055/webhook}' in endpoints.yml.",
    )
    add_project_option(actions)
    actions.add_argument(
        "--endpoints", default=None, metavar="FILE", help="endpoints file (default: endpoints.yml)"
    )
    actions.add_argument("--port", "-p", type=int, default=5055, help="port (default 5055)")
    actions.add_argument(
        "--actions",
        default=None,
        metavar="MODULE",
        help="action package or module (default: actions)",
    )
    actions.set_defaults(handler=run_actions)


def run_server(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from bot.cli.options import export_paths, model_path, project_from_args
    from bot.server.project_settings import Settings
    from bot.server.run import serve
    from bot.server.settings import with_overrides

    if args.log_level is not None or args.log_file:
        logging.basicConfig(
            level=args.log_level or logging.INFO,
            filename=args.log_file,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
    from bot.privacy import install_masking

    install_masking()  # the workers install it again at start (bot.server.app)
    project = project_from_args(args)
    export_paths(project)  # the workers get the folder only
    project_settings = Settings.load(project)  # every settings file, read once
    settings = project_settings.server
    settings = replace(
        settings,
        host=args.server_host or settings.host,
        port=settings.port if args.server_port is None else args.server_port,
        workers=max(1, args.server_workers or settings.workers),
        cors_origins=settings.cors_origins if not args.cors else tuple(args.cors),
    )
    # a --jwt-secret key file is relative to the current folder, as the path flags
    settings = with_overrides(
        settings, auth_token=args.auth_token, jwt_secret=args.jwt_secret, jwt_method=args.jwt_method
    )
    settings.check()
    base = (
        f"http://{'127.0.0.1' if settings.host in ('0.0.0.0', '::') else settings.host}"
        f":{settings.port}"
    )
    print(
        f"bankbot: serving {project.root} with {settings.workers} "
        f"worker{'s' if settings.workers > 1 else ''}; Ctrl+C stops\n"
        f"  chat page (H5):  {base}/\n"
        f"  agent console:   {base}/agent   (bot agents add NAME --groups 账户 to create one)\n"
        f"  API:             {base}/openapi.json",
        flush=True,
    )
    serve(project, replace(project_settings, server=settings), model_path(args))
    return 0


def run_actions(args: argparse.Namespace) -> int:
    from rasa_sdk.endpoint import run
    from rasa_sdk.executor import ActionExecutor

    from bot.agent import actions_module, import_actions
    from bot.cli.options import export_paths, project_from_args
    from bot.errors import ConfigError

    project = project_from_args(args)
    export_paths(project)  # the actions' bank backend reads the same endpoints file
    module = args.actions or actions_module(project)
    if module is None:
        raise ConfigError(
            f"{project.root} has no actions/ package and no actions.py. Fix: write the custom "
            "actions there, or pass --actions MODULE"
        )
    os.environ["BOT_PROJECT"] = str(project.root)
    os.chdir(project.root)
    import_actions(project, module)  # a syntax error is one line, not rasa_sdk's traceback
    executor = ActionExecutor()
    executor.register_package(module)
    run(executor, port=args.port, endpoints=str(project.endpoints_file))
    return 0
