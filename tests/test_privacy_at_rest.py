"""Personal data at rest: the ``privacy:`` policy (mask / encrypt / keep) as the tracker
store and the handoff stores apply it, the keys, and ``bot privacy purge / erase / export /
rotate-key`` (audited), through the stores' API and the CLI."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from backends import pg_problem, pg_url
from cryptography.fernet import Fernet

from bot.cli.main import main
from bot.core.tracker_store import SQLTrackerStore, create_tracker_store
from bot.errors import ConfigError
from bot.handoff.records import Handoff, new_id
from bot.handoff.store import HandoffStore
from bot.kb.gaps import GapLog
from bot.privacy import PrivacyPolicy, StoredText, mask_text

REPO = Path(__file__).resolve().parents[1]
PHONE, ID_NUMBER, CARD = "13812345678", "110101199003077758", "6222021234567890"
SECRETS = ("12345678", "19900307", "02123456")  # the middles: never stored in any form
TEXT = f"我的身份证{ID_NUMBER}，卡号6222 0212 3456 7890，电话138.1234.5678"
KEY = Fernet.generate_key().decode()


def digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


def assert_no_secret(blob: str) -> None:
    folded = digits(blob)
    for secret in SECRETS:
        assert secret not in folded, f"{secret} stored: {blob[:300]}"


def user(text: str, stamp: float | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "event": "user",
        "timestamp": time.time() if stamp is None else stamp,
        "text": text,
        "parse_data": {"text": text, "intent": {"name": "inform", "confidence": 0.9}},
        **extra,
    }


def dump(engine: sa.Engine, table: str) -> list[str]:
    """Every column of every row, as text (for grepping)."""
    with engine.connect() as conn:
        rows = conn.execute(sa.text(f'SELECT * FROM "{table}"')).all()
    return [" ".join(str(v) for v in row) for row in rows]


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        reason = pg_problem()
        if reason:
            pytest.skip(reason)
        return pg_url()
    return f"sqlite:///{tmp_path / 'bot.db'}"


@pytest.fixture
async def stores(db_url: str) -> AsyncIterator[list[SQLTrackerStore]]:
    made: list[SQLTrackerStore] = []
    yield made
    if made:
        made[0].table.drop(made[0].engine, checkfirst=True)
    for store in made:
        await store.close()


def policy(stored: str, key: str | None = None) -> PrivacyPolicy:
    env = {"BOT_PSEUDONYM_KEY": "pepper"} | ({"BOT_DATA_KEY": key} if key else {})
    return PrivacyPolicy.from_section({"stored_text": stored}, env)


def table(name: str = "") -> str:
    return f"events_p{new_id()[:10]}{name}"


async def test_mask_stores_no_number_and_the_conversation_keeps_working(
    db_url: str, stores: list[SQLTrackerStore]
) -> None:
    store = SQLTrackerStore(db_url, table=table(), privacy=policy("mask"))
    stores.append(store)
    slot = {"event": "slot", "timestamp": time.time(), "name": "phone", "value": PHONE}
    await store.append(PHONE, [user(TEXT), slot])
    await store.append(PHONE, [user("还有别的吗")])  # same sender, same conversation
    rows = dump(store.engine, store.table.name)
    assert len(rows) == 3
    for row in rows:
        assert_no_secret(row)
    events = await store.events(PHONE)
    assert [e["event"] for e in events] == ["user", "slot", "user"]
    assert events[0]["text"] == mask_text(TEXT)
    assert events[1]["value"] == "138****5678"
    assert await store.count(PHONE) == 3
    [key] = await store.senders()
    assert key.startswith("138****5678~") and await store.count(key) == 3  # either form


async def test_encrypt_keeps_originals_recoverable_with_the_key_only(
    db_url: str, stores: list[SQLTrackerStore]
) -> None:
    name = table()
    store = SQLTrackerStore(db_url, table=name, privacy=policy("encrypt", KEY))
    stores.append(store)
    await store.append(PHONE, [user(TEXT), user("你好")])
    for row in dump(store.engine, name):
        assert_no_secret(row)
    events = await store.events(PHONE)
    assert events[0]["text"] == TEXT and "_enc" not in events[0]  # the original, decrypted
    assert events[1]["text"] == "你好"
    # without the key (or with another one) the masked form is read, nothing fails
    for other in (policy("mask"), policy("encrypt", Fernet.generate_key().decode())):
        reader = SQLTrackerStore(db_url, table=name, privacy=other)
        stores.append(reader)
        read = await reader.events(PHONE)
        assert read[0]["text"] == mask_text(TEXT) and "_enc" not in read[0]


async def test_keep_stores_the_text_as_typed(db_url: str, stores: list[SQLTrackerStore]) -> None:
    store = SQLTrackerStore(db_url, table=table(), privacy=policy("keep"))
    stores.append(store)
    await store.append(PHONE, [user(TEXT)])
    assert await store.senders() == [PHONE]
    assert (await store.events(PHONE))[0]["text"] == TEXT


def test_encrypt_without_a_key_refuses_to_start_with_a_clear_message(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"BOT_DATA_KEY is not set\. Fix: "):
        PrivacyPolicy.from_section({"stored_text": "encrypt"}, {})
    with pytest.raises(ConfigError, match="not a Fernet key"):
        PrivacyPolicy.from_section({"stored_text": "encrypt"}, {"BOT_DATA_KEY": "short"})
    with pytest.raises(ConfigError, match="mask, encrypt, keep"):
        PrivacyPolicy.from_section({"stored_text": "hide"}, {})
    with pytest.raises(ConfigError, match="unknown option"):
        PrivacyPolicy.from_section({"stored": "mask"}, {})
    with pytest.raises(ConfigError, match="must be a mapping"):
        PrivacyPolicy.from_section("mask", {})  # type: ignore[arg-type]
    assert PrivacyPolicy.from_section(None, {}).stored_text is StoredText.MASK  # the default


def test_the_agent_refuses_to_load_with_encrypt_and_no_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = project(tmp_path, "encrypt")
    monkeypatch.delenv("BOT_DATA_KEY", raising=False)
    code = subprocess.run(
        [sys.executable, "-m", "bot", "privacy", "purge", "--older-than", "1d"],
        cwd=root,
        capture_output=True,
        text=True,
        env={**os.environ, "BOT_DATA_KEY": ""},
        timeout=120,
    )
    assert code.returncode == 1
    assert "privacy.stored_text is encrypt but $BOT_DATA_KEY is not set. Fix:" in code.stderr
    assert "Traceback" not in code.stderr


def test_handoff_tables_store_keys_and_masked_text(tmp_path: Path) -> None:
    store = HandoffStore.from_url(f"sqlite:///{tmp_path / 'h.db'}", policy("mask"))
    handoff = Handoff(
        new_id(), PHONE, "rest", PHONE, "张*", "账户", 0, "customer_request",
        f"客户说{ID_NUMBER}", "waiting", time.time(), preview=TEXT,
    )  # fmt: skip
    stored, queued = store.handoffs.enqueue(handoff, {"transcript": [{"text": TEXT}]})
    assert queued and stored.conversation_id.startswith("138****5678~")
    assert store.handoffs.latest(PHONE) == store.handoffs.latest(stored.conversation_id)
    store.audit.record("alice", "note", PHONE, handoff.id, {"text": TEXT})
    assert store.audit.log(PHONE)[0]["detail"]["text"] == mask_text(TEXT)
    store.handoffs.transition(handoff.id, ["waiting"], {"status": "leaving"})
    assert store.tickets.to_ticket(handoff.id, TEXT, time.time()) is not None
    for name in ("handoffs", "handoff_tickets", "handoff_audit"):
        for row in dump(store.engine, name):
            assert_no_secret(row)


# --- bot privacy (CLI) -----------------------------------------------------------------------


def project(tmp_path: Path, stored: str = "mask") -> Path:
    root = tmp_path / "bot"
    root.mkdir()
    for name in ("config.yml", "domain.yml", "handoff.yml"):
        shutil.copy(REPO / name, root / name)
    (root / "endpoints.yml").write_text(
        "tracker_store:\n  type: sql\n  url: sqlite:///data/bot.db\n"
        f"privacy:\n  stored_text: {stored}\n",
        encoding="utf-8",
    )
    return root


async def fill(root: Path, env: dict[str, str]) -> tuple[SQLTrackerStore, HandoffStore]:
    """Three conversations: one a year old, one of customer C1001 (verified, with a
    handoff and a ticket), one recent; gap log lines old and new."""
    privacy = PrivacyPolicy.from_section(
        {"stored_text": "encrypt" if "BOT_DATA_KEY" in env else "mask"}, env
    )
    store = create_tracker_store({"url": "sqlite:///data/bot.db"}, root, privacy)
    assert isinstance(store, SQLTrackerStore)
    year_ago = time.time() - 365 * 86400
    await store.append("old-1", [user(TEXT, year_ago)])
    slot = {"event": "slot", "timestamp": time.time(), "name": "customer_id", "value": "C1001"}
    await store.append("web-42", [user(TEXT), slot])
    await store.append("C1001", [user("你好")])
    await store.append("new-1", [user("查余额")])
    handoffs = HandoffStore(store.engine, privacy)
    handoff = Handoff(
        new_id(), "web-42", "rest", "C1001", None, "账户", 0, "customer_request", None,
        "leaving", time.time(), preview=TEXT,
    )  # fmt: skip
    handoffs.handoffs.enqueue(handoff, {})
    handoffs.tickets.to_ticket(handoff.id, TEXT, time.time())
    old = Handoff(
        new_id(), "old-1", "rest", None, None, "账户", 0, "customer_request", None,
        "closed", year_ago, closed_at=year_ago,
    )  # fmt: skip
    handoffs.handoffs.enqueue(old, {})
    gaps = GapLog.in_dir(root / "kb_index")
    from datetime import UTC, datetime

    gaps.record(TEXT, [], when=datetime.fromtimestamp(year_ago, UTC))
    gaps.record("新的问题", [])
    return store, handoffs


async def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """``bot ARGV`` in this process (on a thread: the command runs its own event loop)."""
    code = await asyncio.to_thread(main, argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out + err


async def test_purge_and_erase_cover_every_store_and_are_audited(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = project(tmp_path)
    for name in ("BOT_DB_URL", "BOT_HANDOFF_DB", "BOT_DATA_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BOT_OPERATOR", "dpo-wang")
    store, handoffs = await fill(root, {})
    p = ["--project", str(root)]

    code, out = await run_cli(["privacy", "purge", "--older-than", "180d", "--dry-run", *p], capsys)
    assert code == 0 and "would delete" in out
    assert await store.exists("old-1")

    code, out = await run_cli(["privacy", "purge", "--older-than", "180d", *p], capsys)
    assert code == 0 and "conversations" in out and "kb_gaps" in out
    assert not await store.exists("old-1") and await store.exists("new-1")
    assert [g["query"] for g in GapLog.in_dir(root / "kb_index").read()] == ["新的问题"]
    assert handoffs.handoffs.latest("old-1") is None
    assert handoffs.handoffs.latest("web-42") is not None  # open, recent: kept

    code, out = await run_cli(["privacy", "erase", "--customer", "C1001", *p], capsys)
    assert code == 0 and "erasure of customer C1001" in out
    assert not await store.exists("web-42") and not await store.exists("C1001")
    assert await store.exists("new-1")
    assert handoffs.handoffs.latest("web-42") is None and handoffs.tickets.all(None) == []

    audit = handoffs.audit.log(actions=["privacy_purge", "privacy_erase"])
    assert [a["action"] for a in audit] == ["privacy_purge", "privacy_erase"]
    assert all(a["actor"] == "dpo-wang" and a["at"] > time.time() - 600 for a in audit)
    purge, erase = (a["detail"] for a in audit)
    assert purge["older_than"] == "180d" and purge["rows"]["events"] == 1
    assert purge["rows"]["kb_gaps"] == 1 and purge["rows"]["handoffs"] == 1
    assert erase["customer"] == "C1001" and erase["rows"]["conversations"] == 2
    assert erase["rows"]["events"] == 3 and erase["rows"]["handoff_tickets"] == 1
    code, out = await run_cli(["privacy", "purge", "--older-than", "soon", *p], capsys)
    assert code == 1 and "180d" in out  # a clear message, no traceback
    await store.close()


async def test_export_and_key_rotation_with_the_encrypt_policy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = project(tmp_path, "encrypt")
    for name in ("BOT_DB_URL", "BOT_HANDOFF_DB"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BOT_DATA_KEY", KEY)
    store, _ = await fill(root, {"BOT_DATA_KEY": KEY})
    await store.close()
    p = ["--project", str(root)]

    code, out = await run_cli(["privacy", "export", "--customer", "C1001", *p], capsys)
    exported = json.loads(out)
    assert code == 0 and len(exported["conversations"]) == 2
    assert_no_secret(out)  # as stored: masked
    code, out = await run_cli(
        ["privacy", "export", "--customer", "C1001", "--originals", *p], capsys
    )
    assert code == 0 and ID_NUMBER in out  # the authorised reader, with the key

    new = Fernet.generate_key().decode()
    monkeypatch.setenv("BOT_DATA_KEY", f"{new},{KEY}")
    code, out = await run_cli(["privacy", "rotate-key", *p], capsys)
    assert code == 0 and "re-encrypted 2 events" in out
    monkeypatch.setenv("BOT_DATA_KEY", new)  # the old key retired
    reader = create_tracker_store({"url": "sqlite:///data/bot.db"}, root, policy("encrypt", new))
    assert (await reader.events("web-42"))[0]["text"] == TEXT
    await reader.close()
    code, out = await run_cli(["privacy", "new-key"], capsys)
    Fernet(out.strip().encode())  # a valid key


def test_purge_runs_as_a_real_command(tmp_path: Path) -> None:
    root = project(tmp_path)
    env = {k: v for k, v in os.environ.items() if k not in ("BOT_DB_URL", "BOT_HANDOFF_DB")}
    done = subprocess.run(
        [sys.executable, "-m", "bot", "privacy", "purge", "--older-than", "26w"],
        cwd=root,
        capture_output=True,
        text=True,
        env={**env, "PYTHONPATH": str(REPO)},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "purge of conversations idle since" in done.stdout and "total" in done.stdout


async def test_reapply_rewrites_rows_stored_before_the_policy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An upgrade: rows written under keep (as older versions did) are masked and re-keyed,
    and the conversation of a phone-number sender goes on under its pseudonym."""
    root = project(tmp_path)
    for name in ("BOT_DB_URL", "BOT_HANDOFF_DB", "BOT_DATA_KEY", "BOT_PSEUDONYM_KEY"):
        monkeypatch.delenv(name, raising=False)
    old = create_tracker_store({"url": "sqlite:///data/bot.db"}, root, policy("keep"))
    await old.append(PHONE, [user(TEXT), user("你好")])
    await old.append("h1", [user(TEXT)])
    legacy = HandoffStore(old.engine, PrivacyPolicy.from_section({"stored_text": "keep"}, {}))
    handoff = Handoff(
        new_id(), PHONE, "rest", PHONE, None, "账户", 0, "customer_request", None,
        "waiting", time.time(), preview=TEXT,
    )  # fmt: skip
    legacy.handoffs.enqueue(handoff, {"transcript": [{"text": TEXT, "at": 1764800000.125}]})
    await old.close()
    p = ["--project", str(root)]
    code, out = await run_cli(["privacy", "reapply", "--dry-run", *p], capsys)
    assert code == 0 and "would rewrite 3 events, 1 handoff rows" in out
    code, out = await run_cli(["privacy", "reapply", *p], capsys)
    assert code == 0 and "rewrote 3 events, 1 handoff rows" in out
    store = create_tracker_store({"url": "sqlite:///data/bot.db"}, root, PrivacyPolicy())
    assert isinstance(store, SQLTrackerStore)
    for name in ("events", "handoffs"):
        for row in dump(store.engine, name):
            assert_no_secret(row)
    assert await store.count(PHONE) == 2  # found under its new key
    assert (await store.events("h1"))[0]["text"] == mask_text(TEXT)
    packet = HandoffStore(store.engine).handoffs.packet(handoff.id)
    assert packet == {"transcript": [{"text": mask_text(TEXT), "at": 1764800000.125}]}
    await store.close()


def test_bot_run_refuses_to_start_with_encrypt_and_no_key(tmp_path: Path) -> None:
    root = project(tmp_path, "encrypt")
    env = {k: v for k, v in os.environ.items() if k not in ("BOT_DATA_KEY", "BOT_DB_URL")}
    done = subprocess.run(
        [sys.executable, "-m", "bot", "run", "--port", "0", "--project", str(root)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode != 0
    assert "privacy.stored_text is encrypt but $BOT_DATA_KEY is not set. Fix:" in done.stderr
    assert "Traceback" not in done.stderr
