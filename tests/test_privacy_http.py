"""No phone, ID or card number, in any typed variant, is kept anywhere: conversations over
HTTP (REST with a phone number as the sender id, handoff to an agent, the agent's reply),
then every column of every SQLite table, the captured logs, the agent's views, the tracker
endpoint and ``bot privacy export`` are grepped for the numbers (after folding digits of every
script). With the encrypt policy the originals are recoverable with the key and absent in
plaintext."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from test_server_project import TrainedBot, new_agent, trained_bot

from bot.core.tracker_store import SQLTrackerStore
from bot.folding import digit_value
from bot.handoff.config import parse
from bot.handoff.service import HandoffService
from bot.handoff.store import HandoffStore
from bot.privacy import PrivacyPolicy
from bot.server import create_app
from bot.server.settings import ServerSettings

__all__ = ["trained_bot"]
REPO = Path(__file__).resolve().parents[1]
REST = "/webhooks/rest/webhook"
PHONE = "13812345678"
# (what the customer types, the digits that must never be kept)
TYPED = [
    ("我的手机号是138.1234.5678", "12345678"),
    ("身份证110101 19900307 7777", "19900307"),
    ("卡号6222\u30000212\u30003456\u30007890", "02123456"),
    ("手机𝟏𝟑𝟗𝟖𝟕𝟔𝟓𝟒𝟑𝟐𝟏", "98765432"),
    ("电话一三七一一二二三三四四", "71122334"),
    ("身份证号码 110105\u200b19851212\u200b3015", "19851212"),
    ("我的卡号是6222021234567890123", "021234567890"),
]
SECRETS = [secret for _, secret in TYPED] + [PHONE[3:7] + PHONE[7:]]  # sender id: 12345678
OPERATOR_TOKEN = "operator-token-for-the-test"
CONFIG = {"groups": [{"name": "账户"}], "queue": {"auto_assign": False}}


def folded(text: str) -> str:
    """The digits of ``text`` in every script, as ASCII (what a reader could recover)."""
    return "".join(d for d in map(digit_value, text) if d is not None)


def leaks(blob: str) -> list[str]:
    digits = folded(blob)
    return [s for s in SECRETS if s in digits]


def every_row(engine: sa.Engine) -> list[str]:
    """Every column of every row of every table, as text."""
    rows = []
    with engine.connect() as conn:
        for name in sa.inspect(engine).get_table_names():
            for row in conn.execute(sa.text(f'SELECT * FROM "{name}"')):
                rows.append(f"{name}: " + " | ".join(str(v) for v in row))
    return rows


async def converse(app: Any, store: SQLTrackerStore) -> list[str]:
    """The conversation over HTTP; what the agent and the endpoints answered, as text."""
    seen: list[str] = []

    async def say(text: str) -> None:
        _, response = await app.asgi_client.post(REST, json={"sender": PHONE, "message": text})
        assert response.status == 200, response.text  # (the customer's own id comes back)

    for text, _ in TYPED[:2]:
        await say(text)
    await say("转人工")
    await say(TYPED[2][0])  # while waiting
    _, login = await app.asgi_client.post(
        "/agent/login", json={"username": "alice", "password": "alice-password"}
    )
    alice = {"Authorization": f"Bearer {login.json['token']}"}
    _, queue = await app.asgi_client.get("/agent/queue", headers=alice)
    seen.append(queue.text)
    [waiting] = queue.json["waiting"]
    path = "/agent/conversations/" + quote(waiting["conversation_id"], safe="")
    _, accepted = await app.asgi_client.post(f"{path}/accept", headers=alice)
    assert accepted.status == 200, accepted.text
    _, context = await app.asgi_client.get(f"{path}/context", headers=alice)
    assert context.status == 200
    seen.append(context.text)
    for text, _ in TYPED[3:]:
        await say(text)  # to the agent
    _, sent = await app.asgi_client.post(
        f"{path}/messages", headers=alice, json={"text": "收到，您尾号7890的卡已登记"}
    )
    assert sent.status == 200
    _, messages = await app.asgi_client.get(f"{path}/messages", headers=alice)
    customer = [m["text"] for m in messages.json["messages"] if m["from"] == "customer"]
    assert len(customer) >= len(TYPED) - 2  # the agent saw what was written (masked)
    seen.append(messages.text)
    _, closed = await app.asgi_client.post(
        f"{path}/close", headers=alice, json={"resolution": "resolved"}
    )
    assert closed.status == 200
    await say("谢谢")  # the bot is back for the same sender
    operator = {"Authorization": f"Bearer {OPERATOR_TOKEN}"}
    _, tracker = await app.asgi_client.get(f"/conversations/{PHONE}/tracker", headers=operator)
    assert tracker.status == 200 and len(tracker.json["events"]) > 10  # the operator's view
    body = {k: v for k, v in tracker.json.items() if k != "sender_id"}  # (the id asked for)
    seen.append(json.dumps(body, ensure_ascii=False))
    assert await store.count(PHONE) > 10  # one conversation, kept under one key
    assert len(await store.senders()) == 1
    return seen


def build(bot: TrainedBot, store: SQLTrackerStore) -> tuple[Any, HandoffService]:
    agent = new_agent(bot, store)
    service = HandoffService(
        parse(CONFIG, {}), HandoffStore(store.engine, store.privacy), agent.processor
    )
    service.store.agents.add("alice", "alice-password", ["账户"])
    settings = ServerSettings(operator_token=OPERATOR_TOKEN)
    return create_app(agent, settings, handoff=service, close_stores=False), service


async def export(root: Path, db: Path, env: dict[str, str]) -> str:
    """``bot privacy export --customer PHONE`` as a real command on that database."""
    root.mkdir()
    for name in ("config.yml", "domain.yml"):
        shutil.copy(REPO / name, root / name)
    (root / "endpoints.yml").write_text(
        f"tracker_store:\n  url: sqlite:///{db}\nprivacy:\n  stored_text: "
        f"{'encrypt' if 'BOT_DATA_KEY' in env else 'mask'}\n",
        encoding="utf-8",
    )
    import os
    import sys

    keep = {k: v for k, v in os.environ.items() if k not in ("BOT_DB_URL", "BOT_HANDOFF_DB")}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "bot", "privacy", "export", "--customer", PHONE, "--project", str(root)),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**keep, **env},
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, err.decode()
    text = out.decode()
    assert json.loads(text)["conversations"]
    return text


@pytest.mark.parametrize("stored", ["mask", "encrypt", "keep"])
async def test_no_number_is_kept_in_any_table_log_view_or_export(
    trained_bot: TrainedBot,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    stored: str,
) -> None:
    key = Fernet.generate_key().decode()
    env = {"BOT_DATA_KEY": key} if stored == "encrypt" else {}
    monkeypatch.delenv("BOT_DATA_KEY", raising=False)
    policy = PrivacyPolicy.from_section({"stored_text": stored}, env)
    db = tmp_path / "bot.db"
    store = SQLTrackerStore(f"sqlite:///{db}", privacy=policy)
    app, _service = build(trained_bot, store)
    caplog.set_level(logging.DEBUG)
    try:
        seen = await converse(app, store)
        rows = every_row(store.engine)
        if stored == "encrypt":  # the originals, for the reader with the key
            texts = [e.get("text") or "" for e in await store.events(PHONE)]
            for typed, _ in TYPED:
                assert typed in texts
    finally:
        await store.close()
    assert len(rows) > 20
    if stored == "keep":  # the grep finds them when they are there
        assert {s for row in rows for s in leaks(row)} == set(SECRETS)
        sender = SECRETS[-1]  # keep: the conversation id agents see is the sender id as is
        assert not [blob for blob in seen if set(leaks(blob)) - {sender}]
        return
    client = ("httpx", "httpcore")  # the test's own HTTP client logs the URLs it asks for
    logs = [r.getMessage() for r in caplog.records if not r.name.startswith(client)]
    assert logs
    exported = await export(tmp_path / "project", db, env)
    for where, blobs in [
        ("tables", rows),
        ("logs", logs),
        ("agent views and endpoints", seen),
        ("export", [exported]),
    ]:
        found = [(blob[:200], leaks(blob)) for blob in blobs if leaks(blob)]
        assert not found, f"personal numbers in {where}: {found[:3]}"
