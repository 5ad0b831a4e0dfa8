"""Entry point: ``bot <command> ...`` (also ``python -m bot``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from bot import __version__
from bot.cli import (
    agents_cmd,
    data_cmd,
    kb_cmd,
    nlu_cmds,
    privacy_cmd,
    report_cmd,
    run_cmd,
    sandbox_cmd,
    server_cmd,
    train_cmd,
    visualize_cmd,
    wechat_cmd,
    wecom_kf_cmd,
)
from bot.errors import BotError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bot",
        description="bankbot: a Chinese-first customer-service bot for banks.",
    )
    parser.add_argument("--version", action="version", version=f"bankbot {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in (
        train_cmd,
        nlu_cmds,
        data_cmd,
        kb_cmd,
        visualize_cmd,
        run_cmd,
        server_cmd,
        sandbox_cmd,
        wechat_cmd,
        wecom_kf_cmd,
        agents_cmd,
        privacy_cmd,
        report_cmd,
    ):
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.handler(args)
        return code
    except BotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
