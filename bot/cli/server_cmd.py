"""``bot token CUSTOMER_ID``: a development token for the app channel (``bot run`` itself is in
``run_cmd``)."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    from bot.cli.options import add_project_option

    token = sub.add_parser(
        "token",
        help="print a development JWT for the app channel",
        description="Print an HS256 token whose 'sub' is CUSTOMER_ID, signed with the "
        "configured secret (BOT_JWT_SECRET or channels.app.jwt_secret) or else the public "
        "development secret, which is refused when BOT_ENV=production. Send it as "
        "'Authorization: Bearer <token>' to /webhooks/app/webhook.",
    )
    add_project_option(token)
    token.add_argument("customer_id", metavar="CUSTOMER_ID", help="e.g. C1001")
    token.add_argument(
        "--minutes", type=float, default=60.0, help="lifetime in minutes (default 60)"
    )
    token.set_defaults(handler=print_token)


def print_token(args: argparse.Namespace) -> int:
    from bot.channels.identity import issue_token
    from bot.errors import BotError, ConfigError
    from bot.project import Project
    from bot.server.project_settings import Settings
    from bot.server.settings import ServerSettings, is_production

    if args.minutes <= 0:
        raise BotError("--minutes must be positive")
    try:
        settings = Settings.load(Project.find(args.project)).server
    except ConfigError:
        if args.project:
            raise
        settings = ServerSettings(production=is_production())  # outside a project: defaults
    print(issue_token(args.customer_id, settings.jwt, args.minutes, settings.production))
    return 0
