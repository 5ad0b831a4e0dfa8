"""``bot.channels.wechat.api``: the access token from ``stable_token`` (cached per process, one
fetch at a time), a refused token (fetched again, forced only when WeChat hands back the
refused one), one token for two workers through a real Redis, Redis down, and texts over
2,048 bytes split into ordered parts."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
from backends import REDIS_URL, redis_problem
from test_channel_wechat import (
    APPID,
    LONG_ANSWER,
    OPENID,
    SECRET,
    FakeWeChat,
    closed_port,
    fake_wechat,
)

from bot.channels.wechat.api import (
    TEXT_LIMIT,
    RedisTokenStore,
    WeChatApi,
    WeChatApiError,
    split_text,
)

__all__ = ["fake_wechat"]


def api_for(
    fake: FakeWeChat,
    clock: Callable[[], float] | None = None,
    shared: RedisTokenStore | None = None,
) -> WeChatApi:
    if clock is None:
        return WeChatApi(fake.base, APPID, SECRET, shared=shared)
    return WeChatApi(fake.base, APPID, SECRET, clock=clock, shared=shared)


def sent_tokens(fake: FakeWeChat) -> list[str]:
    return [token for token, _body in fake.sent]


# -- the per-process token cache -----------------------------------------------------------


async def test_the_token_comes_from_stable_token_and_is_reused(fake_wechat: FakeWeChat) -> None:
    api = api_for(fake_wechat)
    await api.send_text(OPENID, "您好")
    await api.send_text(OPENID, "再见")
    assert fake_wechat.requests == [
        {
            "grant_type": "client_credential",
            "appid": APPID,
            "secret": SECRET,
            "force_refresh": False,
        }
    ]
    assert fake_wechat.legacy_fetches == 0  # never GET /cgi-bin/token
    assert api.token_fetches == 1 and sent_tokens(fake_wechat) == ["TOKEN-1", "TOKEN-1"]
    assert [body["text"]["content"] for _t, body in fake_wechat.sent] == ["您好", "再见"]
    await api.close()


async def test_the_token_is_fetched_again_300_s_before_it_expires(fake_wechat: FakeWeChat) -> None:
    now = [1000.0]
    api = api_for(fake_wechat, lambda: now[0])
    assert await api.access_token() == "TOKEN-1"
    now[0] += 7200 - 300 - 1
    assert await api.access_token() == "TOKEN-1" and api.token_fetches == 1
    now[0] += 2  # inside the margin: fetched again (WeChat still has the same token)
    assert await api.access_token() == "TOKEN-1" and api.token_fetches == 2
    fake_wechat.expire()
    now[0] += 7200
    assert await api.access_token() == "TOKEN-2"
    assert fake_wechat.fetches == [False, False, False] and api.forced_fetches == 0
    await api.close()


async def test_concurrent_callers_fetch_once(fake_wechat: FakeWeChat) -> None:
    fake_wechat.delay = 0.05
    api = api_for(fake_wechat)
    tokens = await asyncio.gather(*(api.access_token() for _ in range(5)))
    assert tokens == ["TOKEN-1"] * 5 and fake_wechat.fetches == [False]
    await api.close()


async def test_a_refused_token_is_replaced_without_forcing(fake_wechat: FakeWeChat) -> None:
    api = api_for(fake_wechat)
    await api.send_text(OPENID, "一")
    with fake_wechat.lock:
        fake_wechat.issue()  # someone else forced a refresh: TOKEN-1 no longer works
    await api.send_text(OPENID, "二")
    assert fake_wechat.fetches == [False, False] and api.forced_fetches == 0
    assert sent_tokens(fake_wechat) == ["TOKEN-1", "TOKEN-2"]
    await api.close()


async def test_an_expired_token_42001_is_replaced(fake_wechat: FakeWeChat) -> None:
    api = api_for(fake_wechat)
    await api.send_text(OPENID, "一")
    fake_wechat.expire()  # WeChat says 42001 although the cache still trusts it
    await api.send_text(OPENID, "二")
    assert fake_wechat.fetches == [False, False]
    assert sent_tokens(fake_wechat) == ["TOKEN-1", "TOKEN-2"]
    await api.close()


async def test_the_refused_token_handed_back_forces_a_refresh(fake_wechat: FakeWeChat) -> None:
    api = api_for(fake_wechat)
    await api.send_text(OPENID, "一")
    fake_wechat.refuse.add("TOKEN-1")  # refused, but stable_token still returns it
    await api.send_text(OPENID, "二")
    assert fake_wechat.fetches == [False, False, True] and api.forced_fetches == 1
    assert sent_tokens(fake_wechat) == ["TOKEN-1", "TOKEN-2"]
    await api.send_text(OPENID, "三")  # the forced token is cached
    assert api.token_fetches == 3 and sent_tokens(fake_wechat)[-1] == "TOKEN-2"
    await api.close()


async def test_a_token_refused_twice_is_an_error(fake_wechat: FakeWeChat) -> None:
    api = api_for(fake_wechat)
    fake_wechat.refuse_all = True
    with pytest.raises(WeChatApiError) as failure:
        await api.send_text(OPENID, "一")
    assert failure.value.errcode == 40001
    assert fake_wechat.fetches == [False, False, True] and not fake_wechat.sent  # no loop
    await api.close()


async def test_other_errors_are_not_retried(fake_wechat: FakeWeChat) -> None:
    api = WeChatApi(fake_wechat.base, APPID, "wrong-secret")
    with pytest.raises(WeChatApiError) as failure:
        await api.send_text(OPENID, "一")
    assert failure.value.errcode == 40013 and api.token_fetches == 1
    await api.close()


# -- one token for several workers (Redis) -------------------------------------------------


@pytest.fixture
async def token_prefix() -> AsyncIterator[str]:
    """A key prefix of this test's own in the real Redis; its keys are deleted after."""
    import redis.asyncio as redis

    problem = redis_problem()
    if problem:
        pytest.skip(problem)
    prefix = f"test:bankbot:wechat:token:{uuid.uuid4().hex}:"
    yield prefix
    client = redis.from_url(REDIS_URL)
    keys = [key async for key in client.scan_iter(match=prefix + "*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


def worker(fake: FakeWeChat, prefix: str) -> WeChatApi:
    """One worker process's API: its own Redis connection, the shared key."""
    shared = RedisTokenStore.from_url(REDIS_URL, APPID, prefix=prefix, poll_seconds=0.01)
    return api_for(fake, shared=shared)


async def test_two_workers_fetch_the_token_once(fake_wechat: FakeWeChat, token_prefix: str) -> None:
    fake_wechat.delay = 0.2  # the first fetch is still running when the other worker asks
    first, second = worker(fake_wechat, token_prefix), worker(fake_wechat, token_prefix)
    await asyncio.gather(first.send_text(OPENID, "一"), second.send_text(OPENID, "二"))
    assert fake_wechat.fetches == [False]
    assert first.token_fetches + second.token_fetches == 1
    assert sent_tokens(fake_wechat) == ["TOKEN-1", "TOKEN-1"]
    assert first.shared is not None
    stored, left = await first.shared.get()
    assert stored == "TOKEN-1" and 0 < left <= 7200 - 300
    for api in (first, second):
        await api.close()

    # without Redis the same two workers would each fetch
    alone = [api_for(fake_wechat), api_for(fake_wechat)]
    await asyncio.gather(*(api.access_token() for api in alone))
    assert sum(api.token_fetches for api in alone) == 2
    for api in alone:
        await api.close()


async def test_a_refused_token_is_replaced_in_redis_for_every_worker(
    fake_wechat: FakeWeChat, token_prefix: str
) -> None:
    first, second = worker(fake_wechat, token_prefix), worker(fake_wechat, token_prefix)
    await first.send_text(OPENID, "一")
    await second.send_text(OPENID, "二")  # from Redis
    assert second.token_fetches == 0
    fake_wechat.refuse.add("TOKEN-1")  # refused, and handed back by stable_token
    await first.send_text(OPENID, "三")  # forced: TOKEN-1 stops working everywhere
    assert first.shared is not None
    assert (await first.shared.get())[0] == "TOKEN-2"
    await second.send_text(OPENID, "四")  # refused TOKEN-1 → TOKEN-2 from Redis, no fetch
    assert fake_wechat.fetches == [False, False, True] and second.token_fetches == 0
    assert sent_tokens(fake_wechat) == ["TOKEN-1", "TOKEN-1", "TOKEN-2", "TOKEN-2"]
    for api in (first, second):
        await api.close()


async def test_a_stale_worker_does_not_overwrite_a_fresher_token(token_prefix: str) -> None:
    store = RedisTokenStore.from_url(REDIS_URL, APPID, prefix=token_prefix)
    assert await store.replace(None, "TOKEN-1", 60)
    assert not await store.replace(None, "TOKEN-0", 60)  # it expected no token at all
    assert await store.replace("TOKEN-1", "TOKEN-2", 60)
    assert not await store.replace("TOKEN-1", "TOKEN-3", 60)  # saw TOKEN-1, now stale
    stored, left = await store.get()
    assert stored == "TOKEN-2" and 0 < left <= 60
    lock = await store.acquire()
    assert lock is not None and await store.acquire() is None
    await store.release(lock)
    assert await store.acquire() is not None
    await store.close()


async def test_redis_down_the_worker_fetches_and_sends(
    fake_wechat: FakeWeChat, caplog: pytest.LogCaptureFixture
) -> None:
    shared = RedisTokenStore.from_url(f"redis://127.0.0.1:{closed_port()}/0", APPID)
    api = api_for(fake_wechat, shared=shared)
    await api.send_text(OPENID, "一")
    await api.send_text(OPENID, "二")  # the process cache still works
    assert sent_tokens(fake_wechat) == ["TOKEN-1", "TOKEN-1"] and api.token_fetches == 1
    assert "Redis unavailable for the shared WeChat access token" in caplog.text
    fake_wechat.refuse.add("TOKEN-1")  # and a refused token is still replaced
    await api.send_text(OPENID, "三")
    assert sent_tokens(fake_wechat)[-1] == "TOKEN-2" and api.forced_fetches == 1
    await api.close()


# -- long texts ----------------------------------------------------------------------------


def test_a_5000_byte_answer_splits_at_sentence_ends_in_order() -> None:
    assert len(LONG_ANSWER.encode()) > 5000
    parts = split_text(LONG_ANSWER)
    assert len(parts) == 3 and "".join(parts) == LONG_ANSWER
    assert all(len(part.encode()) <= TEXT_LIMIT for part in parts)
    assert all(part.rstrip("\n")[-1] in "。！？" for part in parts)
    assert not any(part.startswith("\n") for part in parts)


def test_text_without_sentence_ends_is_cut_between_characters() -> None:
    text = "账户余额😀" * 700  # 3- and 4-byte characters, 11,200 bytes, no break
    parts = split_text(text)
    assert "".join(parts) == text and len(parts) == 6
    assert all(2040 < len(part.encode()) <= TEXT_LIMIT for part in parts[:-1])
    assert split_text("查" * 682) == ["查" * 682]  # 2,046 bytes: one message
    assert split_text("查" * 683) == ["查" * 682, "查"]
    assert split_text("") == [""]


def test_the_last_break_wins_and_line_breaks_stay_with_the_part() -> None:
    assert split_text("一二。三四？五六", limit=18) == ["一二。三四？", "五六"]
    assert split_text("一二。三四？五六", limit=15) == ["一二。", "三四？五六"]
    assert split_text("一二\n\n\n三四五", limit=12) == ["一二\n\n\n", "三四五"]
    assert split_text("abcdef", limit=4) == ["abcd", "ef"]


async def test_send_text_sends_the_parts_in_order(fake_wechat: FakeWeChat) -> None:
    api = api_for(fake_wechat)
    await api.send_text(OPENID, LONG_ANSWER)
    contents = [body["text"]["content"] for _t, body in fake_wechat.sent]
    assert contents == split_text(LONG_ANSWER) and "".join(contents) == LONG_ANSWER
    assert api.token_fetches == 1
    await api.close()
