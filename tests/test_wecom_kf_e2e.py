"""The WeChat customer service channel end to end, through the server (create_app with the
``wecom_kf:`` section of credentials.yml) and the trained bot, against the fake WeCom API:
customer asks, bot answers, customer asks for a person, the agent replies from the console
(agent API), the customer receives it through kf/send_msg, the session ends (state 4) and the
handoff is closed. And a group in ``servicer`` mode: the session goes to a WeCom servicer."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from fake_wecom import FakeWeCom
from test_server_project import TrainedBot, new_agent, trained_bot
from test_wecom_kf import AES_KEY, CORPID, KFID, SECRET, TOKEN, URL, USER

from bot.channels.wecom_kf.channel import WeComKfChannel
from bot.channels.wecom_kf.config import settings_from_mapping
from bot.handoff.config import parse as handoff_config
from bot.server import ServerSettings, create_app
from bot.server.channels import Credentials
from bot.server.settings import JwtSettings

__all__ = ["trained_bot"]
JWT_SECRET = "test-secret-0123456789abcdef-0123456789abcdef"
API_TOKEN = "api-token-0123456789abcdef-0123456789"
CONVERSATION = f"wecom_kf:{USER}"


@pytest.fixture
async def fake() -> AsyncIterator[FakeWeCom]:
    server = await FakeWeCom(CORPID, SECRET, TOKEN, AES_KEY).start()
    yield server
    await server.stop()


def kf_app(bot: TrainedBot, fake: FakeWeCom, tmp_path: Path, **section: Any) -> Any:
    settings = settings_from_mapping(
        {
            "corpid": CORPID,
            "secret": SECRET,
            "token": TOKEN,
            "encoding_aes_key": AES_KEY,
            "api_base": fake.base,
            "db": f"sqlite:///{tmp_path / 'kf.db'}",
            **section,
        },
        env={},
    )
    credentials = Credentials(tmp_path / "credentials.yml", rest=True, wecom_kf=settings)
    return create_app(
        new_agent(bot),
        ServerSettings(jwt=JwtSettings(JWT_SECRET), auth_token=API_TOKEN),
        close_stores=False,
        credentials=credentials,
    )


def kf_of(app: Any) -> WeComKfChannel:
    channel = app.blueprints["channel_wecom_kf"].ctx.channel
    assert isinstance(channel, WeComKfChannel)
    return channel


async def deliver(app: Any, fake: FakeWeCom) -> None:
    """WeCom's callback for what is new; then wait for the pull, the turns and the pushes."""
    query, body = fake.callback_body(KFID)
    _, response = await app.asgi_client.post(URL, params=query, content=body)
    assert response.status == 200 and response.text == "success"
    await kf_of(app).drain()
    await app.ctx.handoff.drain()


async def user_turns(app: Any) -> int:
    tracker = await app.ctx.agent.processor.get_tracker(CONVERSATION)
    return len([e for e in tracker.events if e["event"] == "user"])


async def test_customer_bot_agent_and_the_session_ends(
    trained_bot: TrainedBot, fake: FakeWeCom, tmp_path: Path
) -> None:
    app = kf_app(trained_bot, fake, tmp_path)
    handoff = app.ctx.handoff
    assert "wecom_kf" in handoff.senders
    fake.customer_says(KFID, USER, "你好")
    await deliver(app, fake)
    assert len(fake.texts_to(USER)) == 1 and fake.texts_to(USER)[0]  # the bot answered
    assert fake.transitions == [(USER, 1, None)]
    _, pushed = await app.asgi_client.post(  # Rasa's HTTP API can send through the channel
        f"/conversations/{CONVERSATION}/tracker/events",
        params={"token": API_TOKEN, "output_channel": "wecom_kf", "execute_side_effects": "true"},
        json={"event": "bot", "text": "您的转账已到账", "timestamp": time.time()},
    )
    assert pushed.status == 200 and fake.texts_to(USER)[-1] == "您的转账已到账"

    fake.customer_says(KFID, USER, "转人工")
    await deliver(app, fake)
    assert handoff.store.handoffs.latest(CONVERSATION).status == "waiting"
    assert handoff.store.handoffs.latest(CONVERSATION).channel == "wecom_kf"
    assert fake.sessions[(KFID, USER)].state == 1  # console mode: the session stays ours

    handoff.store.agents.add("wang", "wang-password", handoff.config.group_names)
    _, login = await app.asgi_client.post(
        "/agent/login", json={"username": "wang", "password": "wang-password"}
    )
    headers = {"Authorization": f"Bearer {login.json['token']}"}
    _, accepted = await app.asgi_client.post(
        f"/agent/conversations/{CONVERSATION}/accept", headers=headers
    )
    assert accepted.status == 200
    _, sent = await app.asgi_client.post(
        f"/agent/conversations/{CONVERSATION}/messages",
        headers=headers,
        json={"text": "您好，我是客服小王"},
    )
    assert sent.status == 200
    await handoff.drain()
    assert fake.texts_to(USER)[-1] == "您好，我是客服小王"  # through kf/send_msg

    fake.customer_says(KFID, USER, "我的卡被冻结了")  # goes to the agent, not the bot
    await deliver(app, fake)
    _, history = await app.asgi_client.get(
        f"/agent/conversations/{CONVERSATION}/messages", headers=headers
    )
    assert "我的卡被冻结了" in str(history.json)

    fake.end_session(KFID, USER)  # state 4
    await deliver(app, fake)
    assert handoff.store.handoffs.latest(CONVERSATION).status == "closed"
    fake.customer_says(KFID, USER, "你好")  # the bot again, in a new session
    turns = await user_turns(app)
    await deliver(app, fake)
    assert await user_turns(app) == turns + 1
    assert fake.transitions[-1] == (USER, 1, None)
    await kf_of(app).close()


async def test_a_servicer_group_transfers_the_session(
    trained_bot: TrainedBot, fake: FakeWeCom, tmp_path: Path
) -> None:
    group = handoff_config({}).group_names[0]
    app = kf_app(
        trained_bot,
        fake,
        tmp_path,
        handoff={group: {"mode": "servicer", "servicer_userid": "zhangsan"}},
    )
    handoff = app.ctx.handoff
    fake.customer_says(KFID, USER, "转人工")
    await deliver(app, fake)
    assert fake.sessions[(KFID, USER)].state == 3
    assert fake.transitions[-1] == (USER, 3, "zhangsan")
    queued = handoff.store.handoffs.latest(CONVERSATION)
    assert queued.status == "active" and queued.agent == "wecom:zhangsan"  # in our queue
    turns = await user_turns(app)
    fake.customer_says(KFID, USER, "还在吗")  # the servicer answers in WeCom, not the bot
    await deliver(app, fake)
    assert await user_turns(app) == turns
    fake.end_session(KFID, USER)
    await deliver(app, fake)
    assert handoff.store.handoffs.latest(CONVERSATION).status == "closed"
    await kf_of(app).close()
