"""The HTTP core-banking client against a fake gateway started on 127.0.0.1 by the tests.

The fake gateway serves the sandbox's records in the documented shapes (docs/bank-backend.md),
so every call is checked against what the sandbox itself answers; overrides make it fail in
the ways a real gateway does (401, 404, 500, stalls, malformed JSON, wrong shapes).
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from bot.bank import factory
from bot.bank.http_client import HttpCoreBanking
from bot.bank.interfaces import (
    BackendUnavailable,
    FreezeResult,
    UnknownCard,
    UnknownCustomer,
)
from bot.bank.sandbox import SandboxBank
from bot.errors import ConfigError

TOKEN = "test-token-s3cret"
PREFIX = "/api/v1"


def _encode(value: Any) -> bytes:
    def default(obj: Any) -> Any:
        if isinstance(obj, date | datetime):
            return obj.isoformat()
        raise TypeError(type(obj).__name__)

    return json.dumps(value, default=default, ensure_ascii=False).encode("utf-8")


@dataclass
class Gateway:
    """The fake gateway's state: what it serves, what it was sent, how it misbehaves."""

    bank: SandboxBank
    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    override: tuple[int, bytes] | None = None
    stall: bool = False
    released: threading.Event = field(default_factory=threading.Event)

    def answer(self, method: str, raw_path: str, body: bytes) -> tuple[int, Any]:
        parts = urlsplit(raw_path)
        if not parts.path.startswith(PREFIX + "/"):
            return 404, {"error": "not_found"}
        segments = [unquote(s) for s in parts.path[len(PREFIX) + 1 :].split("/")]
        query = parse_qs(parts.query)
        bank = self.bank
        try:
            match (method, segments):
                case ("GET", ["customers", cid]):
                    return 200, asdict(bank.customer(cid))
                case ("GET", ["customers", cid, "accounts"]):
                    return 200, {"accounts": [asdict(a) for a in bank.accounts(cid)]}
                case ("GET", ["customers", cid, "applications"]):
                    open_only = query.get("open") == ["true"]
                    apps = bank.applications(cid, open_only=open_only)
                    return 200, {"applications": [asdict(a) for a in apps]}
                case ("GET", ["customers", cid, "applications", app_id]):
                    app = bank.application(cid, app_id)
                    if app is None:
                        return 404, {"error": "unknown_application", "message": "no such"}
                    return 200, asdict(app)
                case ("POST", ["customers", cid, "cards", last4, "freeze"]):
                    if json.loads(body or b"{}").get("mode") != "temporary":
                        return 400, {"error": "bad_request"}
                    return 200, asdict(bank.freeze_card(cid, last4))
        except UnknownCustomer:
            return 404, {"error": "unknown_customer", "message": "no such customer"}
        except UnknownCard:
            return 404, {"error": "unknown_card", "message": "no such card"}
        return 404, {"error": "not_found"}


class Handler(BaseHTTPRequestHandler):
    server: Any

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _handle(self) -> None:
        gateway: Gateway = self.server.gateway
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        gateway.requests.append(
            {
                "method": self.command,
                "path": self.path,
                "headers": dict(self.headers.items()),
                "body": body,
            }
        )
        if gateway.stall:
            gateway.released.wait(10)
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            status, payload = 401, _encode({"error": "unauthorized"})
        elif gateway.override is not None:
            status, payload = gateway.override
        else:
            status, data = gateway.answer(self.command, self.path, body)
            payload = _encode(data)
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = _handle
    do_POST = _handle


class GatewayServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64  # the default 5 drops concurrent connects (1 s SYN retry)


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    bank = SandboxBank(tmp_path / "gateway.db")
    state = Gateway(bank)
    server = GatewayServer(("127.0.0.1", 0), Handler)
    server.gateway = state  # type: ignore[attr-defined]
    state.url = f"http://127.0.0.1:{server.server_address[1]}{PREFIX}"
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.released.set()
        server.shutdown()
        server.server_close()
        bank.close()


@pytest.fixture
def client(gateway: Gateway) -> Iterator[HttpCoreBanking]:
    with HttpCoreBanking(gateway.url, TOKEN, timeout=5.0) as c:
        yield c


@pytest.fixture
def reference(tmp_path: Path) -> Iterator[SandboxBank]:
    """A second, untouched sandbox to compare answers with."""
    with SandboxBank(tmp_path / "reference.db") as bank:
        yield bank


# -- every call ------------------------------------------------------------------------------

CUSTOMERS = ["C1001", "C1002", "C1003", "C1004", "C1005", "C1006"]


@pytest.mark.parametrize("customer", CUSTOMERS)
def test_reads_match_the_sandbox(
    client: HttpCoreBanking, reference: SandboxBank, customer: str
) -> None:
    assert client.customer(customer) == reference.customer(customer)
    assert client.accounts(customer) == reference.accounts(customer)
    assert client.applications(customer) == reference.applications(customer)
    assert client.applications(customer, open_only=True) == reference.applications(
        customer, open_only=True
    )
    for app in reference.applications(customer):
        assert client.application(customer, app.id) == app


def test_contract_values_arrive_as_integer_fen(client: HttpCoreBanking) -> None:
    debit, credit = client.accounts("C1001")
    assert (debit.last4, debit.balance_fen) == ("1234", 5238050)
    assert (credit.last4, credit.available_fen, credit.due_date) == (
        "5678",
        3120000,
        date(2026, 12, 5),
    )
    app = client.application("C1001", "r20261115002")
    assert app is not None and app.details["tracking_number"] == "SF1234567890"


def test_request_shapes(client: HttpCoreBanking, gateway: Gateway) -> None:
    client.customer("C1001")
    client.accounts("C1001")
    client.applications("C1001")
    client.applications("C1001", open_only=True)
    client.application("C1001", "L20261101001")
    client.freeze_card("C1001", "1234")
    assert [(r["method"], r["path"]) for r in gateway.requests] == [
        ("GET", f"{PREFIX}/customers/C1001"),
        ("GET", f"{PREFIX}/customers/C1001/accounts"),
        ("GET", f"{PREFIX}/customers/C1001/applications"),
        ("GET", f"{PREFIX}/customers/C1001/applications?open=true"),
        ("GET", f"{PREFIX}/customers/C1001/applications/L20261101001"),
        ("POST", f"{PREFIX}/customers/C1001/cards/1234/freeze"),
    ]
    post = gateway.requests[-1]
    assert json.loads(post["body"]) == {"mode": "temporary"}
    for request in gateway.requests:
        assert request["headers"]["Authorization"] == f"Bearer {TOKEN}"
        assert request["headers"]["Accept"] == "application/json"
        assert request["headers"]["X-Request-ID"]
    assert len({r["headers"]["X-Request-ID"] for r in gateway.requests}) == 6


def test_freeze(client: HttpCoreBanking, reference: SandboxBank) -> None:
    result = client.freeze_card("C1001", "1234")
    assert result.last4 == "1234" and result.already_frozen is False
    assert isinstance(result.frozen_at, datetime) and result.frozen_at.tzinfo is not None
    assert client.accounts("C1001")[0].frozen
    assert client.freeze_card("C1001", "1234") == FreezeResult("1234", True, result.frozen_at)
    seeded = client.freeze_card("C1005", "4321")
    assert seeded.already_frozen


def test_path_segments_are_encoded(client: HttpCoreBanking, gateway: Gateway) -> None:
    with pytest.raises(UnknownCustomer):
        client.accounts("C1001/../C1002")
    assert gateway.requests[-1]["path"] == f"{PREFIX}/customers/C1001%2F..%2FC1002/accounts"
    with pytest.raises(UnknownCustomer):
        client.accounts("..")
    assert client.application("C1001", "..") is None


# -- auth --------------------------------------------------------------------------------------


def test_wrong_token(gateway: Gateway) -> None:
    with HttpCoreBanking(gateway.url, "wrong-token", timeout=5.0) as bad:
        with pytest.raises(BackendUnavailable, match="credentials") as info:
            bad.accounts("C1001")
        assert "wrong-token" not in str(info.value)
        assert "wrong-token" not in repr(bad)
    with (
        HttpCoreBanking(gateway.url, None, timeout=5.0) as anonymous,
        pytest.raises(BackendUnavailable, match="HTTP 401"),
    ):
        anonymous.customer("C1001")
    assert "Authorization" not in gateway.requests[-1]["headers"]


# -- 404 ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.customer("C9999"),
        lambda c: c.accounts("C9999"),
        lambda c: c.applications("C9999"),
        lambda c: c.application("C9999", "L20261101001"),
        lambda c: c.freeze_card("C9999", "1234"),
    ],
)
def test_unknown_customer(client: HttpCoreBanking, call: Any) -> None:
    with pytest.raises(UnknownCustomer):
        call(client)


def test_unknown_card(client: HttpCoreBanking, gateway: Gateway) -> None:
    with pytest.raises(UnknownCard):
        client.freeze_card("C1001", "0000")
    with pytest.raises(UnknownCard):
        client.freeze_card("C1002", "1234")  # another customer's card
    sent = len(gateway.requests)
    with pytest.raises(UnknownCard):
        client.freeze_card("C1001", "12345")  # not four digits: never sent
    assert len(gateway.requests) == sent


def test_only_own_applications(client: HttpCoreBanking) -> None:
    assert client.application("C1002", "L20261101001") is None
    assert client.application("C1001", "L99999999999") is None


def test_404_without_error_code_maps_by_endpoint(client: HttpCoreBanking, gateway: Gateway) -> None:
    gateway.override = (404, b"")
    with pytest.raises(UnknownCustomer):
        client.accounts("C1001")
    with pytest.raises(UnknownCard):
        client.freeze_card("C1001", "1234")
    assert client.application("C1001", "L20261101001") is None


# -- the gateway failing -----------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503])
def test_server_errors(client: HttpCoreBanking, gateway: Gateway, status: int) -> None:
    gateway.override = (status, b'{"error": "internal"}')
    for call in (
        lambda: client.customer("C1001"),
        lambda: client.accounts("C1001"),
        lambda: client.applications("C1001"),
        lambda: client.application("C1001", "L20261101001"),
        lambda: client.freeze_card("C1001", "1234"),
    ):
        with pytest.raises(BackendUnavailable, match=f"HTTP {status}"):
            call()


@pytest.mark.parametrize("status", [302, 400, 409, 429])
def test_other_statuses(client: HttpCoreBanking, gateway: Gateway, status: int) -> None:
    gateway.override = (status, b"{}")
    with pytest.raises(BackendUnavailable, match=f"HTTP {status}"):
        client.accounts("C1001")


def test_timeout(gateway: Gateway) -> None:
    gateway.stall = True
    with HttpCoreBanking(gateway.url, TOKEN, timeout=0.2) as slow:
        with pytest.raises(BackendUnavailable, match="did not answer"):
            slow.accounts("C1001")
        with pytest.raises(BackendUnavailable, match="may or may not"):
            slow.freeze_card("C1001", "1234")


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b'{"accounts": [',
        b"\xff\xfe",
        b"",
    ],
)
def test_malformed_json(client: HttpCoreBanking, gateway: Gateway, payload: bytes) -> None:
    gateway.override = (200, payload)
    with pytest.raises(BackendUnavailable, match="malformed JSON"):
        client.accounts("C1001")


GOOD_ACCOUNT: dict[str, Any] = {
    "account_id": "AC100101",
    "customer_id": "C1001",
    "type": "debit_card",
    "last4": "1234",
    "balance_fen": 5238050,
    "credit_limit_fen": None,
    "available_fen": 5238050,
    "statement_balance_fen": None,
    "due_date": None,
    "frozen": False,
}


@pytest.mark.parametrize(
    "change",
    [
        {"balance_fen": 52380.5},  # float money
        {"balance_fen": "52380.50"},  # text money
        {"balance_fen": True},
        {"last4": "6222021001001234"},  # a full card number
        {"last4": 1234},
        {"type": "savings"},
        {"frozen": "no"},
        {"frozen": None},
        {"due_date": "5 Dec"},
        {"customer_id": "C1002"},  # someone else's account
        {"account_id": None},
    ],
)
def test_wrong_account_shapes(
    client: HttpCoreBanking, gateway: Gateway, change: dict[str, Any]
) -> None:
    gateway.override = (200, _encode({"accounts": [{**GOOD_ACCOUNT, **change}]}))
    with pytest.raises(BackendUnavailable, match="unexpected shape"):
        client.accounts("C1001")


@pytest.mark.parametrize("body", [[GOOD_ACCOUNT], {"items": []}, {"accounts": {}}, None, 42])
def test_wrong_list_shapes(client: HttpCoreBanking, gateway: Gateway, body: Any) -> None:
    gateway.override = (200, _encode(body))
    with pytest.raises(BackendUnavailable, match="unexpected shape"):
        client.accounts("C1001")


def test_wrong_application_and_freeze_shapes(client: HttpCoreBanking, gateway: Gateway) -> None:
    good = {
        "id": "L20261101001",
        "business_type": "loan",
        "product": "个人消费贷",
        "amount_fen": 20000000,
        "steps": [{"name": "资料提交", "status": "done", "date": "2026-11-01"}],
        "details": {},
    }
    gateway.override = (200, _encode(good))
    assert client.application("C1001", "L20261101001") is not None
    for bad in (
        {**good, "id": "L20261101999"},
        {**good, "business_type": "mortgage"},
        {**good, "steps": [{"name": "x", "status": "stuck"}]},
        {**good, "amount_fen": 2e7},
        {**good, "steps": None},
    ):
        gateway.override = (200, _encode(bad))
        with pytest.raises(BackendUnavailable, match="unexpected shape"):
            client.application("C1001", "L20261101001")
    for bad_freeze in (
        {"last4": "5678", "already_frozen": False},
        {"last4": "1234"},
        {"last4": "1234", "already_frozen": False, "frozen_at": "yesterday"},
    ):
        gateway.override = (200, _encode(bad_freeze))
        with pytest.raises(BackendUnavailable, match="unexpected shape"):
            client.freeze_card("C1001", "1234")


def test_connection_refused() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with HttpCoreBanking(f"http://127.0.0.1:{port}", TOKEN, timeout=2.0) as dead:
        with pytest.raises(BackendUnavailable, match="cannot reach"):
            dead.accounts("C1001")
        with pytest.raises(BackendUnavailable, match="cannot reach"):
            dead.freeze_card("C1001", "1234")


def test_documented_example_parses(client: HttpCoreBanking, gateway: Gateway) -> None:
    """The accounts example of docs/bank-backend.md, as a gateway would send it."""
    gateway.override = (
        200,
        b"""{"accounts": [
      {"account_id": "AC100101", "type": "debit_card", "last4": "1234",
       "balance_fen": 5238050, "available_fen": 5238050, "frozen": false},
      {"account_id": "AC100102", "type": "credit_card", "last4": "5678",
       "credit_limit_fen": 5000000, "available_fen": 3120000,
       "statement_balance_fen": 1880000, "due_date": "2026-12-05", "frozen": false}
    ]}""",
    )
    debit, credit = client.accounts("C1001")
    assert debit.balance_fen == 5238050 and debit.customer_id == "C1001"
    assert credit.due_date == date(2026, 12, 5) and credit.balance_fen is None


# -- concurrency and configuration -------------------------------------------------------------


def test_one_client_many_threads(client: HttpCoreBanking, reference: SandboxBank) -> None:
    errors: list[BaseException] = []
    barrier = threading.Barrier(8)

    def work(i: int) -> None:
        barrier.wait()
        try:
            for n in range(10):
                customer = CUSTOMERS[(i + n) % len(CUSTOMERS)]
                assert client.accounts(customer) == reference.accounts(customer)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_bad_client_arguments() -> None:
    with pytest.raises(ValueError):
        HttpCoreBanking("127.0.0.1:8080", TOKEN)
    with pytest.raises(ValueError):
        HttpCoreBanking("http://127.0.0.1:8080", TOKEN, timeout=0)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (factory.ENV_URL, factory.ENV_TOKEN, factory.ENV_PROJECT):
        monkeypatch.delenv(name, raising=False)


def test_factory_http_from_config(
    gateway: Gateway, tmp_path: Path, clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BANKBOT_TEST_GATEWAY_TOKEN", TOKEN)
    config = {
        "type": "http",
        "base_url": gateway.url,
        "token": "${BANKBOT_TEST_GATEWAY_TOKEN}",
        "timeout": 3,
    }
    with factory.create_backend(config, tmp_path) as backend:
        assert isinstance(backend, HttpCoreBanking)
        assert backend.timeout == 3.0
        assert backend.accounts("C1001")[0].last4 == "1234"


def test_factory_env_overrides(
    gateway: Gateway, tmp_path: Path, clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(factory.ENV_URL, gateway.url)
    monkeypatch.setenv(factory.ENV_TOKEN, TOKEN)
    config = {"type": "sandbox", "token": "stale"}
    with factory.create_backend(config, tmp_path) as backend:
        assert isinstance(backend, HttpCoreBanking)
        assert backend.customer("C1002").name == "李秀英"
    assert not (tmp_path / "data").exists()  # no sandbox was created


def test_factory_http_needs_a_url(tmp_path: Path, clean_env: None) -> None:
    with pytest.raises(ConfigError, match="base_url"):
        factory.create_backend({"type": "http", "token": TOKEN}, tmp_path)
