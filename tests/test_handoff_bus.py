"""Live updates (bot/handoff/bus.py): LocalBus within one process, RedisBus across processes
(two bus instances with their own Redis connections, as two server workers have)."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from backends import REDIS_URL, redis_problem

from bot.handoff import bus as bus_module
from bot.handoff.bus import Event, LocalBus, RedisBus


def drain(queue: asyncio.Queue[Event]) -> list[Event]:
    out = []
    while not queue.empty():
        out.append(queue.get_nowait())
    return out


# --- LocalBus -------------------------------------------------------------------------------


async def test_publish_reaches_the_subscribers_of_the_topic_only() -> None:
    bus = LocalBus()
    async with (
        bus.subscribe(["conversation:a", "queue"]) as mine,
        bus.subscribe(["conversation:b"]) as other,
    ):
        await bus.publish("conversation:a", "message", {"text": "你好"})
        await bus.publish("queue", "queue", {"group": "账户"})
        await bus.publish("conversation:c", "message", {"text": "没人听"})
        assert drain(mine) == [("message", {"text": "你好"}), ("queue", {"group": "账户"})]
        assert drain(other) == []
        await bus.publish("conversation:b", "queue", {"position": 2})
        assert drain(other) == [("queue", {"position": 2})]
        assert drain(mine) == []


async def test_every_subscriber_of_a_topic_gets_its_own_copy() -> None:
    bus = LocalBus()
    async with bus.subscribe(["queue"]) as one, bus.subscribe(["queue"]) as two:
        await bus.publish("queue", "queue", {})
        assert drain(one) == drain(two) == [("queue", {})]


async def test_leaving_unsubscribes() -> None:
    bus = LocalBus()
    async with bus.subscribe(["queue", "agent:alice"]) as first:
        async with bus.subscribe(["queue"]) as second:
            assert len(bus._subscribers["queue"]) == 2
        assert bus._subscribers["queue"] == {first}
        await bus.publish("queue", "queue", {"n": 1})
        assert drain(second) == []  # gone: gets nothing more
        assert drain(first) == [("queue", {"n": 1})]
    assert bus._subscribers == {}  # no empty topics left behind


async def test_leaving_after_an_error_unsubscribes_too() -> None:
    bus = LocalBus()
    with contextlib.suppress(RuntimeError):
        async with bus.subscribe(["queue"]):
            raise RuntimeError("the client went away")
    assert bus._subscribers == {}


async def test_a_full_queue_drops_the_oldest_instead_of_blocking(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bus_module, "QUEUE_SIZE", 3)
    bus = LocalBus()
    async with bus.subscribe(["queue"]) as stalled:
        for n in range(5):  # never read: publish must not wait for the reader
            await asyncio.wait_for(bus.publish("queue", "queue", {"n": n}), 5)
        assert stalled.maxsize == 3
        assert drain(stalled) == [("queue", {"n": 2}), ("queue", {"n": 3}), ("queue", {"n": 4})]


async def test_close_forgets_every_subscriber() -> None:
    bus = LocalBus()
    async with bus.subscribe(["queue"]) as queue:
        await bus.close()
        await bus.publish("queue", "queue", {})
        assert drain(queue) == []


# --- RedisBus -------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def started(url: str) -> AsyncIterator[RedisBus]:
    bus = RedisBus(url)
    await bus.start()
    try:
        yield bus
    finally:
        await bus.close()


async def receive(
    publisher: RedisBus, topic: str, kind: str, data: dict[str, object], queue: asyncio.Queue[Event]
) -> Event:
    """Publish until the subscriber's listener delivers it (its SUBSCRIBE may still be on the
    way to Redis when the first publish arrives); fail after 10 s."""

    async def wait() -> Event:
        while True:
            await publisher.publish(topic, kind, data)
            try:
                return await asyncio.wait_for(queue.get(), 0.2)
            except TimeoutError:
                continue

    return await asyncio.wait_for(wait(), 10)


async def test_redis_bus_delivers_across_instances() -> None:
    problem = redis_problem()
    if problem:
        pytest.skip(problem)
    topic = f"conversation:{uuid.uuid4().hex}"  # unique: other test runs share the server
    async with (
        started(REDIS_URL) as worker_a,
        started(REDIS_URL) as worker_b,
        worker_b.subscribe([topic]) as on_b,
        worker_a.subscribe([topic]) as on_a,
    ):
        data = {"recipient_id": "c1", "text": "人工客服已接入，您好"}
        assert await receive(worker_a, topic, "message", data, on_b) == ("message", data)
        # the publisher's own subscribers get it through Redis as well
        assert await asyncio.wait_for(on_a.get(), 10) == ("message", data)
        # and the other direction
        back = {"status": "active", "position": 0}
        drain(on_a)
        assert await receive(worker_b, topic, "queue", back, on_a) == ("queue", back)


async def test_redis_bus_ignores_topics_nobody_here_listens_to() -> None:
    problem = redis_problem()
    if problem:
        pytest.skip(problem)
    mine, other = (f"agent:{uuid.uuid4().hex}" for _ in range(2))
    async with (
        started(REDIS_URL) as worker_a,
        started(REDIS_URL) as worker_b,
        worker_b.subscribe([mine]) as on_b,
    ):
        await receive(worker_a, mine, "queue", {"ready": True}, on_b)
        await worker_a.publish(other, "assigned", {"handoff": "x"})
        marker = {"after": True}
        await worker_a.publish(mine, "queue", marker)
        # Redis keeps one publisher's order: the marker comes after the other topic's event
        while (got := await asyncio.wait_for(on_b.get(), 10)) != ("queue", marker):
            assert got == ("queue", {"ready": True})  # only retries of the first event


async def test_redis_bus_delivers_locally_when_redis_is_down() -> None:
    bus = RedisBus("redis://127.0.0.1:1/0")  # nothing listens on port 1
    try:
        async with bus.subscribe(["queue"]) as queue:
            await asyncio.wait_for(bus.publish("queue", "queue", {"group": "账户"}), 10)
            assert drain(queue) == [("queue", {"group": "账户"})]
    finally:
        await bus.close()


@pytest.fixture
def private_redis(tmp_path: object) -> Iterator[str]:
    """A Redis server of this test's own, so that cutting its connections disturbs nobody."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [binary, "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                break
            if time.monotonic() > deadline:
                pytest.skip("redis-server did not start")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(10)


async def test_redis_bus_listens_again_after_the_connection_drops(
    private_redis: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis restarted, failed over or a proxy cut an idle connection: the listener used to
    die with it, and the process delivered no live update again until restarted (not even its
    own: publishing still worked, so nothing fell back to local delivery)."""
    import redis.asyncio as redis

    monkeypatch.setattr(bus_module, "RECONNECT_SECONDS", 0.05)
    async with started(private_redis) as worker, worker.subscribe(["queue"]) as queue:
        await receive(worker, "queue", "queue", {"n": 1}, queue)
        admin = redis.from_url(private_redis)
        try:
            await admin.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
        finally:
            await admin.aclose()
        drain(queue)
        assert await receive(worker, "queue", "queue", {"n": 2}, queue) == ("queue", {"n": 2})
