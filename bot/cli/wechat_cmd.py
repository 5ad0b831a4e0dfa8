"""``bot wechat bind OPENID CUSTOMER_ID`` / ``unbind OPENID`` / ``list``: the OpenID-to-customer
bindings of the WeChat channel (``bot/channels/wechat/store.py``)."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    from bot.cli.options import add_project_option

    wechat = sub.add_parser(
        "wechat",
        help="bind WeChat OpenIDs to customers",
        description="A bound OpenID's messages belong to the verified customer (conversation "
        "customer:<id>, shared with the app channel). Bindings live in the tracker store's "
        "database unless channels.wechat.bindings_db is set.",
    )
    commands = wechat.add_subparsers(dest="wechat_command", metavar="SUBCOMMAND")
    commands.required = True
    bind = commands.add_parser("bind", help="bind OPENID to CUSTOMER_ID")
    bind.add_argument("openid", metavar="OPENID")
    bind.add_argument("customer_id", metavar="CUSTOMER_ID")
    unbind = commands.add_parser("unbind", help="remove the binding of OPENID")
    unbind.add_argument("openid", metavar="OPENID")
    listing = commands.add_parser("list", help="print every binding")
    for parser in (bind, unbind, listing):
        add_project_option(parser)
        parser.set_defaults(handler=run)


def open_store(project_dir: str | None) -> Any:
    from bot.channels.wechat.channel import binding_store_for, load_wechat_settings
    from bot.channels.wechat.store import BindingStore
    from bot.core.tracker_store import create_tracker_store
    from bot.endpoints import read_endpoints
    from bot.project import Project

    project = Project.find(project_dir)
    settings = load_wechat_settings(project.root)
    if settings.bindings_db:
        return BindingStore.from_url(settings.bindings_db), None
    tracker_store = create_tracker_store(read_endpoints(project).get("tracker_store"), project.root)
    return binding_store_for(settings, tracker_store), tracker_store


def run(args: argparse.Namespace) -> int:
    from bot.cli.bindings import run_binding_command

    store, tracker_store = open_store(args.project)
    return run_binding_command(
        args.wechat_command,
        getattr(args, "openid", None),
        getattr(args, "customer_id", None),
        bind=store.bind,
        unbind=store.unbind,
        rows=store.all,
        tracker_store=tracker_store,
    )
