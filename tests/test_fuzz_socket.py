"""Fuzzing a real ``bot run`` over its socket: raw bytes (garbage, bare LF, huge headers,
partial requests that stall, bad framing) must be answered with a 4xx or closed promptly,
never a 5xx, never a connection held open; hostile HTTP requests of every endpoint
(tests/fuzz_support.py) get no 5xx; and afterwards the server still answers and the known
conversation has all its events."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fuzz_support import (
    ENDPOINTS,
    KNOWN,
    KNOWN_TEXTS,
    OPERATOR_TOKEN,
    Outcome,
    Req,
    Tally,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_server_project import TrainedBot, trained_bot

__all__ = ["trained_bot"]
PROMPT_SECONDS = 20.0  # answered or closed within this: the 8 s request timeout (app.py),
# Sanic checks it every 4 s, and slack for a loaded machine
HTTP_EXAMPLES = 12  # per endpoint, over the socket


@dataclass
class Server:
    base: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path
    before: list[dict[str, Any]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def known_events(base: str) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{base}/conversations/{KNOWN}/tracker?include_events=ALL",
        headers={"Authorization": f"Bearer {OPERATOR_TOKEN}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["events"]
    return events


@pytest.fixture(scope="module")
def server(trained_bot: TrainedBot, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("fuzz_socket")
    port = free_port()
    env = {
        **os.environ,
        "BOT_DB_URL": f"sqlite:///{tmp}/t.db",
        "BOT_OPERATOR_TOKEN": OPERATOR_TOKEN,
    }
    for name in ("PROMETHEUS_MULTIPROC_DIR", "BOT_REDIS_URL", "BOT_ENV"):
        env.pop(name, None)
    log = tmp / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bot",
                "run",
                "--port",
                str(port),
                "--project",
                str(trained_bot.root),
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=trained_bot.root,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.3)
        for text in KNOWN_TEXTS:
            reply = httpx.post(
                f"{base}/webhooks/rest/webhook", json={"sender": KNOWN, "message": text}, timeout=30
            )
            assert reply.status_code == 200 and reply.json(), reply.text
        yield Server(base, port, process, log, known_events(base))
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


def exchange(
    port: int, data: bytes, *, pause: float = 0.0, rest: bytes = b""
) -> tuple[bytes, float]:
    """Send ``data`` (then ``rest`` after ``pause`` seconds), read until the server closes
    or PROMPT_SECONDS pass; (what came back, seconds until closed or the first answer)."""
    start = time.monotonic()
    received = b""
    with socket.create_connection(("127.0.0.1", port), timeout=PROMPT_SECONDS) as sock:
        try:
            sock.sendall(data)
            if rest:
                time.sleep(pause)
                sock.sendall(rest)
        except OSError:  # the server already closed: that is an answer too
            return received, time.monotonic() - start
        sock.settimeout(max(0.1, PROMPT_SECONDS - (time.monotonic() - start)))
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                received += chunk
                if b"\r\n\r\n" in received:
                    break  # an answer's head: enough
        except TimeoutError:
            return received, float("inf")  # held open without an answer
        except OSError:
            pass
    return received, time.monotonic() - start


def status_of(answer: bytes) -> int | None:
    """The status of the first answer, None when the server closed without one."""
    if not answer:
        return None
    head = answer.split(b"\r\n", 1)[0].split()
    assert len(head) >= 2 and head[0].startswith(b"HTTP/1."), answer[:200]
    return int(head[1])


def answered_or_closed(port: int, data: bytes, **kwargs: Any) -> int | None:
    answer, seconds = exchange(port, data, **kwargs)
    assert seconds < PROMPT_SECONDS, f"held open: {data[:80]!r}"
    status = status_of(answer)
    assert status is None or status < 500, answer[:300]
    return status


RAW_TLS = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(range(256))
SURROGATE = "finding[error-surrogates]: a non-ASCII method (G\\xffT) is a 500 in errors.py"
RAW = {
    "text garbage": b"hello there, this is not HTTP\r\n\r\n",
    "http/0.9": b"GET /health\r\n\r\n",
    "bad version": b"GET /health HTTP/9.9\r\nHost: x\r\n\r\n",
    "nul in path": b"GET /he\x00alth HTTP/1.1\r\nHost: x\r\n\r\n",
    "utf-8 path": "GET /会话 HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
    "long request line": b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    "huge header": b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 200_000 + b"\r\n\r\n",
    "many headers": b"GET /health HTTP/1.1\r\nHost: x\r\n"
    + b"".join(b"X-%d: v\r\n" % i for i in range(5000))
    + b"\r\n",
    "bad content-length": b"POST /model/parse HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n{}",
    "two content-lengths": b"POST /model/parse HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
    b"Content-Length: 40\r\n\r\n{}",
    "huge content-length": b"POST /model/parse HTTP/1.1\r\nHost: x\r\n"
    b"Content-Length: 99999999999999999999\r\n\r\n{}",
    "bad chunked": b"POST /model/parse HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"zz\r\n{}\r\n0\r\n\r\n",
    "header without colon": b"GET /health HTTP/1.1\r\nHost: x\r\nNoColonHere\r\n\r\n",
    "obs-fold": b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\r\n  folded\r\n\r\n",
    "non-utf8 header": b"GET /health HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xff\xfe\r\n\r\n",
    "pipelined": b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n" * 50,
}


@pytest.mark.parametrize("name", list(RAW))
def test_raw_bytes_are_answered_or_closed(server: Server, name: str) -> None:
    answered_or_closed(server.port, RAW[name])


def test_a_non_ascii_method_is_a_4xx(server: Server) -> None:
    """Sanic keeps the bytes as lone surrogates; the error JSON (ensure_ascii=False) cannot
    encode them: 'An error occurred while handling an error'."""
    status = answered_or_closed(server.port, b"G\xffT /health HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status is not None and 400 <= status < 500


# Requests whose head never ends: each waits for the request timeout (bot/server/app.py,
# 8 s), so they run at the same time, one connection each.
STALLED = {
    "tls bytes": (RAW_TLS, b""),
    "nul bytes": (b"\x00" * 4096, b""),
    "bare LF": (b"GET /health HTTP/1.1\nHost: x\n\n", b""),
    "no line end": (b"garbage without any line end", b""),
    "slowloris head": (b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ", b"a"),
    "stalled body": (
        b"POST /model/parse HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100\r\n\r\n{",
        b'"te',
    ),
}


def test_stalled_and_endless_requests_are_closed_promptly(server: Server) -> None:
    """Slowloris, garbage, bare LF: answered (400/408) or closed, never held open."""

    def one(name: str) -> tuple[str, int | None]:
        data, rest = STALLED[name]
        return name, answered_or_closed(server.port, data, pause=0.2 if rest else 0, rest=rest)

    with ThreadPoolExecutor(len(STALLED)) as pool:
        results = dict(pool.map(one, STALLED))
    assert set(results) == set(STALLED)
    assert all(status in (None, 400, 408, 413) for status in results.values()), results


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@given(
    st.one_of(
        st.binary(min_size=1, max_size=300).map(lambda b: b + b"\r\n\r\n"),
        st.builds(
            lambda m, p, h: m + b" " + p + b" HTTP/1.1\r\n" + h + b"\r\n\r\n",
            st.sampled_from([b"GET", b"POST", b"PUT", b"X"]),
            st.binary(min_size=1, max_size=60),
            st.binary(max_size=200),
        ),
    )
)
def test_random_bytes_are_answered_or_closed(server: Server, data: bytes) -> None:
    answered_or_closed(server.port, data)


def test_hostile_http_requests_over_the_socket(server: Server) -> None:
    """The in-process strategies, over a real connection (the HTTP parser included)."""
    tally = Tally()
    with httpx.Client(base_url=server.base, timeout=PROMPT_SECONDS) as client:
        for name, strategy in ENDPOINTS.items():
            if name == "agent conversation" or name.startswith("agent"):
                continue  # needs the in-process agent account (tests/test_fuzz.py covers it)

            @settings(
                max_examples=HTTP_EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(strategy)
            def case(req: Req) -> None:
                start = time.perf_counter()
                try:
                    response = client.request(
                        req.method, req.path, headers=list(req.headers), content=req.body
                    )
                    outcome = Outcome(
                        response.status_code, response.content, time.perf_counter() - start
                    )
                except httpx.TimeoutException:
                    outcome = Outcome(0, b"", time.perf_counter() - start, hung=True)
                except httpx.RemoteProtocolError:  # closed on us: an answer for raw garbage
                    outcome = Outcome(400, b"", time.perf_counter() - start)
                except httpx.LocalProtocolError:  # httpx will not send it (a NUL in a header):
                    return  # the raw-bytes tests send such requests
                tally.add(req, outcome)

            case()
    assert sum(tally.cases.values()) >= 150
    assert not tally.failures, "\n".join(tally.failures[:10])
    assert tally.hangs == 0


def test_afterwards_the_server_answers_and_the_known_conversation_is_intact(
    server: Server,
) -> None:
    assert server.process.poll() is None, server.log.read_text()[-3000:]
    after = known_events(server.base)
    assert after[: len(server.before)] == server.before
    reply = httpx.post(
        f"{server.base}/webhooks/rest/webhook",
        json={"sender": KNOWN, "message": KNOWN_TEXTS[1]},
        timeout=30,
    )
    assert reply.status_code == 200 and any(m.get("text") for m in reply.json())
    assert json.loads(httpx.get(f"{server.base}/health", timeout=10).text)["status"] == "ok"
