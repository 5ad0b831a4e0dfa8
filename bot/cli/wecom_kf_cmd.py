"""``bot wecom-kf bind EXTERNAL_USERID CUSTOMER_ID`` / ``unbind EXTERNAL_USERID`` / ``list``:
the external_userid-to-customer bindings of the WeChat customer service channel
(``bot/channels/wecom_kf/store.py``), as ``bot wechat`` binds OpenIDs."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    from bot.cli.options import add_project_option

    kf = sub.add_parser(
        "wecom-kf",
        help="bind WeChat customer service (微信客服) users to customers",
        description="A bound external_userid's messages belong to the verified customer "
        "(conversation customer:<id>, shared with the app channel). Bindings live in the "
        "database of credentials.yml's wecom_kf.db, else the tracker store's.",
    )
    commands = kf.add_subparsers(dest="wecom_kf_command", metavar="SUBCOMMAND")
    commands.required = True
    bind = commands.add_parser("bind", help="bind EXTERNAL_USERID to CUSTOMER_ID")
    bind.add_argument("external_userid", metavar="EXTERNAL_USERID")
    bind.add_argument("customer_id", metavar="CUSTOMER_ID")
    unbind = commands.add_parser("unbind", help="remove the binding of EXTERNAL_USERID")
    unbind.add_argument("external_userid", metavar="EXTERNAL_USERID")
    listing = commands.add_parser("list", help="print every binding")
    for parser in (bind, unbind, listing):
        add_project_option(parser)
        parser.set_defaults(handler=run)


def open_store(project_dir: str | None) -> tuple[Any, Any]:
    from bot.channels.wecom_kf.channel import store_for
    from bot.core.tracker_store import create_tracker_store
    from bot.endpoints import read_endpoints
    from bot.errors import BotError
    from bot.project import Project
    from bot.server.channels import read_credentials

    project = Project.find(project_dir)
    credentials = read_credentials(project.credentials_file)
    if credentials is None or credentials.wecom_kf is None:
        raise BotError(
            f"{project.credentials_file} has no wecom_kf section. Fix: configure the channel "
            "(docs/wecom-kf.md)"
        )
    settings = credentials.wecom_kf
    if settings.db:
        return store_for(settings), None
    tracker_store = create_tracker_store(read_endpoints(project).get("tracker_store"), project.root)
    return store_for(settings, tracker_store), tracker_store


def run(args: argparse.Namespace) -> int:
    from bot.cli.bindings import run_binding_command

    store, tracker_store = open_store(args.project)
    return run_binding_command(
        args.wecom_kf_command,
        getattr(args, "external_userid", None),
        getattr(args, "customer_id", None),
        bind=store.bind,
        unbind=store.unbind,
        rows=store.bindings,
        tracker_store=tracker_store,
    )
