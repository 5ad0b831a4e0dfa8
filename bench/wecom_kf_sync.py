"""WeChat customer service channel throughput: messages pulled, stored, claimed, answered
(a stub turn) and sent per second against the local fake WeCom API (tests/fake_wecom.py).

    .venv/bin/python bench/wecom_kf_sync.py [--customers 50] [--messages 10] [--limit 100]
        [--workers 1 2] [--pg-url postgresql+psycopg://...]

Each customer writes ``messages`` texts; one callback's worth of pulling (sync_msg pages of
``limit``) runs on ``workers`` channels over one database (SQLite file; PostgreSQL when
reachable). Printed: messages/s, sync_msg calls, sends, held messages (the five-message rule)
and that every message got exactly one turn.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from fake_wecom import FakeWeCom  # noqa: E402

from bot.channels.wecom_kf.channel import WeComKfChannel  # noqa: E402
from bot.channels.wecom_kf.config import settings_from_mapping  # noqa: E402
from bot.channels.wecom_kf.store import KfStore  # noqa: E402
from bot.core.messages import UserMessage  # noqa: E402

CORPID, SECRET, TOKEN = "wwbench", "secret", "token"
AES_KEY = base64.b64encode(bytes(range(32))).decode().rstrip("=")
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


async def run(url: str, customers: int, messages: int, limit: int, workers: int) -> None:
    fake = await FakeWeCom(CORPID, SECRET, TOKEN, AES_KEY).start()
    kfid = f"wk{uuid.uuid4().hex[:16]}"
    turns: list[str] = []

    async def turn(message: UserMessage) -> list[dict[str, Any]]:
        turns.append(message.text)
        return [{"text": f"答：{message.text}"}]

    settings = settings_from_mapping(
        {
            "corpid": CORPID,
            "secret": SECRET,
            "token": TOKEN,
            "encoding_aes_key": AES_KEY,
            "api_base": fake.base,
            "sync_limit": limit,
        },
        env={},
    )
    channels = [WeComKfChannel(turn, settings, KfStore.from_url(url)) for _ in range(workers)]
    for c in range(customers):
        for m in range(messages):
            fake.customer_says(kfid, f"wm{c:05d}", f"问题{m}", msgid=uuid.uuid4().hex)
    total = customers * messages
    start = time.perf_counter()
    await asyncio.gather(*(ch.sync(kfid, None) for ch in channels))
    seconds = time.perf_counter() - start
    held = sum(len(channels[0].store.held(kfid, f"wm{c:05d}")) for c in range(customers))
    kind = url.split(":", 1)[0]
    expected = sorted(f"问题{m}" for _ in range(customers) for m in range(messages))
    print(
        f"{kind:<22} workers={workers} messages={total:>5} {total / seconds:8.0f} msg/s "
        f"sync_msg={len(fake.sync_calls):>3} sent={len(fake.sent):>5} held={held:>4} "
        f"one turn each={sorted(turns) == expected}"
    )
    for ch in channels:
        await ch.close()
    await fake.stop()


def pg_available(url: str) -> bool:
    try:
        from sqlalchemy import create_engine, text

        with create_engine(url).connect() as conn:
            conn.execute(text("SELECT 1"))
        return True
    except Exception:
        return False


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=50)
    parser.add_argument("--messages", type=int, default=10)
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        urls = [f"sqlite:///{Path(folder) / 'kf.db'}"]  # msgids are unique: one file
        if pg_available(args.pg_url):
            urls.append(args.pg_url)
        else:
            print(f"PostgreSQL not reachable at {args.pg_url}: skipped")
        for url in urls:
            for workers in args.workers:
                await run(url, args.customers, args.messages, args.limit, workers)


if __name__ == "__main__":
    asyncio.run(main())
