"""Lock stores: FIFO order, mutual exclusion per conversation, timeouts, cancellation, cleanup
and (Redis) ticket expiry after a crashed process.

Redis tests use ``$BOT_TEST_REDIS_URL`` (default redis://127.0.0.1:6379/0) with a random key
prefix per test, delete their keys afterwards, and skip with the reason when Redis is absent.
No test asserts on elapsed time.
"""

from __future__ import annotations

import asyncio
import functools
import sys
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from backends import REDIS_URL, redis_problem

from bot.core.lock_store import (
    InMemoryLockStore,
    LockStore,
    LockTimeoutError,
    RedisLockStore,
    create_lock_store,
)
from bot.errors import BotError, ConfigError
from bot.redis import REDIS_URL_ENV

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def key_prefix() -> str:
    return f"bankbot-test-{uuid.uuid4().hex[:10]}:"


async def _clean_up(stores: list[RedisLockStore], key_prefix: str) -> None:
    """Delete the test's keys (asserting none was left behind) and close the stores."""
    client = stores[0].client
    leftover = [key async for key in client.scan_iter(match=f"{key_prefix}*")]
    if leftover:
        await client.delete(*leftover)
    for store in stores:
        await store.close()
    assert not leftover, f"keys left behind: {leftover}"


@pytest.fixture
async def redis_factory(key_prefix: str) -> AsyncIterator[Callable[..., RedisLockStore]]:
    """Makes RedisLockStores (one per simulated process) sharing a fresh key prefix."""
    reason = redis_problem()
    if reason:
        pytest.skip(reason)
    stores: list[RedisLockStore] = []

    def make(lock_lifetime: float = 30.0, poll_interval: float = 0.02) -> RedisLockStore:
        store = RedisLockStore(
            REDIS_URL,
            key_prefix=key_prefix,
            lock_lifetime=lock_lifetime,
            poll_interval=poll_interval,
        )
        stores.append(store)
        return store

    make()
    yield make
    await _clean_up(stores, key_prefix)


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest, key_prefix: str) -> AsyncIterator[LockStore]:
    if request.param == "memory":
        yield InMemoryLockStore()
        return
    reason = redis_problem()
    if reason:
        pytest.skip(reason)
    redis_store = RedisLockStore(REDIS_URL, key_prefix=key_prefix)
    yield redis_store
    await _clean_up([redis_store], key_prefix)


async def _until(condition: Callable[[], Awaitable[bool]]) -> None:
    """Wait (no deadline: pytest's own timeout or the lock timeouts bound the test)."""
    while not await condition():
        await asyncio.sleep(0.002)


async def _queue_in_order(stores: list[LockStore], conversation: str, waiters: int) -> list[int]:
    """Hold the lock, queue ``waiters`` tasks one after another (each one queued before the
    next starts), release, and return the order in which they got the lock."""
    order: list[int] = []
    release = asyncio.Event()

    async def hold() -> None:
        async with stores[0].lock(conversation):
            await release.wait()

    async def wait_turn(i: int) -> None:
        async with stores[i % len(stores)].lock(conversation, wait_timeout=30):
            order.append(i)
            await asyncio.sleep(0)

    tasks = [asyncio.create_task(hold())]
    await _until(lambda: _length_is(stores[0], conversation, 1))
    for i in range(waiters):
        tasks.append(asyncio.create_task(wait_turn(i)))
        await _until(functools.partial(_length_is, stores[0], conversation, i + 2))
    release.set()
    await asyncio.gather(*tasks)
    return order


async def _length_is(store: LockStore, conversation: str, n: int) -> bool:
    return await store.queue_length(conversation) >= n


# --- both stores ----------------------------------------------------------------------------


async def test_waiters_get_the_lock_in_arrival_order(store: LockStore) -> None:
    assert await _queue_in_order([store], "fifo", 15) == list(range(15))
    assert await store.queue_length("fifo") == 0


async def test_one_holder_per_conversation_and_conversations_independent(
    store: LockStore,
) -> None:
    conversations, messages, at_a_time = 200, 10, 50
    inside: dict[str, int] = defaultdict(int)
    most_inside: dict[str, int] = defaultdict(int)
    handled: dict[str, list[int]] = defaultdict(list)
    gate = asyncio.Semaphore(at_a_time)

    async def message(c: int, m: int) -> None:
        cid = f"conv-{c}"
        async with gate, store.lock(cid, wait_timeout=60):
            inside[cid] += 1
            most_inside[cid] = max(most_inside[cid], inside[cid])
            seen = list(handled[cid])
            await asyncio.sleep(0)  # a read-modify-write that a second holder would break
            handled[cid] = [*seen, m]
            inside[cid] -= 1

    await asyncio.gather(*(message(c, m) for c in range(conversations) for m in range(messages)))
    assert set(most_inside.values()) == {1}
    for c in range(conversations):
        assert sorted(handled[f"conv-{c}"]) == list(range(messages))


async def test_in_memory_lock_keeps_message_order_within_a_conversation() -> None:
    store = InMemoryLockStore()
    handled: dict[int, list[int]] = defaultdict(list)

    async def message(c: int, m: int) -> None:
        async with store.lock(f"c{c}"):
            await asyncio.sleep(0)
            handled[c].append(m)

    # Tasks start in creation order, so each conversation's messages queue in order.
    await asyncio.gather(*(message(c, m) for m in range(10) for c in range(100)))
    assert all(handled[c] == list(range(10)) for c in range(100))
    assert len(store) == 0


async def test_other_conversations_do_not_wait(store: LockStore) -> None:
    async with store.lock("busy"):
        async with store.lock("free", wait_timeout=5):
            assert await store.queue_length("free") == 1
        assert await store.queue_length("busy") == 1


async def test_timeout_raises_and_withdraws_the_waiter(store: LockStore) -> None:
    async with store.lock("t"):
        with pytest.raises(LockTimeoutError) as info:
            async with store.lock("t", wait_timeout=0.05):
                pytest.fail("got a lock that is held")
        assert info.value.conversation_id == "t"
        assert isinstance(info.value, BotError)
        assert "busy" in str(info.value)
        assert await store.queue_length("t") == 1
    assert await store.queue_length("t") == 0
    async with store.lock("t", wait_timeout=5):  # still usable
        pass


async def test_a_cancelled_waiter_does_not_block_the_next(store: LockStore) -> None:
    release = asyncio.Event()
    got: list[str] = []

    async def hold() -> None:
        async with store.lock("x"):
            await release.wait()

    async def wait(name: str) -> None:
        async with store.lock("x", wait_timeout=30):
            got.append(name)

    holder = asyncio.create_task(hold())
    await _until(lambda: _length_is(store, "x", 1))
    first = asyncio.create_task(wait("first"))
    await _until(lambda: _length_is(store, "x", 2))
    second = asyncio.create_task(wait("second"))
    await _until(lambda: _length_is(store, "x", 3))
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    release.set()
    await asyncio.gather(holder, second)
    assert got == ["second"]
    assert await store.queue_length("x") == 0


async def test_the_lock_is_released_when_the_body_raises(store: LockStore) -> None:
    with pytest.raises(ZeroDivisionError):
        async with store.lock("e"):
            1 / 0  # noqa: B018
    async with store.lock("e", wait_timeout=5):
        assert await store.queue_length("e") == 1


# --- in memory ------------------------------------------------------------------------------


async def test_in_memory_store_forgets_idle_conversations() -> None:
    store = InMemoryLockStore()
    for i in range(1000):
        async with store.lock(f"c{i}"):
            assert len(store) == 1
    assert len(store) == 0
    async with store.lock("held"):
        for _ in range(3):
            with pytest.raises(LockTimeoutError):
                async with store.lock("held", wait_timeout=0.001):
                    pass
    assert len(store) == 0


async def test_in_memory_handover_to_a_waiter_that_gives_up_passes_it_on() -> None:
    """The lock is handed to a waiter in the same loop step as that waiter is cancelled (as a
    timeout does): the waiter must pass the lock to the next in line, not drop it."""
    store = InMemoryLockStore()
    got: list[str] = []

    async def wait(name: str) -> None:
        async with store.lock("h", wait_timeout=5):
            got.append(name)

    held = store.lock("h")
    await held.__aenter__()
    late = asyncio.create_task(wait("late"))
    await _until(lambda: _length_is(store, "h", 2))
    patient = asyncio.create_task(wait("patient"))
    await _until(lambda: _length_is(store, "h", 3))
    await held.__aexit__(None, None, None)  # hands the lock to "late" without yielding...
    late.cancel()  # ...which is cancelled before it could run
    with pytest.raises(asyncio.CancelledError):
        await late
    await patient
    assert got == ["patient"]
    assert len(store) == 0


# --- Redis ----------------------------------------------------------------------------------


async def test_redis_fifo_across_two_processes(
    redis_factory: Callable[..., RedisLockStore],
) -> None:
    a, b = redis_factory(), redis_factory()
    assert await _queue_in_order([a, b], "two", 12) == list(range(12))


async def test_redis_ticket_of_a_crashed_process_expires(
    redis_factory: Callable[..., RedisLockStore], key_prefix: str
) -> None:
    script = (
        "import asyncio, os, sys\n"
        "from bot.core.lock_store import RedisLockStore\n"
        "async def main():\n"
        "    store = RedisLockStore(sys.argv[1], key_prefix=sys.argv[2], lock_lifetime=2.0)\n"
        "    await store.lock('crash').__aenter__()\n"
        "    print('locked', flush=True)\n"
        "    os._exit(1)  # dies holding the lock: no release, no renewal\n"
        "asyncio.run(main())\n"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script,
        REDIS_URL,
        key_prefix,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    assert (await proc.stdout.readline()).strip() == b"locked"
    assert await proc.wait() == 1

    store = redis_factory()
    assert await store.queue_length("crash") == 1
    with pytest.raises(LockTimeoutError):  # the dead ticket still blocks for a while...
        async with store.lock("crash", wait_timeout=0.1):
            pass
    async with store.lock("crash", wait_timeout=30):  # ...until its lifetime runs out
        assert await store.queue_length("crash") == 1


async def test_redis_holder_renews_its_ticket_beyond_the_lifetime(
    redis_factory: Callable[..., RedisLockStore],
) -> None:
    holder_store = redis_factory(lock_lifetime=0.3, poll_interval=0.01)
    waiter_store = redis_factory(lock_lifetime=0.3, poll_interval=0.01)
    waiter_inside = asyncio.Event()
    holder_saw_waiter: list[bool] = []

    async def hold() -> None:
        async with holder_store.lock("long"):
            await asyncio.sleep(1.2)  # four lifetimes of work
            holder_saw_waiter.append(waiter_inside.is_set())

    async def wait() -> None:
        async with waiter_store.lock("long", wait_timeout=30):
            waiter_inside.set()

    holder = asyncio.create_task(hold())
    await _until(lambda: _length_is(holder_store, "long", 1))
    await asyncio.gather(holder, wait())
    assert holder_saw_waiter == [False]


async def test_redis_keys_expire_and_are_removed_when_idle(
    redis_factory: Callable[..., RedisLockStore], key_prefix: str
) -> None:
    store = redis_factory()
    async with store.lock("k"):
        ttls = [await store.client.pttl(key) for key in store.keys("k")]
        assert all(0 < ttl <= 2 * store.lock_lifetime * 1000 for ttl in ttls)
    assert [key async for key in store.client.scan_iter(match=f"{key_prefix}*")] == []


# --- configuration --------------------------------------------------------------------------


async def test_factory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REDIS_URL_ENV, raising=False)
    assert isinstance(create_lock_store(None), InMemoryLockStore)
    assert isinstance(create_lock_store({"type": "in_memory"}), InMemoryLockStore)

    redis_store = create_lock_store({"type": "redis", "key_prefix": "p:", "lock_lifetime": 10})
    assert isinstance(redis_store, RedisLockStore)
    assert (redis_store.url, redis_store.key_prefix, redis_store.lock_lifetime) == (
        "redis://127.0.0.1:6379/0",
        "p:",
        10.0,
    )
    await redis_store.close()

    rasa_style = create_lock_store(
        {"type": "redis", "url": "cache", "port": 6380, "db": 2, "password": "p@ss"}
    )
    assert isinstance(rasa_style, RedisLockStore)
    assert rasa_style.url == "redis://:p%40ss@cache:6380/2"
    await rasa_style.close()

    monkeypatch.setenv(REDIS_URL_ENV, "redis://env-host:6379/3")
    from_env = create_lock_store(None)
    assert isinstance(from_env, RedisLockStore) and from_env.url == "redis://env-host:6379/3"
    await from_env.close()
    overridden = create_lock_store({"type": "redis", "url": "redis://cfg:6379/0"})
    assert isinstance(overridden, RedisLockStore) and overridden.url == "redis://env-host:6379/3"
    await overridden.close()
    assert isinstance(create_lock_store({"type": "memory"}), InMemoryLockStore)

    with pytest.raises(ConfigError, match="unknown"):
        create_lock_store({"type": "zookeeper"})
    with pytest.raises(ConfigError, match="keyprefix"):
        create_lock_store({"type": "redis", "keyprefix": "x"})
    with pytest.raises(ConfigError, match="poll_interval"):
        create_lock_store({"type": "redis", "lock_lifetime": 0.1, "poll_interval": 0.1})
