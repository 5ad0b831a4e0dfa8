"""``bind`` / ``unbind`` / ``list`` of a channel's identity bindings (an OpenID or an
external_userid to a customer), shared by ``bot wechat`` and ``bot wecom-kf``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from typing import Any


def run_binding_command(
    command: str,
    user: str | None,
    customer_id: str | None,
    *,
    bind: Callable[[str, str], Any],
    unbind: Callable[[str], bool],
    rows: Callable[[], Iterable[tuple[str, str, float]]],
    tracker_store: Any = None,
) -> int:
    """Run one binding command on a store and print its outcome; closes ``tracker_store``
    (the store's engine, when it shares the tracker store's) afterwards."""
    try:
        if command == "bind":
            assert user is not None and customer_id is not None
            bind(user, customer_id)
            print(f"bound {user} to customer {customer_id}")
        elif command == "unbind":
            assert user is not None
            if not unbind(user):
                print(f"{user} was not bound")
                return 1
            print(f"unbound {user}")
        else:
            listed = list(rows())
            for bound_user, bound_customer, bound_at in listed:
                stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(bound_at))
                print(f"{bound_user}\t{bound_customer}\t{stamp}")
            if not listed:
                print("no bindings")
        return 0
    finally:
        if tracker_store is not None:
            asyncio.run(tracker_store.close())
