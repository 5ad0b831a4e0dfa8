"""Redis connections (bot.redis): the URL from $BOT_REDIS_URL, client options, one shared
client per URL, options and event loop."""

from __future__ import annotations

import asyncio

import pytest
from backends import REDIS_URL, redis_problem

from bot.redis import (
    FAST_TIMEOUT,
    REDIS_URL_ENV,
    close_shared_clients,
    redis_client,
    redis_url,
    shared_client,
)

URL = "redis://127.0.0.1:6390/2"  # never connected to by these tests unless stated


def test_url_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REDIS_URL_ENV, raising=False)
    assert redis_url() is None
    monkeypatch.setenv(REDIS_URL_ENV, "")
    assert redis_url() is None
    monkeypatch.setenv(REDIS_URL_ENV, URL)
    assert redis_url() == URL
    assert redis_url({REDIS_URL_ENV: "redis://other:6379/0"}) == "redis://other:6379/0"
    assert redis_url({}) is None


def test_client_options() -> None:
    fast = redis_client(URL).connection_pool.connection_kwargs
    assert fast["socket_timeout"] == fast["socket_connect_timeout"] == FAST_TIMEOUT
    assert fast["decode_responses"] is True
    assert fast["retry"].get_retries() == 1
    assert (fast["host"], fast["port"], fast["db"]) == ("127.0.0.1", 6390, 2)

    patient = redis_client(URL, timeout=None, retries=None, decode_responses=False)
    kwargs = patient.connection_pool.connection_kwargs
    assert kwargs.get("socket_timeout") is None and "socket_connect_timeout" not in kwargs
    assert kwargs["decode_responses"] is False
    assert "retry" not in kwargs


def test_without_a_running_loop_every_client_is_new() -> None:
    assert shared_client(URL) is not shared_client(URL)


async def test_one_shared_client_per_url_and_options_on_a_loop() -> None:
    first = shared_client(URL)
    assert shared_client(URL) is first
    assert shared_client(URL, timeout=2.0) is not first
    assert shared_client("redis://127.0.0.1:6390/3") is not first
    assert await close_shared_clients() == 3
    assert shared_client(URL) is not first
    assert await close_shared_clients() == 1
    assert await close_shared_clients() == 0


def test_each_loop_has_its_own_shared_client() -> None:
    async def get() -> object:
        client = shared_client(URL)
        assert shared_client(URL) is client
        await close_shared_clients()
        return client

    assert asyncio.run(get()) is not asyncio.run(get())


async def test_a_shared_client_talks_to_redis() -> None:
    problem = redis_problem()
    if problem:
        pytest.skip(problem)
    client = shared_client(REDIS_URL)
    key = "bankbot:test:redis-factory"
    try:
        assert await client.set(key, "1", ex=10)
        assert await shared_client(REDIS_URL).get(key) == "1"  # decoded, the same client
    finally:
        await client.delete(key)
        await close_shared_clients()
