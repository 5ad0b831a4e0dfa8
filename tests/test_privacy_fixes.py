"""Review findings on personal data: live agent events and the handoff webhook name the
stored key; the kf inbox drops handled text and is covered by purge and erase; purge and
erase delete exactly the stored conversations they found; absurd ages are refused before
anything is deleted; open tickets survive purge; a stored key is no anonymous sender id;
log records (their exceptions too) are masked."""

from __future__ import annotations

import base64
import io
import json
import logging
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from test_privacy_at_rest import project, run_cli, user
from test_privacy_http import CONFIG, OPERATOR_TOKEN, REST
from test_server_project import TrainedBot, new_agent, trained_bot

from bot import privacy
from bot.channels.base import ChannelError
from bot.channels.inputs import check_anonymous
from bot.channels.wecom_kf.store import KfStore
from bot.cli.privacy_cmd import parse_age
from bot.core.tracker_store import create_tracker_store
from bot.errors import BotError
from bot.handoff.config import parse
from bot.handoff.customer import CustomerSide
from bot.handoff.records import Handoff, new_id
from bot.handoff.service import HandoffService
from bot.handoff.store import HandoffStore
from bot.privacy import MaskingFilter, PrivacyPolicy
from bot.server import create_app
from bot.server.settings import ServerSettings

__all__ = ["trained_bot"]
PHONE = "13812345678"
MIDDLE = "1234"  # never shown of PHONE
YEAR = 365 * 86400


async def test_live_events_and_webhook_name_the_stored_key(
    trained_bot: TrainedBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = PrivacyPolicy.from_section(None, {})
    store = create_tracker_store({"url": f"sqlite:///{tmp_path / 'bot.db'}"}, tmp_path, policy)
    agent = new_agent(trained_bot, store)
    config = parse({**CONFIG, "webhook": {"url": "http://127.0.0.1:9/hook"}}, {})
    service = HandoffService(config, HandoffStore(store.engine, policy), agent.processor)  # type: ignore[attr-defined]
    service.store.agents.add("alice", "alice-password", ["账户"])
    packets: list[dict[str, Any]] = []

    async def capture(self: CustomerSide, packet: dict[str, Any]) -> None:
        packets.append(packet)

    monkeypatch.setattr(CustomerSide, "_webhook", capture)
    app = create_app(
        agent, ServerSettings(operator_token=OPERATOR_TOKEN), handoff=service, close_stores=False
    )
    key = policy.sender_key(PHONE)
    assert key != PHONE

    async def say(text: str) -> None:
        _, response = await app.asgi_client.post(REST, json={"sender": PHONE, "message": text})
        assert response.status == 200, response.text

    published: list[tuple[str, str, dict[str, Any]]] = []
    publish = service.bus.publish

    async def record(topic: str, kind: str, data: dict[str, Any]) -> None:
        published.append((topic, kind, data))  # (each test request stops the bus)
        await publish(topic, kind, data)

    monkeypatch.setattr(service.bus, "publish", record)
    try:
        await say("转人工")
        await say("还要等多久")  # waiting: to the group
        _, login = await app.asgi_client.post(
            "/agent/login", json={"username": "alice", "password": "alice-password"}
        )
        alice = {"Authorization": f"Bearer {login.json['token']}"}
        path = "/agent/conversations/" + quote(key, safe="")
        _, accepted = await app.asgi_client.post(f"{path}/accept", headers=alice)
        assert accepted.status == 200, accepted.text
        await say("你好")  # active: to the agent
    finally:
        await store.close()
    topics = {t.split(":")[0] for t, kind, _ in published if kind == "message"}
    assert {"group", "agent"} <= topics
    messages = [d for t, kind, d in published if kind == "message" and t[:5] in ("group", "agent")]
    assert len(messages) >= 2
    assert {m["conversation_id"] for m in messages} == {key}  # what the console compares
    assert packets and packets[0]["conversation_id"] == key
    assert PHONE not in json.dumps(packets, ensure_ascii=False)
    # the worker installed the masking filter on the handlers it logs to
    assert any(
        isinstance(f, MaskingFilter) for h in logging.getLogger().handlers for f in h.filters
    )


async def test_purge_deletes_the_idle_raw_rows_not_the_active_pseudonym(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = project(tmp_path)
    for name in ("BOT_DB_URL", "BOT_HANDOFF_DB", "BOT_DATA_KEY", "BOT_PSEUDONYM_KEY"):
        monkeypatch.delenv(name, raising=False)
    keep = PrivacyPolicy.from_section({"stored_text": "keep"}, {})
    mask = PrivacyPolicy.from_section(None, {})
    old = create_tracker_store({"url": "sqlite:///data/bot.db"}, root, keep)
    await old.append(PHONE, [user("你好", time.time() - YEAR)])  # before the upgrade: raw id
    await old.close()
    store = create_tracker_store({"url": "sqlite:///data/bot.db"}, root, mask)
    await store.append(PHONE, [user("查余额")])  # after: under the pseudonym, active
    handoffs = HandoffStore(store.engine, mask)  # type: ignore[attr-defined]
    waiting = Handoff(
        new_id(), PHONE, "rest", None, None, "账户", 0, "customer_request", None,
        "waiting", time.time(),
    )  # fmt: skip
    handoffs.handoffs.enqueue(waiting, {})
    code, out = await run_cli(
        ["privacy", "purge", "--older-than", "180d", "--project", str(root)], capsys
    )
    assert code == 0, out
    with store.engine.connect() as conn:  # type: ignore[attr-defined]
        senders = set(conn.execute(sa.text("SELECT DISTINCT sender_id FROM events")).scalars())
    assert senders == {mask.sender_key(PHONE)}  # the raw idle rows went, the active stayed
    assert await store.count(PHONE) == 1
    assert handoffs.handoffs.latest(PHONE) is not None  # the active handoff kept
    await store.close()


async def test_an_absurd_age_is_refused_before_anything_is_deleted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(BotError, match="100 years"):
        parse_age("100000000d")
    assert parse_age("36500d") == 36500 * 86400
    root = project(tmp_path)
    for name in ("BOT_DB_URL", "BOT_HANDOFF_DB", "BOT_DATA_KEY"):
        monkeypatch.delenv(name, raising=False)
    store = create_tracker_store({"url": "sqlite:///data/bot.db"}, root, PrivacyPolicy())
    await store.append("old-1", [user("你好", time.time() - YEAR)])
    code, out = await run_cli(
        ["privacy", "purge", "--older-than", "100000000d", "--project", str(root)], capsys
    )
    assert code == 1 and "100 years" in out  # one line, no traceback
    assert await store.exists("old-1")
    await store.close()


def test_purge_keeps_open_tickets(tmp_path: Path) -> None:
    store = HandoffStore.from_url(f"sqlite:///{tmp_path / 'h.db'}", PrivacyPolicy())
    year_ago = time.time() - YEAR
    tickets = []
    for conversation in ("c-open", "c-done"):
        handoff = Handoff(
            new_id(), conversation, "rest", None, None, "账户", 0, "customer_request", None,
            "leaving", year_ago,
        )  # fmt: skip
        store.handoffs.enqueue(handoff, {})
        ticket = store.tickets.to_ticket(handoff.id, "请回电", year_ago)
        assert ticket is not None
        tickets.append(ticket)
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE handoff_tickets SET status = 'done' WHERE id = :i"),
                     {"i": tickets[1].id})  # fmt: skip
    assert store.tickets.purge_before(time.time() - 86400) == 1
    assert [t.conversation_id for t in store.tickets.all(None)] == ["c-open"]


def test_a_stored_key_is_no_anonymous_sender() -> None:
    pseudonym = PrivacyPolicy().sender_key(PHONE)
    for sender in (pseudonym, pseudonym.upper(), "138****5678", "x**y"):
        with pytest.raises(ChannelError):
            check_anonymous(sender)
    for sender in ("web-42", PHONE, "a*b", "user~name"):
        assert check_anonymous(sender) == sender


def test_kf_inbox_drops_handled_text_and_is_purged_and_erased(tmp_path: Path) -> None:
    now = [time.time()]
    store = KfStore(sa.create_engine(f"sqlite:///{tmp_path / 'kf.db'}"), clock=lambda: now[0])
    item = {"msgid": "m1", "external_userid": "wm1", "send_time": now[0], "origin": 3,
            "msgtype": "text", "text": {"content": f"我的电话{PHONE}"}}  # fmt: skip
    assert store.store("kf1", [item], 3 * 86400) == ["m1"]
    [claimed] = store.claim("kf1")
    assert claimed.item == item
    store.finish("m1")
    store.customer_wrote("kf1", "wm1", "wecom_kf:wm1", now[0])
    store.hold("kf1", "wm1", {"text": f"回电{PHONE}"})
    with store.engine.connect() as conn:
        payload = conn.execute(sa.text("SELECT payload FROM wecom_kf_inbox")).scalar()
    assert payload == "{}" and store.status("m1") == "done"
    assert store.store("kf1", [item], 3 * 86400) == []  # pulled again: still handled once
    assert store.purge_before(now[0] - 60) == {
        "wecom_kf_inbox": 0, "wecom_kf_outbox": 0, "wecom_kf_sessions": 0
    }  # fmt: skip
    assert store.purge_before(now[0] + 60) == {
        "wecom_kf_inbox": 1, "wecom_kf_outbox": 1, "wecom_kf_sessions": 1
    }  # fmt: skip
    store.customer_wrote("kf1", "wm2", "wecom_kf:wm2", now[0])
    store.bind("wm3", "C1001")
    store.hold("kf1", "wm3", {"text": "x"})
    rows = store.forget(["wecom_kf:wm2"], "C1001")
    assert rows == {"wecom_kf_inbox": 0, "wecom_kf_outbox": 1, "wecom_kf_sessions": 1,
                    "wecom_kf_bindings": 1}  # fmt: skip
    assert store.bindings() == []


def test_log_records_and_their_exceptions_are_masked() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        privacy.install_masking()
        privacy.install_masking()  # once per handler
        assert sum(isinstance(f, MaskingFilter) for f in handler.filters) == 1
        log = logging.getLogger("bot.test_masking")
        try:
            raise ValueError(f"no account for {PHONE}")
        except ValueError:
            log.exception("lookup of %s failed", PHONE)
    finally:
        root.removeHandler(handler)
    text = stream.getvalue()
    assert "ValueError" in text and "138****5678" in text
    assert PHONE not in text and MIDDLE + "5678" not in text


async def test_purge_and_erase_cover_the_kf_and_wechat_tables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.channels.wechat.store import BindingStore

    root = project(tmp_path)
    for name in ("BOT_DB_URL", "BOT_HANDOFF_DB", "BOT_DATA_KEY", "BOT_WECHAT_BINDINGS_DB"):
        monkeypatch.delenv(name, raising=False)
    aes = base64.b64encode(bytes(range(32))).decode().rstrip("=")
    (root / "credentials.yml").write_text(
        "rest:\nwecom_kf:\n  corpid: ww0123456789abcdef\n  secret: s\n  token: t\n"
        f"  encoding_aes_key: {aes}\n",
        encoding="utf-8",
    )
    store = create_tracker_store({"url": "sqlite:///data/bot.db"}, root, PrivacyPolicy())
    engine = store.engine  # type: ignore[attr-defined]
    kf = KfStore(engine)
    kf.bind("wm3", "C1001")
    kf.customer_wrote("kf1", "wm3", "customer:C1001", time.time())
    wechat = BindingStore(engine)
    wechat.bind("openid-1", "C1001")
    wechat.bind("openid-2", "C2002")
    p = ["--project", str(root)]
    code, out = await run_cli(["privacy", "purge", "--older-than", "180d", *p], capsys)
    assert code == 0 and "wecom_kf_inbox" in out and "wecom_kf_sessions" in out
    code, out = await run_cli(["privacy", "erase", "--customer", "C1001", *p], capsys)
    assert code == 0 and "wecom_kf_bindings" in out and "wechat_bindings" in out, out
    assert kf.bindings() == [] and kf.session("kf1", "wm3") is None
    assert [b[0] for b in wechat.all()] == ["openid-2"]
    await store.close()
