"""Soak and fault runs of a multi-process deployment: two or more ``bot run`` instances on
PostgreSQL and Redis behind a real nginx (``deploy/nginx.conf``), loaded with concurrent
conversations while faults happen.

Run after ``bot train`` (the project's latest model is served)::

    .venv/bin/python bench/soak.py [--conversations 500] [--turns 20] [--instances 2]
        [--faults kill,postgres,redis,actions] [--outage 5]

Each run (a baseline without fault, then one run per fault) sends ``--conversations``
conversations of ``--turns`` messages each, all at once, through nginx; every message carries
``metadata.message_id`` and a client retries it (same id, after ``Retry-After``) on a
refused or cut connection, a timeout or a 5xx, as a bank's app does. The faults, a second
into the load:

- ``kill``: one instance is killed (SIGKILL) and started again a second later (as systemd's
  ``Restart=always`` would);
- ``postgres`` / ``redis``: the connections of every instance are cut, and new ones refused,
  for ``--outage`` seconds by a local asyncio TCP proxy in front of the server (the
  instances only know the proxy's port), then let through again;
- ``actions``: the remote action server (``bot run actions``) is killed for ``--outage``
  seconds; the customer must get the polite failure with the handoff button.

After each run the tracker store is read (directly, not through the proxy): every
acknowledged turn must be stored exactly once and in the order sent. Printed per run:
throughput, p50/p99 of acknowledged turns (first attempt to answer, retries included),
errors by kind during and after the fault, 503s without ``Retry-After``, time to recover
(from the end of the fault to the last error) and the store check.

``tests/test_faults.py`` and ``tests/test_multiprocess.py`` run bounded versions with the
same harness (:class:`Deployment`, :func:`run_load`, :func:`check_store`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
PG_URL = os.environ.get("BOT_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("BOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
TEXTS = ("你好", "开户要带什么材料", "信用卡怎么还款", "网点几点开门")
HUMAN_PAYLOAD = "/request_human"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- a TCP proxy that can cut connections ------------------------------------------------------


class TcpProxy:
    """Forwards 127.0.0.1:``port`` to ``target`` on its own thread and event loop.

    :meth:`cut` closes every open connection and refuses new ones (the port is closed), as
    a database or Redis that went away; :meth:`restore` listens again on the same port."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.connections = 0

    def __enter__(self) -> TcpProxy:
        self._thread.start()
        self._call(self._listen())
        return self

    def __exit__(self, *exc: object) -> None:
        self._call(self._close())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)

    def _call(self, coro: Awaitable[Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)  # type: ignore[arg-type]

    def cut(self) -> None:
        self._call(self._close())

    def restore(self) -> None:
        self._call(self._listen())

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(
                self._serve, "127.0.0.1", self.port, reuse_address=True
            )

    async def _close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            with contextlib.suppress(Exception):
                writer.transport.abort()  # a reset, as a dead server or a cut cable
        self._writers.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        pair = {writer, up_writer}
        self._writers |= pair

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (OSError, asyncio.IncompleteReadError):
                pass
            finally:
                with contextlib.suppress(Exception):
                    dst.transport.abort()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        self._writers -= pair


# --- nginx ----------


def render_nginx(template: str, listen: int, upstreams: list[int], prefix: Path) -> str:
    """``deploy/nginx.conf`` for a test: listening on 127.0.0.1:``listen``, the upstream's
    servers on ``upstreams`` (loopback ports), pid, logs and temporary files under
    ``prefix``, one nginx worker."""
    lines: list[str] = []
    servers_done = False
    for line in template.splitlines():
        stripped = line.strip()
        indent = line[: len(line) - len(line.lstrip())]
        if stripped.startswith("worker_processes "):
            line = "worker_processes 1;"
            if os.geteuid() == 0:  # workers as root: the temporary folder is root's alone
                line += "\nuser root;"
        elif stripped.startswith("pid "):
            line = f"pid {prefix}/nginx.pid;"
        elif stripped.startswith("error_log "):
            line = f"error_log {prefix}/error.log warn;"
        elif stripped.startswith("access_log "):
            line = f"{indent}access_log {prefix}/access.log;"
        elif stripped.startswith("client_body_temp_path "):
            line = "\n".join(
                f"{indent}{kind}_temp_path {prefix}/{kind};"
                for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
            )
        elif stripped.startswith("proxy_temp_path "):
            continue
        elif stripped.startswith("listen "):
            line = f"{indent}listen 127.0.0.1:{listen};"
        elif re.match(r"server 127\.0\.0\.1:\d+", stripped):
            if servers_done:
                continue
            servers_done = True
            options = stripped.split(" ", 2)[2] if stripped.count(" ") >= 2 else ";"
            line = "\n".join(f"{indent}server 127.0.0.1:{port} {options}" for port in upstreams)
        lines.append(line)
    return "\n".join(lines) + "\n"


class Nginx:
    def __init__(self, prefix: Path, upstreams: list[int]) -> None:
        self.prefix = prefix
        self.port = free_port()
        prefix.mkdir(parents=True, exist_ok=True)
        template = (ROOT / "deploy" / "nginx.conf").read_text(encoding="utf-8")
        self.conf = prefix / "nginx.conf"
        self.conf.write_text(render_nginx(template, self.port, upstreams, prefix))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        command = [NGINX, "-p", str(self.prefix), "-c", str(self.conf)]
        check = subprocess.run(
            [*command, "-e", str(self.prefix / "error.log"), "-t"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if check.returncode != 0:
            raise RuntimeError(f"nginx -t failed: {check.stderr}")
        self.process = subprocess.Popen(
            [*command, "-e", str(self.prefix / "error.log"), "-g", "daemon off;"],
            stdout=subprocess.DEVNULL,
            stderr=(self.prefix / "stderr.log").open("wb"),
            start_new_session=True,
        )
        wait_for(lambda: _connects(self.port), 15, "nginx to listen")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # graceful
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def _connects(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"waited {timeout:g} s for {what}")
        time.sleep(0.1)


# --- bot processes ----------


class Instance:
    """One ``bot run`` (or ``bot run actions``) process of the project at ``root``."""

    def __init__(
        self,
        root: Path,
        args: list[str],
        env: dict[str, str],
        log: Path,
        port: int | None = None,
        ready_path: str | None = "/health",
    ) -> None:
        self.root = root
        self.port = port or free_port()
        self.args = [*args, "--port", str(self.port)]
        self.env = env
        self.log = log
        self.ready_path = ready_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 180) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bot", *self.args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.root,
                start_new_session=True,
            )
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float) -> None:
        import httpx

        def ready() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.args[0:2]} exited {self.process.returncode}: "
                    + self.log.read_text(errors="replace")[-3000:]
                )
            if self.ready_path is None:
                return _connects(self.port)
            try:
                return httpx.get(self.url + self.ready_path, timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, timeout, f"{' '.join(self.args[:2])} on port {self.port}")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(40)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Deployment:
    """``instances`` × ``bot run`` on PostgreSQL (a fresh schema, dropped afterwards) and
    Redis, both through a :class:`TcpProxy`, behind nginx; optionally a remote action
    server. Use as a context manager."""

    project: Path
    work: Path
    instances: int = 2
    workers: int = 1
    actions: bool = False
    pg_url: str = PG_URL
    redis_url: str = REDIS_URL
    schema: str = field(default_factory=lambda: f"soak_{uuid.uuid4().hex[:10]}")
    bots: list[Instance] = field(default_factory=list)
    nginx: Nginx | None = None
    action_server: Instance | None = None
    pg_proxy: TcpProxy | None = None
    redis_proxy: TcpProxy | None = None
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    @property
    def url(self) -> str:
        assert self.nginx is not None
        return self.nginx.url

    def store_url(self, port: int | None = None) -> str:
        """The database URL with the run's schema first on the search path; through the
        proxy on ``port`` when given."""
        import sqlalchemy as sa

        url = sa.make_url(self.pg_url)
        if port is not None:
            url = url.set(host="127.0.0.1", port=port)
        url = url.update_query_dict({"options": f"-csearch_path={self.schema}"})
        rendered: str = url.render_as_string(hide_password=False)
        return rendered

    def __enter__(self) -> Deployment:
        try:
            self._start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def _start(self) -> None:
        import sqlalchemy as sa
        from redis import Redis

        self.work.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(self.pg_url)
        with engine.begin() as conn:
            conn.exec_driver_sql(f'CREATE SCHEMA "{self.schema}"')
        engine.dispose()
        self._stack.callback(self._drop_schema)
        pg = sa.make_url(self.pg_url)
        self.pg_proxy = self._stack.enter_context(TcpProxy(pg.host or "127.0.0.1", pg.port or 5432))
        redis = Redis.from_url(self.redis_url)
        kwargs = redis.connection_pool.connection_kwargs
        db = kwargs.get("db", 0)
        self.redis_proxy = self._stack.enter_context(
            TcpProxy(kwargs.get("host", "127.0.0.1"), kwargs.get("port", 6379))
        )
        redis.close()
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "BOT_DB_URL": self.store_url(self.pg_proxy.port),
            "BOT_REDIS_URL": f"redis://127.0.0.1:{self.redis_proxy.port}/{db}",
        }
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        env.pop("BOT_ENV", None)
        if self.actions:
            self.action_server = Instance(
                self.project,
                ["run", "actions", "--project", str(self.project)],
                env,
                self.work / "actions.log",
                ready_path=None,
            )
            endpoints = self.work / "endpoints.yml"
            endpoints.write_text(
                json.dumps(
                    {"action_endpoint": {"url": f"{self.action_server.url}/webhook", "timeout": 5}}
                ),
                encoding="utf-8",
            )
            self.action_server.start()
            self._stack.callback(self.action_server.stop)
        for n in range(self.instances):
            args = ["run", "--project", str(self.project), "--workers", str(self.workers)]
            if self.actions:
                args += ["--endpoints", str(self.work / "endpoints.yml")]
            bot = Instance(self.project, args, env, self.work / f"bot{n}.log")
            self.bots.append(bot)
            self._stack.callback(bot.stop)
        for bot in self.bots:  # one at a time: each loads the model (2 cores)
            bot.start()
        self.nginx = Nginx(self.work / "nginx", [bot.port for bot in self.bots])
        self.nginx.start()
        self._stack.callback(self.nginx.stop)

    def _drop_schema(self) -> None:
        import sqlalchemy as sa

        engine = sa.create_engine(self.pg_url)
        with engine.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
        engine.dispose()

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-4000:]}"
            for path in sorted(self.work.glob("*.log"))
        )

    def stored_messages(self, prefix: str) -> dict[str, list[str | None]]:
        """conversation -> the ``metadata.message_id`` of its user events, in stored order
        (read directly, not through the proxy)."""
        import sqlalchemy as sa

        engine = sa.create_engine(self.store_url())
        found: dict[str, list[str | None]] = {}
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT sender_id, data FROM events WHERE sender_id LIKE %(p)s "
                "AND type_name = 'user' ORDER BY sender_id, seq",
                {"p": prefix + "%"},
            )
            for sender, data in rows:
                event = json.loads(data)
                metadata = event.get("metadata") or {}
                found.setdefault(sender, []).append(metadata.get("message_id"))
        engine.dispose()
        return found


# --- the load ----------


@dataclass
class Turn:
    conversation: str
    message_id: str
    first_sent: float
    acked: float | None = None
    attempts: int = 0
    replies: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class LoadResult:
    started: float
    finished: float
    turns: list[Turn]
    errors: list[tuple[float, str]]  # (time, kind)
    bare_503: int = 0  # 503s without Retry-After or without a JSON "error"
    fault: tuple[float, float] | None = None  # when the fault started and ended

    @property
    def acked(self) -> list[Turn]:
        return [t for t in self.turns if t.acked is not None]

    def figures(self) -> dict[str, Any]:
        latencies = sorted((t.acked or 0) - t.first_sent for t in self.acked)
        fault_start, fault_end = self.fault or (self.finished, self.finished)
        during = Counter(k for at, k in self.errors if fault_start <= at <= fault_end + 1.0)
        after = Counter(k for at, k in self.errors if at > fault_end + 1.0)
        before = Counter(k for at, k in self.errors if at < fault_start)
        last_error = max((at for at, _ in self.errors), default=None)
        recover = 0.0 if last_error is None or last_error < fault_end else last_error - fault_end
        return {
            "turns_sent": len(self.turns),
            "turns_acked": len(latencies),
            "seconds": round(self.finished - self.started, 2),
            "turns_per_s": round(len(latencies) / max(1e-9, self.finished - self.started), 1),
            "p50_ms": round(_quantile(latencies, 0.5) * 1000, 1),
            "p99_ms": round(_quantile(latencies, 0.99) * 1000, 1),
            "errors_before": dict(before),
            "errors_during": dict(during),
            "errors_after": dict(after),
            "bare_503": self.bare_503,
            "fault_seconds": round(fault_end - fault_start, 2) if self.fault else None,
            "recover_s": round(recover, 2) if self.fault else None,
        }


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[min(98, int(q * 100) - 1)]


async def run_load(
    base_url: str,
    conversations: int,
    turns: int,
    *,
    prefix: str | None = None,
    fault: Callable[[], Awaitable[tuple[float, float]]] | None = None,
    fault_after: float = 1.0,
    give_up: float = 120.0,
    texts: tuple[str, ...] = TEXTS,
    stagger: float = 0.5,
) -> tuple[str, LoadResult]:
    """Send ``conversations`` × ``turns`` messages (each conversation in order, all
    conversations at once, started over ``stagger`` seconds) to the REST channel at
    ``base_url``; retry a message (same ``metadata.message_id``) until it is answered or
    ``give_up`` seconds passed. ``fault`` runs ``fault_after`` seconds in. Returns the
    conversations' prefix and what happened."""
    import aiohttp

    prefix = prefix or f"soak{uuid.uuid4().hex[:8]}-"
    url = f"{base_url}/webhooks/rest/webhook"
    errors: list[tuple[float, str]] = []
    all_turns: list[Turn] = []
    bare = 0

    async def converse(session: aiohttp.ClientSession, n: int) -> None:
        nonlocal bare
        await asyncio.sleep(stagger * n / max(1, conversations))
        conversation = f"{prefix}c{n}"
        for i in range(turns):
            turn = Turn(conversation, f"{conversation}-m{i}", time.monotonic())
            all_turns.append(turn)
            body = {
                "sender": conversation,
                "message": texts[i % len(texts)],
                "metadata": {"message_id": turn.message_id},
            }
            backoff = 0.25
            while True:
                turn.attempts += 1
                kind, wait = None, backoff
                backoff = min(backoff * 2, 2.0)  # without Retry-After: exponential
                try:
                    async with asyncio.timeout(35), session.post(url, json=body) as response:
                        raw = await response.read()
                        status = response.status
                        retry_after = response.headers.get("Retry-After")
                    try:
                        payload = json.loads(raw) if raw else None
                    except ValueError:  # nginx's own error pages are HTML
                        payload = None
                    if status == 200 and isinstance(payload, list):
                        turn.acked = time.monotonic()
                        turn.replies = payload
                        break
                    kind = f"http_{status}"
                    if status == 503 and not (
                        retry_after and isinstance(payload, dict) and payload.get("error")
                    ):
                        bare += 1
                    if retry_after:
                        wait = min(float(retry_after), 2.0)
                except TimeoutError:
                    kind = "timeout"
                except aiohttp.ClientConnectorError:
                    kind = "refused"
                except (aiohttp.ClientError, OSError, ValueError) as exc:
                    kind = f"reset:{type(exc).__name__}"
                errors.append((time.monotonic(), kind))
                if time.monotonic() - turn.first_sent > give_up:
                    break
                await asyncio.sleep(wait)

    timeout = aiohttp.ClientTimeout(total=30)
    connector = aiohttp.TCPConnector(limit=0)  # no pool limit: each conversation its own
    started = time.monotonic()
    fault_window: tuple[float, float] | None = None
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        load = asyncio.gather(*(converse(session, n) for n in range(conversations)))
        if fault is not None:
            await asyncio.sleep(fault_after)
            fault_window = await fault()
        await load
    result = LoadResult(started, time.monotonic(), all_turns, errors, bare, fault_window)
    return prefix, result


@dataclass
class StoreCheck:
    acked: int
    missing: list[str]  # acknowledged, not stored
    doubled: list[str]  # stored more than once
    out_of_order: list[str]  # conversations whose acknowledged turns are not in send order

    @property
    def ok(self) -> bool:
        return not (self.missing or self.doubled or self.out_of_order)


def check_store(stored: dict[str, list[str | None]], result: LoadResult) -> StoreCheck:
    """Every acknowledged turn stored exactly once, in the order sent."""
    sent: dict[str, list[Turn]] = {}
    for turn in result.turns:
        sent.setdefault(turn.conversation, []).append(turn)
    missing, doubled, disorder = [], [], []
    for conversation, turns in sent.items():
        ids = stored.get(conversation, [])
        counts = Counter(ids)
        doubled += [i for i, c in counts.items() if c > 1 and i is not None]
        acked = [t.message_id for t in turns if t.acked is not None]
        missing += [i for i in acked if counts[i] == 0]
        order = [i for i in ids if i in set(acked)]
        if order != [i for i in acked if counts[i]]:
            disorder.append(conversation)
    return StoreCheck(len(result.acked), missing, doubled, disorder)


# --- faults ----------


def kill_fault(deployment: Deployment, index: int = 0, down: float = 1.0) -> Callable[..., Any]:
    async def fault() -> tuple[float, float]:
        bot = deployment.bots[index]
        start = time.monotonic()
        await asyncio.to_thread(bot.kill)
        await asyncio.sleep(down)
        await asyncio.to_thread(bot.start)
        return start, time.monotonic()

    return fault


def proxy_fault(proxy: TcpProxy, seconds: float) -> Callable[..., Any]:
    async def fault() -> tuple[float, float]:
        start = time.monotonic()
        await asyncio.to_thread(proxy.cut)
        await asyncio.sleep(seconds)
        await asyncio.to_thread(proxy.restore)
        return start, time.monotonic()

    return fault


def actions_fault(deployment: Deployment, seconds: float) -> Callable[..., Any]:
    async def fault() -> tuple[float, float]:
        server = deployment.action_server
        assert server is not None
        start = time.monotonic()
        await asyncio.to_thread(server.kill)
        await asyncio.sleep(seconds)
        end = time.monotonic()
        await asyncio.to_thread(server.start)
        return start, end

    return fault


def polite_failures(result: LoadResult) -> int:
    """Answered turns that offered the handoff (the polite failure of an action)."""
    return sum(
        any(
            b.get("payload") == HUMAN_PAYLOAD
            for reply in turn.replies
            for b in reply.get("buttons") or []
        )
        for turn in result.acked
    )


# --- the command line ----------


@contextlib.contextmanager
def _project_copy(source: Path) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="bankbot-soak-") as folder:
        target = Path(folder) / "bot"
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("data", "results"))
        yield target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", type=Path, default=ROOT, help="a trained project")
    parser.add_argument("--conversations", type=int, default=500)
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--instances", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1, help="Sanic workers per instance")
    parser.add_argument("--faults", default="kill,postgres,redis,actions")
    parser.add_argument("--outage", type=float, default=5.0, help="seconds each fault lasts")
    args = parser.parse_args()
    faults = [f for f in args.faults.split(",") if f]
    if not list((args.project / "models").glob("*.tar.gz")):
        print(f"no model in {args.project}/models: run 'bot train' first", file=sys.stderr)
        return 2
    failed = False
    with (
        _project_copy(args.project) as project,
        tempfile.TemporaryDirectory(prefix="bankbot-soak-work-") as work,
        Deployment(
            project,
            Path(work),
            instances=args.instances,
            workers=args.workers,
            actions="actions" in faults,
        ) as deployment,
    ):
        print(
            f"soak: {args.conversations} conversations x {args.turns} turns, "
            f"{args.instances} instances x {args.workers} worker(s) behind nginx "
            f"(PostgreSQL schema {deployment.schema}, Redis); outage {args.outage:g} s",
            flush=True,
        )
        runs: list[tuple[str, Callable[..., Any] | None]] = [("baseline", None)]
        assert deployment.pg_proxy is not None and deployment.redis_proxy is not None
        choices = {
            "kill": lambda: kill_fault(deployment),
            "postgres": lambda: proxy_fault(deployment.pg_proxy, args.outage),  # type: ignore[arg-type]
            "redis": lambda: proxy_fault(deployment.redis_proxy, args.outage),  # type: ignore[arg-type]
            "actions": lambda: actions_fault(deployment, args.outage),
        }
        runs += [(name, choices[name]()) for name in faults]
        for name, fault in runs:
            prefix, result = asyncio.run(
                run_load(deployment.url, args.conversations, args.turns, fault=fault)
            )
            check = check_store(deployment.stored_messages(prefix), result)
            figures = result.figures()
            figures["store"] = {
                "acked": check.acked,
                "missing": len(check.missing),
                "doubled": len(check.doubled),
                "out_of_order": len(check.out_of_order),
            }
            if name == "actions":
                figures["polite_failures"] = polite_failures(result)
            print(f"{name}: {json.dumps(figures, ensure_ascii=False)}", flush=True)
            failed |= not check.ok or figures["turns_acked"] < figures["turns_sent"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
