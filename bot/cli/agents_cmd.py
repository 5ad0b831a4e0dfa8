"""``bot agents add USERNAME --password P --groups G1,G2 [--role supervisor]`` / ``list`` /
``remove USERNAME`` / ``tickets``: the human agents of the handoff console and the messages
customers left (``bot/handoff/store.py``, in the tracker store's database)."""

from __future__ import annotations

import argparse
import getpass
import os
import time
from typing import Any

PASSWORD_ENV = "BOT_AGENT_PASSWORD"


def register(sub: Any) -> None:
    from bot.cli.options import add_project_option

    agents = sub.add_parser(
        "agents",
        help="manage human agents of the handoff console",
        description="Agents log in to the console at /agent (or the agent API) with these "
        "accounts; passwords are stored as scrypt hashes in the tracker store's database "
        "(or $BOT_HANDOFF_DB).",
    )
    commands = agents.add_subparsers(dest="agents_command", metavar="SUBCOMMAND")
    commands.required = True
    add = commands.add_parser("add", help="create an agent account")
    add.add_argument("username", metavar="USERNAME")
    add.add_argument(
        "--password", help=f"at least 8 characters (default: ${PASSWORD_ENV}, else asked for)"
    )
    add.add_argument(
        "--groups",
        required=True,
        help="comma-separated skill groups of handoff.yml, e.g. 信用卡,贷款",
    )
    add.add_argument("--role", choices=["agent", "supervisor"], default="agent")
    add.add_argument(
        "--capacity",
        type=int,
        default=None,
        help="concurrent chats (default: agents.default_capacity of handoff.yml)",
    )
    remove = commands.add_parser("remove", help="delete an agent account")
    remove.add_argument("username", metavar="USERNAME")
    listing = commands.add_parser("list", help="print every agent")
    tickets = commands.add_parser("tickets", help="print the messages customers left")
    for parser in (add, remove, listing, tickets):
        add_project_option(parser)
        parser.set_defaults(handler=run)


def ask_password() -> str:
    import sys

    from bot.errors import BotError

    missing = BotError(f"no password: give --password or set ${PASSWORD_ENV}")
    if not sys.stdin.isatty():
        raise missing
    try:
        return getpass.getpass()
    except EOFError:
        raise missing from None


def run(args: argparse.Namespace) -> int:
    from bot.errors import BotError
    from bot.handoff.config import load
    from bot.handoff.factory import store_for
    from bot.project import Project

    project = Project.find(args.project)
    config = load(project.root)
    store = store_for(project.root)
    if args.agents_command == "add":
        groups = [g.strip() for g in args.groups.split(",") if g.strip()]
        unknown = [g for g in groups if config.group(g) is None]
        if unknown:
            raise BotError(
                f"unknown group(s) {', '.join(unknown)}; handoff.yml has "
                f"{', '.join(config.group_names)}"
            )
        password = args.password or os.environ.get(PASSWORD_ENV) or ask_password()
        capacity = config.default_capacity if args.capacity is None else args.capacity
        account = store.agents.add(args.username, password, groups, args.role, capacity)
        print(
            f"added {account.role} {account.username} (groups {', '.join(account.groups)}, "
            f"capacity {account.capacity})"
        )
    elif args.agents_command == "remove":
        if store.agents.get(args.username) is None:
            print(f"no agent {args.username}")
            return 1
        moved = store.handoffs.requeue_agent(args.username)  # nobody is left with a removed agent
        for handoff in moved:
            store.audit.record(
                "cli", "requeue", handoff.conversation_id, handoff.id, {"agent": args.username}
            )
        store.agents.remove(args.username)
        store.audit.record("cli", "remove_agent", None, None, {"agent": args.username})
        print(
            f"removed {args.username}"
            + (f"; {len(moved)} open conversation(s) went back to the queue" if moved else "")
        )
    elif args.agents_command == "list":
        agents = store.agents.all()
        for a in agents:
            print(
                f"{a.username}\t{a.role}\t{','.join(a.groups)}\tcapacity {a.capacity}\t{a.status}"
            )
        if not agents:
            print("no agents; add one with: bot agents add USERNAME --groups G1,G2")
    else:
        tickets = store.tickets.all()
        for t in tickets:
            stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime(t.created_at))
            print(f"#{t.id}\t{stamp}\t{t.group}\t{t.customer_id or t.conversation_id}\t{t.text}")
        if not tickets:
            print("no open tickets")
    return 0
