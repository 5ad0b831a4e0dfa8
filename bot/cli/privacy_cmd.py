"""``bot privacy purge --older-than 180d`` / ``erase --customer C1001`` / ``export
--customer C1001`` / ``new-key`` / ``rotate-key``: retention, erasure (PIPL) and the keys of
personal data at rest (docs/persistence.md, "Personal data at rest").

Purge and erase cover every store that holds customer text: the tracker store (events), the
handoff tables (handoffs, tickets, audit rows of those conversations) and the knowledge-gap
log (by age only: its lines name no customer). Each writes an audit record (who, when, what,
how many rows) to ``handoff_audit`` and prints a summary.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import re
import sys
import time
from datetime import UTC, datetime
from typing import Any

ACTOR_ENV = "BOT_OPERATOR"
PRIVACY_ACTIONS = (
    "privacy_purge",
    "privacy_erase",
    "privacy_export",
    "privacy_rotate",
    "privacy_reapply",
)
_AGE = re.compile(r"^\s*(\d+)\s*([dhw]?)\s*$")
_UNIT_SECONDS = {"": 86400, "d": 86400, "h": 3600, "w": 7 * 86400}
DEFAULT_KB_DIR = "kb_index"
MAX_AGE_SECONDS = 100 * 365 * 86400  # older than any conversation (and within datetime)


def register(sub: Any) -> None:
    from bot.cli.options import add_project_option

    privacy = sub.add_parser(
        "privacy",
        help="retention, erasure and keys of personal data at rest",
        description="Delete old conversations (purge) or one customer's data (erase), export "
        "it, make or rotate the key of the encrypt policy. See docs/persistence.md.",
    )
    commands = privacy.add_subparsers(dest="privacy_command", metavar="SUBCOMMAND")
    commands.required = True
    purge = commands.add_parser(
        "purge", help="delete conversations idle longer than --older-than, and their records"
    )
    purge.add_argument(
        "--older-than", required=True, metavar="AGE", help="e.g. 180d, 26w, 12h (days default)"
    )
    erase = commands.add_parser("erase", help="delete everything stored of one customer")
    export = commands.add_parser("export", help="print everything stored of one customer (JSON)")
    for parser in (erase, export):
        parser.add_argument("--customer", required=True, metavar="ID", help="e.g. C1001")
    export.add_argument(
        "--originals",
        action="store_true",
        help="decrypted originals (policy encrypt, with $BOT_DATA_KEY); default as stored",
    )
    reapply = commands.add_parser(
        "reapply",
        help="apply the policy to rows stored before it (after an upgrade or a policy change)",
    )
    rotate = commands.add_parser(
        "rotate-key", help="re-encrypt the stored originals under the first key of $BOT_DATA_KEY"
    )
    new_key = commands.add_parser("new-key", help="print a new random key for $BOT_DATA_KEY")
    for parser in (purge, erase, export, rotate, reapply):
        add_project_option(parser)
        parser.add_argument(
            "--actor", default=None, help=f"who runs it, for the audit (default: ${ACTOR_ENV})"
        )
    for parser in (purge, erase, rotate, reapply):
        parser.add_argument(
            "--dry-run", action="store_true", help="count what would go, delete nothing"
        )
    for parser in (purge, erase, export, rotate, reapply, new_key):
        parser.set_defaults(handler=run)


def parse_age(text: str) -> float:
    """``180d`` / ``26w`` / ``12h`` / ``180`` (days) → seconds."""
    from bot.errors import BotError

    match = _AGE.match(text)
    if not match or int(match.group(1)) <= 0:
        raise BotError(f"--older-than {text!r}: write a positive age such as 180d, 26w or 12h")
    seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds > MAX_AGE_SECONDS:
        raise BotError(f"--older-than {text!r}: write an age of at most 100 years (36500d)")
    return seconds


def _actor(args: argparse.Namespace) -> str:
    actor = args.actor or os.environ.get(ACTOR_ENV)
    if not actor:
        try:
            actor = getpass.getuser()
        except (KeyError, OSError):
            actor = "unknown"
    return str(actor)[:64]


def run(args: argparse.Namespace) -> int:
    from bot.privacy import new_data_key

    if args.privacy_command == "new-key":
        print(new_data_key())
        return 0
    return asyncio.run(_run(args))


async def _run(args: argparse.Namespace) -> int:
    from bot.core.tracker_store import create_tracker_store
    from bot.endpoints import load_endpoints
    from bot.handoff.factory import store_for
    from bot.privacy import PrivacyPolicy
    from bot.project import Project

    project = Project.find(args.project)
    endpoints = load_endpoints(project)
    privacy = PrivacyPolicy.from_section(endpoints.sections.get("privacy"), os.environ)
    tracker = create_tracker_store(endpoints.tracker_store, project.root, privacy)
    try:
        handoff = store_for(project.root, tracker, endpoints)
        command = args.privacy_command
        if command == "purge":
            return await _purge(args, project.root, tracker, handoff, _kf_store(project, tracker))
        if command == "erase":
            kf, wechat = _kf_store(project, tracker), _wechat_bindings(project, tracker)
            return await _erase(args, tracker, handoff, kf, wechat)
        if command == "export":
            return await _export(args, tracker, handoff)
        if command == "reapply":
            return await _reapply(args, tracker, handoff)
        return await _rotate(args, tracker, handoff)
    finally:
        await tracker.close()


def _kf_store(project: Any, tracker: Any) -> Any:
    """The WeCom kf channel's store when credentials.yml configures the channel, else None."""
    from bot.channels.wecom_kf.channel import store_for
    from bot.server.channels import read_credentials

    credentials = read_credentials(project.credentials_file)
    if credentials is None or credentials.wecom_kf is None:
        return None
    return store_for(credentials.wecom_kf, tracker)


def _wechat_bindings(project: Any, tracker: Any) -> Any:
    """The WeChat channel's OpenID bindings when there can be any (the tracker store's
    database, ``bindings_db``, or an existing ``data/wechat.db``), else None."""
    from bot.channels.wechat.channel import binding_store_for, load_wechat_settings

    settings = load_wechat_settings(project.root)
    default = project.root / "data" / "wechat.db"
    no_db = getattr(tracker, "engine", None) is None and not settings.bindings_db
    if no_db and not default.exists():
        return None
    return binding_store_for(settings, tracker)


def _summary(title: str, rows: dict[str, int], dry_run: bool) -> None:
    verb = "would delete" if dry_run else "deleted"
    print(f"{title}: {verb}")
    for store, count in rows.items():
        print(f"  {store:<24} {count:>8}")
    print(f"  {'total':<24} {sum(rows.values()):>8}")


async def _purge(
    args: argparse.Namespace, root: Any, tracker: Any, handoff: Any, kf: Any = None
) -> int:
    from bot.kb.gaps import GapLog

    age = parse_age(args.older_than)
    now = time.time()
    cutoff = now - age
    cutoff_at = datetime.fromtimestamp(cutoff, UTC)  # all that can fail, before deleting
    idle = await tracker.idle_since(cutoff)  # stored keys: deleted as they are
    gaps = GapLog.in_dir(root / DEFAULT_KB_DIR)
    if args.dry_run:
        rows = {"conversations": len(idle), "events": sum([await tracker.count(s) for s in idle])}
    else:
        events = await tracker.forget(idle, stored_keys=True)
        rows = {
            "conversations": len(idle),
            "events": events,
            "handoffs": handoff.handoffs.purge_before(cutoff)
            + handoff.handoffs.forget(idle, stored_keys=True),
            "handoff_tickets": handoff.tickets.purge_before(cutoff)
            + handoff.tickets.forget(idle, stored_keys=True),
            "handoff_audit": handoff.audit.purge_before(cutoff, keep=PRIVACY_ACTIONS)
            + handoff.audit.forget(idle, keep=PRIVACY_ACTIONS, stored_keys=True),
            "kb_gaps": gaps.purge_before(cutoff_at),
        }
        if kf is not None:
            rows.update(kf.purge_before(cutoff))
        detail = {
            "older_than": args.older_than,
            "cutoff": cutoff_at.isoformat(timespec="seconds"),
            "rows": rows,
        }
        handoff.audit.record(_actor(args), "privacy_purge", None, None, detail, now)
    _summary(f"purge of conversations idle since {_iso(cutoff)}", rows, args.dry_run)
    return 0


async def _customer_conversations(customer: str, tracker: Any, handoff: Any) -> list[str]:
    """The conversations of ``customer``: its own id, the app channel's ``customer:<id>``,
    those where the channel verified it (slot ``customer_id``) and its handoffs'."""
    candidates = [customer, f"customer:{customer}"]
    found = {tracker.privacy.sender_key(c) for c in candidates if await tracker.exists(c)}
    found.update(await tracker.with_slot("customer_id", customer))
    found.update(handoff.handoffs.conversations_of(customer))
    found.update(handoff.handoffs.conversations_of(f"customer:{customer}"))
    return sorted(found)


async def _erase(
    args: argparse.Namespace, tracker: Any, handoff: Any, kf: Any = None, wechat: Any = None
) -> int:
    customer = args.customer.strip()
    conversations = await _customer_conversations(customer, tracker, handoff)
    if args.dry_run:
        rows = {
            "conversations": len(conversations),
            "events": sum([await tracker.count(c) for c in conversations]),
        }
    else:
        rows = {
            "conversations": len(conversations),
            # the conversations are stored keys: deleted as they are
            "events": await tracker.forget(conversations, stored_keys=True),
            "handoffs": handoff.handoffs.forget(conversations, stored_keys=True),
            "handoff_tickets": handoff.tickets.forget(conversations, customer, stored_keys=True),
            "handoff_audit": handoff.audit.forget(
                conversations, keep=PRIVACY_ACTIONS, stored_keys=True
            ),
        }
        if kf is not None:
            rows.update(kf.forget(conversations, customer))
        if wechat is not None:  # the OpenIDs bound to the customer
            bound = [openid for openid, who, _ in wechat.all() if who == customer]
            rows["wechat_bindings"] = sum(wechat.unbind(openid) for openid in bound)
        detail = {"customer": tracker.privacy.sender_key(customer), "rows": rows}
        handoff.audit.record(_actor(args), "privacy_erase", None, None, detail)
    _summary(f"erasure of customer {tracker.privacy.sender_key(customer)}", rows, args.dry_run)
    if not conversations:
        print("  (nothing stored of this customer)")
    return 0


async def _export(args: argparse.Namespace, tracker: Any, handoff: Any) -> int:
    from bot.errors import BotError
    from bot.privacy import StoredText

    customer = args.customer.strip()
    if args.originals and tracker.privacy.stored_text is not StoredText.ENCRYPT:
        raise BotError("--originals needs privacy.stored_text: encrypt and $BOT_DATA_KEY")
    conversations = await _customer_conversations(customer, tracker, handoff)
    out: dict[str, Any] = {"customer": tracker.privacy.sender_key(customer), "conversations": []}
    for conversation in conversations:
        events = await tracker.events(conversation)
        if not args.originals:  # as stored: the masked form, never the decrypted original
            events = [tracker.privacy.store_event(e) for e in events]
            events = [{k: v for k, v in e.items() if k != "_enc"} for e in events]
        latest = handoff.handoffs.latest(conversation)
        out["conversations"].append(
            {
                "conversation_id": conversation,
                "events": events,
                "latest_handoff": None if latest is None else latest.status,
            }
        )
    json.dump(out, sys.stdout, ensure_ascii=False, indent=2)
    print()
    detail = {"customer": out["customer"], "conversations": len(conversations)}
    if args.originals:
        detail["originals"] = True
    handoff.audit.record(_actor(args), "privacy_export", None, None, detail)
    return 0


async def _rotate(args: argparse.Namespace, tracker: Any, handoff: Any) -> int:
    from bot.errors import BotError

    rotate = getattr(tracker, "rotate_keys", None)
    if rotate is None:
        raise BotError(f"{type(tracker).__name__} keeps no encrypted originals to rotate")
    rows = {"events": await rotate(dry_run=args.dry_run)}
    if not args.dry_run:
        handoff.audit.record(_actor(args), "privacy_rotate", None, None, {"rows": rows})
    verb = "would re-encrypt" if args.dry_run else "re-encrypted"
    print(f"key rotation: {verb} {rows['events']} events under the first key of $BOT_DATA_KEY")
    return 0


async def _reapply(args: argparse.Namespace, tracker: Any, handoff: Any) -> int:
    from bot.errors import BotError

    reapply = getattr(tracker, "reapply_privacy", None)
    if reapply is None:
        raise BotError(f"{type(tracker).__name__} keeps nothing to rewrite")
    events, skipped = await reapply(dry_run=args.dry_run)
    rows = {"events": events, "handoff_rows": handoff.reapply_privacy(dry_run=args.dry_run)}
    policy = tracker.privacy.stored_text.value
    if not args.dry_run:
        detail = {"stored_text": policy, "rows": rows, "skipped_conversations": skipped}
        handoff.audit.record(_actor(args), "privacy_reapply", None, None, detail)
    verb = "would rewrite" if args.dry_run else "rewrote"
    print(f"policy {policy}: {verb} {rows['events']} events, {rows['handoff_rows']} handoff rows")
    if skipped:
        print(
            f"  {skipped} conversation(s) skipped: they also exist under their new key "
            "(continued after the upgrade); erase or purge them, or keep them as they are"
        )
    return 0


def _iso(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, UTC).isoformat(timespec="seconds")
