"""The WeChat customer service (微信客服) channel against a local fake of the WeCom API
(tests/fake_wecom.py): callback URL verification and signatures with the real AES crypto,
kf/sync_msg paging from the stored cursor, the cursor advanced only after the messages are
stored, one turn per msgid across two workers, the 3-day window, token expiry and refresh,
the five-message rule (held and merged), 95018 and the session states, menu clicks,
enter_session, servicer handoff, and bad input (always a 4xx)."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from fake_wecom import FakeWeCom, encrypt, sha1_signature
from hypothesis import given, settings
from hypothesis import strategies as st
from sanic import Sanic

from bot.channels.wecom_kf.channel import (
    WeComKfChannel,
    render,
    wecom_kf_blueprint,
)
from bot.channels.wecom_kf.config import HandoffMode, KfSettings, settings_from_mapping
from bot.channels.wecom_kf.store import KfStore
from bot.core.messages import UserMessage
from bot.errors import ConfigError
from bot.server.channels import read_credentials
from bot.server.errors import install_error_handlers
from bot.server.metrics import BotMetrics

CORPID = "ww0123456789abcdef"
SECRET = "kf-secret"
TOKEN = "kfCallbackToken"
AES_KEY = base64.b64encode(bytes(range(32))).decode().rstrip("=")
KFID = "wkAJ2GCAAAZSfhHCt7IFSvLKtMPxyJTw"
USER = "wmAJ2GCAAAme1XQRC-NI-q0_ZM9ukoAw"
URL = "/webhooks/wecom_kf/webhook"
_apps = itertools.count()


@pytest.fixture
async def fake() -> AsyncIterator[FakeWeCom]:
    server = await FakeWeCom(CORPID, SECRET, TOKEN, AES_KEY).start()
    yield server
    await server.stop()


def kf_settings(fake: FakeWeCom, **extra: Any) -> KfSettings:
    section = {
        "corpid": CORPID,
        "secret": SECRET,
        "token": TOKEN,
        "encoding_aes_key": AES_KEY,
        "api_base": fake.base,
        **extra,
    }
    return settings_from_mapping(section, env={})


class Bot:
    """A stand-in for the server's turn: records each message, answers ``answer(text)``."""

    def __init__(self, answer: Any = None) -> None:
        self.messages: list[UserMessage] = []
        self.answer = answer or (lambda text: [{"text": f"答：{text}"}])

    async def __call__(self, message: UserMessage) -> list[dict[str, Any]]:
        self.messages.append(message)
        return list(self.answer(message.text))

    @property
    def texts(self) -> list[str]:
        return [m.text for m in self.messages]


def channel_for(
    fake: FakeWeCom, tmp_path: Path, bot: Bot | None = None, **extra: Any
) -> WeComKfChannel:
    store = KfStore.from_url(f"sqlite:///{tmp_path / 'kf.db'}")
    return WeComKfChannel(bot or Bot(), kf_settings(fake, **extra), store)


def app_for(channel_bot: Bot, settings: KfSettings, store: KfStore) -> Sanic[Any, Any]:
    app: Sanic[Any, Any] = Sanic(f"kf_test_{next(_apps)}")
    app.config.FALLBACK_ERROR_FORMAT = "json"
    install_error_handlers(app, BotMetrics())
    app.blueprint(wecom_kf_blueprint(channel_bot, settings, store=store))
    return app


def kf_of(app: Sanic[Any, Any]) -> WeComKfChannel:
    channel = app.blueprints["channel_wecom_kf"].ctx.channel
    assert isinstance(channel, WeComKfChannel)
    return channel


# -- settings ---------------------------------------------------------------------------------


def test_settings_need_the_four_secrets_and_env_wins() -> None:
    with pytest.raises(ConfigError, match=r"wecom_kf\.secret is missing"):
        settings_from_mapping({"corpid": CORPID, "token": TOKEN, "encoding_aes_key": AES_KEY}, {})
    settings = settings_from_mapping(
        {"corpid": CORPID, "token": TOKEN, "encoding_aes_key": AES_KEY, "secret": "file"},
        {"BOT_WECOM_KF_SECRET": "env"},
    )
    assert settings.secret == "env" and settings.budget == 5
    assert settings.mode_for("any") == HandoffMode("console")


def test_credentials_yml_mistakes_are_one_line_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "credentials.yml"
    path.write_text(
        "rest:\n"
        "wecom_kf:\n"
        f"  corpid: {CORPID}\n"
        "  secret: s\n"
        f"  token: {TOKEN}\n"
        f"  encoding_aes_key: {AES_KEY}\n"
        "  handoff:\n"
        "    cards: {mode: servicer, servicer_userid: zhangsan}\n"
        "    wealth:\n"
        "      mode: robot\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        read_credentials(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:10: wecom_kf.handoff.wealth.mode must be console")
    assert "Fix:" in message and "\n" not in message
    path.write_text(path.read_text().replace("mode: robot", "mode: servicer\n      queue: true"))
    credentials = read_credentials(path)
    assert credentials is not None and credentials.wecom_kf is not None
    modes = credentials.wecom_kf.handoff
    assert modes["cards"] == HandoffMode("servicer", "zhangsan")
    assert modes["wealth"].target_state == 2 and modes["cards"].target_state == 3


def test_a_bad_aes_key_is_refused() -> None:
    with pytest.raises(ConfigError, match="encoding_aes_key"):
        settings_from_mapping(
            {"corpid": CORPID, "secret": "s", "token": TOKEN, "encoding_aes_key": "short"}, {}
        )


# -- rendering --------------------------------------------------------------------------------


def test_texts_merge_and_buttons_become_a_msgmenu() -> None:
    bodies = render(
        [
            {"text": "您好"},
            {
                "text": "您是想问「查余额」吗？",
                "buttons": [
                    {"title": "查余额", "payload": "/query_balance"},
                    {"title": "转人工", "payload": "/transfer_to_human"},
                    {"title": "网点", "payload": "https://bank.example/branches"},
                ],
            },
            {"text": "还有别的吗"},
        ]
    )
    assert [b["msgtype"] for b in bodies] == ["msgmenu", "text"]
    menu = bodies[0]["msgmenu"]
    assert menu["head_content"] == "您好\n\n您是想问「查余额」吗？"
    assert menu["list"][0] == {
        "type": "click",
        "click": {"id": "/query_balance", "content": "查余额"},
    }
    assert menu["list"][2]["type"] == "view"
    assert bodies[1]["text"]["content"] == "还有别的吗"


_texts = st.text(alphabet=st.sampled_from("转账到账。！？\n余额abc 1"), min_size=1, max_size=1500)
_buttons = st.lists(
    st.fixed_dictionaries({"title": st.sampled_from(["转人工", "查余额"]), "payload": _texts}),
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.fixed_dictionaries({"text": _texts, "buttons": _buttons}), max_size=5))
def test_rendered_bodies_keep_wechats_limits_and_every_word(messages: list[Any]) -> None:
    bodies = render(messages)
    for body in bodies:
        if body["msgtype"] == "text":
            assert 0 < len(body["text"]["content"].encode()) <= 2048
        else:
            menu = body["msgmenu"]
            assert len(menu.get("head_content", "").encode()) <= 1024
            assert 1 <= len(menu["list"]) <= 10
            for item in menu["list"]:
                click = item.get("click") or {}
                assert "id" not in click or len(click["id"].encode()) <= 128
    sent = "".join(
        b["text"]["content"] if b["msgtype"] == "text" else b["msgmenu"].get("head_content", "")
        for b in bodies
    )
    for message in messages:  # every text reaches the customer (line breaks aside)
        assert message["text"].replace("\n", "") in sent.replace("\n", "")
    assert len(bodies) <= 2 * len(messages) + sum(len(m["text"]) // 600 for m in messages)


def test_a_long_answer_is_split_under_2048_bytes() -> None:
    answer = "跨行转账一般当日到账。" * 300
    bodies = render([{"text": answer}])
    assert len(bodies) > 1 and all(len(b["text"]["content"].encode()) <= 2048 for b in bodies)
    assert "".join(b["text"]["content"] for b in bodies) == answer


# -- the callback -----------------------------------------------------------------------------


def signed_query(encrypted: str, token: str = TOKEN) -> dict[str, str]:
    timestamp, nonce = "1714036504", "1514711492"
    return {
        "msg_signature": sha1_signature(token, timestamp, nonce, encrypted),
        "timestamp": timestamp,
        "nonce": nonce,
    }


async def test_url_verification_returns_the_decrypted_echostr(
    fake: FakeWeCom, tmp_path: Path
) -> None:
    store = KfStore.from_url(f"sqlite:///{tmp_path / 'kf.db'}")
    app = app_for(Bot(), kf_settings(fake), store)
    echostr = encrypt(AES_KEY, CORPID, "5927782489442352469")
    _, response = await app.asgi_client.get(
        URL, params={**signed_query(echostr), "echostr": echostr}
    )
    assert response.status == 200 and response.text == "5927782489442352469"
    forged = signed_query(echostr, token="another-token")
    _, response = await app.asgi_client.get(URL, params={**forged, "echostr": echostr})
    assert response.status == 403 and "msg_signature" in response.json["error"]
    other_corp = encrypt(AES_KEY, "wwSOMEONEELSE", "123")
    _, response = await app.asgi_client.get(
        URL, params={**signed_query(other_corp), "echostr": other_corp}
    )
    assert response.status == 400 and "another app id" in response.json["error"]
    _, response = await app.asgi_client.get(URL, params=signed_query(""))
    assert response.status == 400 and "echostr" in response.json["error"]


async def test_a_callback_pulls_and_answers(fake: FakeWeCom, tmp_path: Path) -> None:
    bot = Bot()
    store = KfStore.from_url(f"sqlite:///{tmp_path / 'kf.db'}")
    app = app_for(bot, kf_settings(fake), store)
    fake.customer_says(KFID, USER, "查余额")
    query, body = fake.callback_body(KFID)
    _, response = await app.asgi_client.post(URL, params=query, content=body)
    assert response.status == 200 and response.text == "success"
    await kf_of(app).drain()
    assert bot.texts == ["查余额"]
    assert bot.messages[0].sender_id == f"wecom_kf:{USER}"
    assert bot.messages[0].input_channel == "wecom_kf" and bot.messages[0].customer_id is None
    assert fake.texts_to(USER) == ["答：查余额"]
    assert fake.sync_calls[0]["token"] in fake.callback_tokens  # the callback's token
    assert fake.transitions == [(USER, 1, None)]  # the bot took the new session (0 -> 1)


async def test_a_forged_callback_is_403_and_pulls_nothing(fake: FakeWeCom, tmp_path: Path) -> None:
    bot = Bot()
    store = KfStore.from_url(f"sqlite:///{tmp_path / 'kf.db'}")
    app = app_for(bot, kf_settings(fake), store)
    fake.customer_says(KFID, USER, "查余额")
    query, body = fake.callback_body(KFID)
    query["msg_signature"] = "0" * 40
    _, response = await app.asgi_client.post(URL, params=query, content=body)
    assert response.status == 403
    query["msg_signature"] = "签名"  # not hex ASCII: still a 403, not a 500
    _, response = await app.asgi_client.post(URL, params=query, content=body)
    assert response.status == 403
    await kf_of(app).drain()
    assert fake.sync_calls == [] and bot.messages == []


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not xml",
        b"<json/>",
        b"<xml><ToUserName>x</ToUserName></xml>",
        b'<!DOCTYPE x [<!ENTITY a "b">]><xml><Encrypt>&a;</Encrypt></xml>',
    ],
)
async def test_bad_bodies_are_400(fake: FakeWeCom, tmp_path: Path, body: bytes) -> None:
    store = KfStore.from_url(f"sqlite:///{tmp_path / 'kf.db'}")
    app = app_for(Bot(), kf_settings(fake), store)
    _, response = await app.asgi_client.post(URL, params=signed_query("x"), content=body)
    assert response.status == 400 and response.json["error"]


async def test_an_undecryptable_body_is_400(fake: FakeWeCom, tmp_path: Path) -> None:
    store = KfStore.from_url(f"sqlite:///{tmp_path / 'kf.db'}")
    app = app_for(Bot(), kf_settings(fake), store)
    encrypted = base64.b64encode(b"0" * 48).decode()
    body = f"<xml><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>".encode()
    _, response = await app.asgi_client.post(URL, params=signed_query(encrypted), content=body)
    assert response.status == 400 and "decrypt" in response.json["error"]


# -- sync_msg, the cursor and deduplication ---------------------------------------------------


async def test_pages_are_pulled_while_has_more_and_the_cursor_is_kept(
    fake: FakeWeCom, tmp_path: Path
) -> None:
    bot = Bot()
    channel = channel_for(fake, tmp_path, bot, sync_limit=2)
    for n in range(5):
        fake.customer_says(KFID, USER, f"问题{n}")
    assert await channel.sync(KFID, None) == 5
    assert bot.texts == [f"问题{n}" for n in range(5)]
    assert [call.get("cursor") for call in fake.sync_calls] == [None, "c2", "c4"]
    assert channel.store.cursor(KFID) == "c5"
    fake.customer_says(KFID, USER, "再问")
    assert await channel.sync(KFID, None) == 1  # from the stored cursor: only the new one
    assert fake.sync_calls[-1]["cursor"] == "c5" and bot.texts[-1] == "再问"
    await channel.close()


async def test_the_cursor_moves_only_after_the_messages_are_stored(
    fake: FakeWeCom, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bot = Bot()
    channel = channel_for(fake, tmp_path, bot)
    fake.customer_says(KFID, USER, "查余额")
    original = channel.store.store

    def broken(*args: Any) -> int:
        raise RuntimeError("database went away")

    monkeypatch.setattr(channel.store, "store", broken)
    with pytest.raises(RuntimeError):
        await channel.sync(KFID, None)
    assert channel.store.cursor(KFID) is None and bot.messages == []
    monkeypatch.setattr(channel.store, "store", original)
    assert await channel.sync(KFID, None) == 1  # pulled again from the old cursor
    assert bot.texts == ["查余额"] and channel.store.cursor(KFID) == "c1"
    await channel.close()


async def test_two_workers_on_one_database_handle_each_msgid_once(
    fake: FakeWeCom, tmp_path: Path
) -> None:
    handled: list[str] = []  # by both workers, in the order the turns ran

    def answer(text: str) -> list[dict[str, Any]]:
        handled.append(text)
        return [{"text": f"答：{text}"}]

    first_bot, second_bot = Bot(answer), Bot(answer)
    first = channel_for(fake, tmp_path, first_bot)
    second = channel_for(fake, tmp_path, second_bot)  # the same database file
    for n in range(6):
        fake.customer_says(KFID, USER, f"问题{n}")
        fake.customer_says(KFID, "wmOTHER", f"另一位{n}")
    await asyncio.gather(first.sync(KFID, None), second.sync(KFID, None))
    assert [t for t in handled if t.startswith("问题")] == [f"问题{n}" for n in range(6)]
    assert [t for t in handled if t.startswith("另一位")] == [f"另一位{n}" for n in range(6)]
    texts = [t for t in first_bot.texts + second_bot.texts if t.startswith("问题")]
    assert sorted(texts) == [f"问题{n}" for n in range(6)]  # each once, in order per customer
    # a worker that read the old cursor (or a replayed page) pulls the same msgids again
    with first.store.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE wecom_kf_cursors SET cursor = NULL")
    assert await second.sync(KFID, None) == 0
    assert len(first_bot.texts + second_bot.texts) == 12
    assert len(fake.texts_to(USER)) == 5  # and the five-message rule held across them
    await first.close()
    await second.close()


async def test_messages_older_than_three_days_are_skipped(fake: FakeWeCom, tmp_path: Path) -> None:
    bot = Bot()
    channel = channel_for(fake, tmp_path, bot)
    old = fake.customer_says(KFID, USER, "四天前的问题", send_time=fake.now - 4 * 86400)
    fake.customer_says(KFID, USER, "今天的问题")
    await channel.sync(KFID, None)
    assert bot.texts == ["今天的问题"]
    assert channel.store.status(old["msgid"]) == "skipped"
    await channel.close()


async def test_an_expired_token_is_fetched_again(fake: FakeWeCom, tmp_path: Path) -> None:
    channel = channel_for(fake, tmp_path)
    fake.customer_says(KFID, USER, "你好")
    await channel.sync(KFID, None)
    assert fake.fetches == 1
    fake.expire_tokens()  # the next call answers 42001
    fake.customer_says(KFID, USER, "还在吗")
    await channel.sync(KFID, None)
    assert fake.fetches == 2 and fake.texts_to(USER) == ["答：你好", "答：还在吗"]
    await channel.close()


# -- the five-message rule and session states -------------------------------------------------


async def test_past_five_messages_the_rest_is_held_then_merged(
    fake: FakeWeCom, tmp_path: Path
) -> None:
    channel = channel_for(fake, tmp_path)
    fake.customer_says(KFID, USER, "你好")
    await channel.sync(KFID, None)  # one answer: four left
    conversation = f"wecom_kf:{USER}"
    for n in range(6):
        await channel.push(conversation, f"客服消息{n}")
    assert fake.texts_to(USER) == ["答：你好", "客服消息0", "客服消息1", "客服消息2", "客服消息3"]
    assert not [code for code, _ in fake.refused]  # counted here, never refused by WeChat
    assert [b["text"]["content"] for b in channel.store.held(KFID, USER)] == [
        "客服消息4",
        "客服消息5",
    ]
    fake.customer_says(KFID, USER, "收到")
    await channel.sync(KFID, None)
    merged, answer = fake.texts_to(USER)[-2:]
    assert merged.startswith(channel.say("utter_wecom_kf_held"))
    assert "客服消息4\n\n客服消息5" in merged and answer == "答：收到"
    assert channel.store.held(KFID, USER) == []
    await channel.close()


async def test_95018_an_ended_session_holds_the_message_until_the_customer_is_back(
    fake: FakeWeCom, tmp_path: Path
) -> None:
    channel = channel_for(fake, tmp_path)
    ended: list[str] = []

    async def on_end(conversation_id: str) -> None:
        ended.append(conversation_id)

    channel.on_session_end = on_end
    fake.customer_says(KFID, USER, "你好")
    await channel.sync(KFID, None)
    fake.sessions[(KFID, USER)].state = 4  # ended at WeCom (timeout), no event seen yet
    await channel.push(f"wecom_kf:{USER}", "客服回复")
    assert [code for code, _ in fake.refused] == [95018]
    assert ended == [f"wecom_kf:{USER}"]  # state 4 ends the handoff
    assert [b["text"]["content"] for b in channel.store.held(KFID, USER)] == ["客服回复"]
    fake.customer_says(KFID, USER, "我回来了")  # a new session (0): the bot takes it
    await channel.sync(KFID, None)
    assert fake.transitions[-1] == (USER, 1, None)
    assert "客服回复" in fake.texts_to(USER)[-2] and fake.texts_to(USER)[-1] == "答：我回来了"
    fake.sessions[(KFID, USER)].state = 3  # now with a WeCom servicer: not ours to send
    await channel.push(f"wecom_kf:{USER}", "不会发出")
    assert "不会发出" not in fake.texts_to(USER) and channel.store.held(KFID, USER) == []
    await channel.close()


async def test_a_menu_click_sends_the_buttons_payload(fake: FakeWeCom, tmp_path: Path) -> None:
    def answer(text: str) -> list[dict[str, Any]]:
        return [
            {
                "text": "您是想问「查余额」吗？",
                "buttons": [{"title": "转人工", "payload": "/transfer_to_human"}],
            }
        ]

    bot = Bot(answer)
    channel = channel_for(fake, tmp_path, bot)
    fake.customer_says(KFID, USER, "余额")
    await channel.sync(KFID, None)
    menu = fake.sent[-1]
    assert menu["msgtype"] == "msgmenu"
    item = menu["msgmenu"]["list"][0]["click"]
    fake.customer_says(KFID, USER, item["content"], menu_id=item["id"])
    await channel.sync(KFID, None)
    assert bot.texts == ["余额", "/transfer_to_human"]
    fake.customer_sends_image(KFID, USER)
    await channel.sync(KFID, None)
    assert fake.texts_to(USER)[-1] == channel.say("utter_text_only")
    assert len(bot.texts) == 2  # no turn for the image
    await channel.close()


async def test_enter_session_greets_with_the_welcome_code(fake: FakeWeCom, tmp_path: Path) -> None:
    bot = Bot(lambda text: [{"text": "您好，我是智能助手"}, {"text": "请问有什么可以帮您？"}])
    channel = channel_for(fake, tmp_path, bot)
    code = fake.enter_session(KFID, USER)
    await channel.sync(KFID, None)
    assert bot.texts == ["/greet"]
    assert fake.on_event == [
        {
            "code": code,
            "msgtype": "text",
            "text": {"content": "您好，我是智能助手\n\n请问有什么可以帮您？"},
        }
    ]
    assert fake.sent == []  # not one of the five messages
    await channel.close()


async def test_a_bound_external_userid_is_the_customer(fake: FakeWeCom, tmp_path: Path) -> None:
    bot = Bot()
    channel = channel_for(fake, tmp_path, bot)
    channel.store.bind(USER, "C1001")
    fake.customer_says(KFID, USER, "查余额")
    await channel.sync(KFID, None)
    message = bot.messages[0]
    assert message.sender_id == "customer:C1001" and message.customer_id == "C1001"
    await channel.push("customer:C1001", "您好")  # the agent's reply finds the session
    assert fake.texts_to(USER)[-1] == "您好"
    await channel.close()


async def test_a_turn_that_fails_leaves_the_conversation_going(
    fake: FakeWeCom, tmp_path: Path
) -> None:
    calls: list[str] = []

    def answer(text: str) -> list[dict[str, Any]]:
        calls.append(text)
        if text == "坏":
            raise RuntimeError("engine error")
        return [{"text": "好的"}]

    channel = channel_for(fake, tmp_path, Bot(answer))
    first = fake.customer_says(KFID, USER, "坏")
    fake.customer_says(KFID, USER, "好")
    await channel.sync(KFID, None)
    assert calls == ["坏", "好"] and fake.texts_to(USER) == ["好的"]
    assert channel.store.status(first["msgid"]) == "failed"
    await channel.close()


def test_the_store_round_trips_json(tmp_path: Path) -> None:
    store = KfStore.from_url(f"sqlite:///{tmp_path / 'kf.db'}")
    item = {"msgid": "m1", "send_time": 0, "origin": 3, "text": {"content": "中文"}}
    assert store.store(KFID, [item, item], max_age=1e12) == ["m1"]
    assert store.store(KFID, [item], max_age=1e12) == []
    (claimed,) = store.claim(KFID)
    assert claimed.item == json.loads(json.dumps(item)) and store.claim(KFID) == []


async def test_two_workers_on_postgresql_handle_each_msgid_once(fake: FakeWeCom) -> None:
    import uuid

    from backends import pg_problem, pg_url
    from sqlalchemy import delete

    from bot.channels.wecom_kf import store as tables

    problem = pg_problem()
    if problem:
        pytest.skip(problem)
    kfid, user = f"wk{uuid.uuid4().hex}", f"wm{uuid.uuid4().hex}"
    bots = [Bot(), Bot()]
    workers = [WeComKfChannel(bot, kf_settings(fake), KfStore.from_url(pg_url())) for bot in bots]
    try:
        for n in range(8):
            fake.customer_says(kfid, user, f"问题{n}")
        await asyncio.gather(*(w.sync(kfid, None) for w in workers))
        assert sorted(bots[0].texts + bots[1].texts) == [f"问题{n}" for n in range(8)]
        assert workers[0].store.cursor(kfid) == "c8"
        sent = fake.texts_to(user)
        assert len(sent) == 5  # the budget is one conditional update: never more than five
        assert len(workers[0].store.held(kfid, user)) == 3
    finally:
        with workers[0].store.engine.begin() as conn:
            for table, column in (
                (tables.CURSORS, tables.CURSORS.c.open_kfid),
                (tables.INBOX, tables.INBOX.c.open_kfid),
                (tables.SESSIONS, tables.SESSIONS.c.open_kfid),
                (tables.OUTBOX, tables.OUTBOX.c.open_kfid),
            ):
                conn.execute(delete(table).where(column == kfid))
        for worker in workers:
            await worker.close()


async def test_workers_share_one_access_token_through_redis(
    fake: FakeWeCom, tmp_path: Path
) -> None:
    import uuid

    from backends import REDIS_URL, redis_problem

    from bot.channels.wechat.api import RedisTokenStore

    problem = redis_problem()
    if problem:
        pytest.skip(problem)
    prefix = f"bankbot:test:wecom_kf:{uuid.uuid4().hex}:"
    workers = [channel_for(fake, tmp_path) for _ in range(2)]
    for worker in workers:
        worker.kf.shared = RedisTokenStore.from_url(REDIS_URL, CORPID, prefix=prefix)
    fake.customer_says(KFID, USER, "你好")
    await workers[0].sync(KFID, None)
    fake.customer_says(KFID, USER, "还在吗")
    await workers[1].sync(KFID, None)
    assert fake.fetches == 1  # the second worker took the first one's token from Redis
    assert fake.texts_to(USER) == ["答：你好", "答：还在吗"]
    for worker in workers:
        assert worker.kf.shared is not None
        await worker.kf.shared.redis.delete(worker.kf.shared.key)
        await worker.close()


async def test_an_expired_callback_token_pulls_without_it(fake: FakeWeCom, tmp_path: Path) -> None:
    bot = Bot()
    channel = channel_for(fake, tmp_path, bot)
    fake.customer_says(KFID, USER, "你好")
    assert await channel.sync(KFID, "ENC-expired-long-ago") == 1  # 95007, then without it
    assert [call.get("token") for call in fake.sync_calls] == ["ENC-expired-long-ago", None]
    assert bot.texts == ["你好"]
    await channel.close()


def test_bot_wecom_kf_bind_binds_in_the_channels_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.cli.main import build_parser

    (tmp_path / "config.yml").write_text("language: zh\n", encoding="utf-8")
    (tmp_path / "domain.yml").write_text("version: '3.1'\n", encoding="utf-8")
    db = tmp_path / "kf.db"
    (tmp_path / "credentials.yml").write_text(
        "wecom_kf:\n"
        f"  corpid: {CORPID}\n  secret: s\n  token: {TOKEN}\n"
        f"  encoding_aes_key: {AES_KEY}\n  db: sqlite:///{db}\n",
        encoding="utf-8",
    )
    parser = build_parser()
    for argv in (["bind", USER, "C1001"], ["list"], ["unbind", "wmNOBODY"]):
        args = parser.parse_args(["wecom-kf", *argv, "--project", str(tmp_path)])
        assert args.handler(args) == (1 if argv[0] == "unbind" else 0)
    assert f"{USER}\tC1001" in capsys.readouterr().out
    assert KfStore.from_url(f"sqlite:///{db}").customer(USER) == "C1001"


async def test_odd_items_in_a_page_do_not_stop_the_pull(fake: FakeWeCom, tmp_path: Path) -> None:
    bot = Bot()
    channel = channel_for(fake, tmp_path, bot)
    odd: list[Any] = [
        "not an object",
        {"origin": 3, "msgtype": "text", "text": {"content": "没有 msgid"}},
        {"msgid": True, "origin": 3},
        {"msgid": "odd-1", "origin": "x", "send_time": "yesterday", "msgtype": "text"},
        {"msgid": "odd-2", "origin": 3, "send_time": 1e400, "text": "不是对象", "event": []},
        {"msgid": "odd-3", "origin": 4, "msgtype": "event", "event": {"change_type": "x"}},
    ]
    fake.messages.setdefault(KFID, []).extend(odd)
    fake.customer_says(KFID, USER, "你好")
    await channel.sync(KFID, None)
    assert bot.texts == ["你好"] and channel.store.cursor(KFID) == f"c{len(odd) + 1}"
    await channel.close()
