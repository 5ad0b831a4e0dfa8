"""``bot sandbox reset`` and ``bot sandbox show``: the seeded SQLite core-banking sandbox."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.bank.interfaces import Account, Application
    from bot.bank.sandbox import SandboxBank

ACCOUNT_LABELS = {"debit_card": "储蓄卡", "credit_card": "信用卡"}
STEP_MARKS = {"done": "✓", "in_progress": "…", "pending": "·"}


def register(sub: Any) -> None:
    from bot.cli.options import add_project_option

    sandbox = sub.add_parser(
        "sandbox",
        help="the sandbox core-banking database",
        description="The SQLite database that stands in for the bank's core system "
        "(default data/sandbox_bank.db in the project, or bank.path in endpoints.yml).",
    )
    sandbox_sub = sandbox.add_subparsers(dest="sandbox_command", metavar="SUBCOMMAND")
    sandbox_sub.required = True
    reset = sandbox_sub.add_parser(
        "reset",
        help="drop and reseed the sandbox",
        description="Drop every table of the sandbox database and seed it again with the "
        "records of docs/bank-backend.md (frozen cards are unfrozen, and so on).",
    )
    show = sandbox_sub.add_parser(
        "show",
        help="a customer's accounts and applications (cards masked)",
        description="A customer's accounts and applications, cards shown only as 尾号NNNN; "
        "without a customer id, the list of customers.",
    )
    show.add_argument("customer", nargs="?", help="customer id, e.g. C1001")
    for parser in (reset, show):
        add_project_option(parser)
        parser.add_argument(
            "--path",
            metavar="FILE",
            default=None,
            help="the sandbox database file (default: from the project)",
        )
    reset.set_defaults(handler=run_reset)
    show.set_defaults(handler=run_show)


def sandbox_path(args: argparse.Namespace) -> Path:
    """``--path``, else ``bank.path`` of the project's endpoints.yml, else the default."""
    if args.path:
        return Path(args.path)
    from bot.bank.factory import bank_config
    from bot.bank.sandbox import DEFAULT_PATH
    from bot.project import Project

    project = Project.find(args.project)
    section = bank_config(project.root, project.endpoints_file) or {}
    path = Path(str(section.get("path") or DEFAULT_PATH))
    return path if path.is_absolute() else project.root / path


def _open(args: argparse.Namespace) -> SandboxBank:
    from bot.bank.sandbox import SandboxBank

    return SandboxBank(sandbox_path(args))


def run_reset(args: argparse.Namespace) -> int:
    with _open(args) as bank:
        counts = bank.reset()
        print(
            f"Reseeded the sandbox bank at {bank.path}: {counts['customers']} customers, "
            f"{counts['accounts']} accounts, {counts['applications']} applications."
        )
    return 0


def run_show(args: argparse.Namespace) -> int:
    with _open(args) as bank:
        if not args.customer:
            for customer in bank.customers():
                apps = bank.applications(customer.id)
                open_apps = sum(a.is_open for a in apps)
                vip = "  VIP" if customer.vip else ""
                print(
                    f"{customer.id}  {customer.name}  {customer.age}岁{vip}  "
                    f"{len(bank.accounts(customer.id))} card(s), {len(apps)} application(s) "
                    f"({open_apps} open)"
                )
            return 0
        customer = bank.customer(args.customer)
        print(f"{customer.id}  {customer.name}  {customer.age}岁{'  VIP' if customer.vip else ''}")
        accounts = bank.accounts(customer.id)
        print("账户:" if accounts else "账户: 无")
        for account in accounts:
            print("  " + describe_account(account))
        apps = bank.applications(customer.id)
        print("申请:" if apps else "申请: 无")
        for app in apps:
            for line in describe_application(app):
                print("  " + line)
    return 0


def describe_account(account: Account) -> str:
    from bot.bank.money import format_yuan

    def yuan(fen: int | None) -> str:
        return "-" if fen is None else format_yuan(fen)

    text = f"{ACCOUNT_LABELS[account.type]} {account.masked}  "
    if account.type == "credit_card":
        text += (
            f"额度 {yuan(account.credit_limit_fen)}  可用 {yuan(account.available_fen)}  "
            f"账单 {yuan(account.statement_balance_fen)}"
        )
        if account.due_date is not None:
            text += f"  还款日 {account.due_date.isoformat()}"
    else:
        text += f"余额 {yuan(account.balance_fen)}"
    if account.frozen:
        text += "  [已冻结]"
    return text


def describe_application(app: Application) -> list[str]:
    from bot.bank.money import format_yuan

    head = f"{app.id}  {app.business_type}  {app.product or ''}".rstrip()
    if app.amount_fen is not None:
        head += f"  {format_yuan(app.amount_fen)}"
    head += "  (进行中)" if app.is_open else "  (已完成)"
    steps = " / ".join(
        f"{s.name} {STEP_MARKS[s.status]}" + (f" {s.date.isoformat()}" if s.date else "")
        for s in app.steps
    )
    lines = [head, f"    {steps}"]
    details = app.details
    if details.get("courier") or details.get("tracking_number"):
        lines.append(f"    快递 {details.get('courier', '')} {details.get('tracking_number', '')}")
    for key in ("new_limit_fen", "requested_limit_fen"):
        value = details.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            label = "新额度" if key == "new_limit_fen" else "申请额度"
            lines.append(f"    {label} {format_yuan(value)}")
    return lines
