"""The fuzz suite, in process: every public endpoint gets hostile Unicode, sizes, nesting,
types, headers, XML, tokens and ids (strategies in tests/fuzz_support.py). Invariants: no
5xx, no hang (an answer within HANG_SECONDS), no traceback in a body, and the known
conversation intact afterwards (all its events, in order, and the bot still answers it).

Bounded for CI: ``derandomize=True`` (the same cases every run), MAX_EXAMPLES per endpoint.
``bench/fuzz.py`` runs the same strategies for 10,000+ cases and prints the figures.
Each finding the suite made is a fixed case below (one reproducer each), kept as a guard."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from fuzz_support import (
    AGENT_PLACEHOLDER,
    CUSTOMER_SECRET,
    ENDPOINTS,
    KNOWN_FINDINGS,
    OPERATOR_TOKEN,
    WECHAT_TOKEN,
    Outcome,
    Req,
    Served,
    Tally,
    _text_xml,
    build_app,
    check_known,
    known_events,
    login_agent,
    problem_of,
    seed_known,
)
from hypothesis import HealthCheck, given, note, settings
from test_server_project import TrainedBot, new_agent, trained_bot

__all__ = ["trained_bot"]
MAX_EXAMPLES = 100  # per endpoint: about 2,100 cases in all
FUZZ = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


class Session:
    def __init__(self, served: Served, before: list[dict[str, Any]]) -> None:
        self.served = served
        self.before = before
        self.tally = Tally()


@pytest.fixture(scope="module")
def session(trained_bot: TrainedBot, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    logging.disable(logging.ERROR)  # thousands of refused requests would each log a line
    served = Served(build_app(new_agent(trained_bot), tmp_path_factory.mktemp("fuzz")))
    try:
        login_agent(served)
        yield Session(served, seed_known(served))
    finally:
        logging.disable(logging.NOTSET)
        served.close()


def send(session: Session, req: Req) -> Outcome:
    outcome = session.served.send(req)
    note(req.describe())
    problem = session.tally.add(req, outcome)
    assert problem is None, f"{problem}: {req.describe()}"
    return outcome


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_no_5xx_and_no_hang(session: Session, endpoint: str) -> None:
    @FUZZ
    @given(ENDPOINTS[endpoint])
    def case(req: Req) -> None:
        send(session, req)

    case()
    assert session.tally.cases[endpoint] >= 40  # the strategy really produced cases


def test_the_known_conversation_survives_the_fuzzing(session: Session) -> None:
    """Runs after the fuzzing above (file order); alone, it checks the seeded conversation."""
    check_known(session.served, session.before)


# -- what the suite checks, checked ----------------------------------------------------------


def test_the_tally_flags_5xx_hangs_and_tracebacks() -> None:
    req = Req("x", "GET", "/x")
    tally = Tally()
    assert tally.add(req, Outcome(200, b"{}", 0.01)) is None
    assert tally.add(req, Outcome(404, b"Traceback (most recent call last):", 0.01))
    assert tally.add(req, Outcome(502, b"", 0.01))
    assert tally.add(req, Outcome(0, b"", 10.0, hung=True))
    assert tally.server_errors == 1 and tally.hangs == 1 and len(tally.failures) == 3
    assert problem_of(Outcome(503, b"", 0.1)) is not None


def test_a_hang_is_reported_not_waited_for(session: Session) -> None:
    """A valid customer's event stream stays open: the client gives up after the timeout."""
    quick = Served.__new__(Served)
    quick.__dict__.update(session.served.__dict__, timeout=0.5)
    token = jwt.encode({"sub": "C1001", "exp": int(time.time()) + 60}, CUSTOMER_SECRET)
    outcome = quick.send(
        Req(
            "events",
            "GET",
            "/webhooks/app/events",
            (("authorization", f"Bearer {token}".encode()),),
        )
    )
    assert outcome.hung and problem_of(outcome) is not None


def test_a_changed_known_conversation_is_caught(session: Session) -> None:
    before = known_events(session.served)
    with pytest.raises(AssertionError, match="events changed"):
        check_known(session.served, [*before[:-1], {**before[-1], "timestamp": 0.0}])


def test_the_agent_token_placeholder_is_replaced(session: Session) -> None:
    outcome = session.served.send(
        Req("agent", "GET", "/agent/me", (("authorization", AGENT_PLACEHOLDER),))
    )
    assert outcome.status == 200, outcome


# -- deterministic cases: the classes of issue 19 ---------------------------------------------


def _json_req(path: str, body: Any, *headers: tuple[str, bytes]) -> Req:
    data = json.dumps(body).encode()
    return Req("case", "POST", path, (("content-type", b"application/json"), *headers), data)


def _status(session: Session, req: Req) -> int:
    outcome = session.served.send(req)
    assert not outcome.hung, req.describe()
    return outcome.status


DEEP = "finding[deep-json]: JSON nested 500+ deep is a 500 (bot/core/strict_json.py, sec)"


def _deep_body(depth: int, prefix: bytes, suffix: bytes = b"}") -> bytes:
    return prefix + b'{"a":' * depth + b"1" + b"}" * depth + suffix


@pytest.mark.parametrize(
    "depth",
    [
        50,
        200,
        500,
        970,
        5000,
    ],
)
@pytest.mark.parametrize("route", ["/webhooks/rest/webhook", "/webhooks/app/webhook"])
def test_deep_json_nesting_is_a_400(session: Session, route: str, depth: int) -> None:
    body = _deep_body(depth, rb'{"sender": "deep1", "message": "\u4f60\u597d", "metadata": ')
    req = Req("case", "POST", route, (("content-type", b"application/json"),), body)
    assert _status(session, req) in (200, 400, 413)
    check_known(session.served, session.before)


def test_deep_json_nesting_in_tracker_events_is_a_400(session: Session) -> None:
    body = _deep_body(900, b'{"event": "slot", "name": "x", "value": ')
    auth = ("authorization", f"Bearer {OPERATOR_TOKEN}".encode())
    req = Req(
        "case",
        "POST",
        "/conversations/deep2/tracker/events",
        (("content-type", b"application/json"), auth),
        body,
    )
    assert _status(session, req) in (200, 400, 413)


CRIT = "finding[crit]: JWT with a crit header 500 in bot/channels/identity.py"


def _crit_token() -> str:
    return jwt.encode(
        {"sub": "C1001", "exp": int(time.time()) + 600},
        CUSTOMER_SECRET,
        headers={"crit": ["exp"]},
    )


@pytest.mark.parametrize("route", ["/webhooks/app/history", "/webhooks/app/events"])
def test_a_jwt_with_crit_is_a_401_on_customer_routes(session: Session, route: str) -> None:
    header = ("authorization", f"Bearer {_crit_token()}".encode())
    assert _status(session, Req("case", "GET", route, (header,))) == 401


def test_a_jwt_with_crit_is_a_401_on_the_app_webhook(session: Session) -> None:
    header = ("authorization", f"Bearer {_crit_token()}".encode())
    req = _json_req("/webhooks/app/webhook", {"message": "你好"}, header)
    assert _status(session, req) == 401


@pytest.mark.parametrize("value", [b"Bearer \xff\xfe\xfd", "Bearer café".encode("latin-1")])
def test_non_utf8_authorization_on_the_agent_api_is_a_401(session: Session, value: bytes) -> None:
    req = Req("case", "GET", "/agent/config", (("authorization", value),))
    assert _status(session, req) == 401


def test_a_nul_byte_under_static_is_a_404(session: Session) -> None:
    assert _status(session, Req("case", "GET", "/static/a%00b.js")) in (400, 404)


def test_the_static_folder_itself_is_a_404(session: Session) -> None:
    assert _status(session, Req("case", "GET", "/static/")) in (403, 404)


def _wechat_query(timestamp: str, nonce: str = "42") -> str:
    signature = hashlib.sha1("".join(sorted([WECHAT_TOKEN, timestamp, nonce])).encode())
    query = f"timestamp={timestamp}&nonce={nonce}&signature={signature.hexdigest()}"
    return f"/webhooks/wechat/webhook?{query}"


def test_wechat_xml_with_an_unknown_encoding_is_a_400(session: Session) -> None:
    body = _text_xml("你好", "bogus")
    req = Req(
        "case", "POST", _wechat_query(str(int(time.time()))), (("content-type", b"text/xml"),), body
    )
    assert _status(session, req) == 400


@pytest.mark.parametrize(
    "body",
    [
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
        b"<xml><Content>&b;</Content></xml>",
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        b"<xml><MsgType>text</MsgType><Content>&e;</Content></xml>",
        b"<xml>" + b"<a>" * 20000 + b"</a>" * 20000 + b"</xml>",
        _text_xml("你好", "utf-16"),
        _text_xml("你好", "gbk"),
    ],
    ids=["entities", "external-entity", "deep", "utf-16", "gbk"],
)
def test_wechat_hostile_xml_is_refused_or_answered(session: Session, body: bytes) -> None:
    req = Req(
        "case", "POST", _wechat_query(str(int(time.time()))), (("content-type", b"text/xml"),), body
    )
    outcome = session.served.send(req)
    assert problem_of(outcome) is None, outcome
    assert b"root:" not in outcome.body  # /etc/passwd never comes back


def test_a_wechat_request_from_long_ago_is_refused(session: Session) -> None:
    body = _text_xml("你好")
    req = Req("case", "POST", _wechat_query("1"), (("content-type", b"text/xml"),), body)
    assert _status(session, req) in (401, 403)


@pytest.mark.parametrize(
    "parse_data",
    [
        {"intent": {"name": 5}},
        {"intent": {"name": ["greet"]}},
        {"intent": {"name": {"x": 1}}},
        {"intent": {"name": "greet", "confidence": "high"}},
        {"intent": {"name": "greet"}, "entities": [{"entity": "x", "start": "a"}]},
        {"intent": {"name": "greet"}, "intent_ranking": "x"},
    ],
)
def test_operator_parse_data_of_the_wrong_type_is_a_400(
    session: Session, parse_data: dict[str, Any]
) -> None:
    req = _json_req(
        "/conversations/op1/messages",
        {"text": "你好", "parse_data": parse_data},
        ("authorization", f"Bearer {OPERATOR_TOKEN}".encode()),
    )
    assert _status(session, req) in (200, 400)
    outcome = session.served.send(
        Req(
            "case",
            "GET",
            "/conversations/op1/tracker",
            (("authorization", f"Bearer {OPERATOR_TOKEN}".encode()),),
        )
    )
    assert outcome.status == 200  # the conversation still loads


@pytest.mark.parametrize(
    "conversation",
    ["..%2F..%2Fetc%2Fpasswd", "1%27%20OR%20%271%27%3D%271", "%27%3B%20DROP%20TABLE%20events%3B--"],
)
def test_ids_with_traversal_and_sql_are_just_names(session: Session, conversation: str) -> None:
    auth = ("authorization", f"Bearer {OPERATOR_TOKEN}".encode())
    req = _json_req(f"/conversations/{conversation}/messages", {"text": "你好"}, auth)
    assert _status(session, req) == 200
    outcome = session.served.send(
        Req("case", "GET", f"/conversations/{conversation}/tracker", (auth,))
    )
    assert outcome.status == 200
    assert [e["text"] for e in json.loads(outcome.body)["events"] if e["event"] == "user"] == [
        "你好"
    ]
    check_known(session.served, session.before)  # and nothing else was touched


def test_no_finding_is_left_excused() -> None:
    """Every 5xx counts as a failure: no class of finding is excused from the invariant."""
    assert KNOWN_FINDINGS == {}
