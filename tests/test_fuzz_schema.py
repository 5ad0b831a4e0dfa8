"""Schemathesis over the server's own ``/openapi.json``: for every operation the document
lists, requests that fit the schema (positive) and requests that break it (negative). The
document is loaded with ``schemathesis.openapi.from_dict`` and each case, prepared as
``requests`` would send it, goes to the app in process through tests/fuzz_support.py's
``Served`` (Schemathesis' own ASGI transport works with Sanic, but its pytest plugin ends the
app's lifespan after each test and a Sanic app does not start twice). Invariants as
tests/test_fuzz.py: no 5xx, no hang, and the known conversation intact afterwards.

Credentials are added per route (operator token, the fuzz agent's token, a customer token)
so that the generated cases reach the code behind the authentication; Schemathesis also
sends its own (wrong) ones. The event streams are sent without valid credentials (a valid
stream stays open by design), so the positive cases are 401s there."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
import requests
import schemathesis
from fuzz_support import (
    CUSTOMER_SECRET,
    KNOWN,
    OPERATOR_TOKEN,
    Req,
    Served,
    build_app,
    check_known,
    known_finding,
    login_agent,
    problem_of,
    seed_known,
)
from hypothesis import HealthCheck, given, note, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from test_server_project import TrainedBot, new_agent, trained_bot

__all__ = ["trained_bot"]
EXAMPLES = {GenerationMode.POSITIVE: 12, GenerationMode.NEGATIVE: 8}  # per operation
PROGRESS = bool(os.environ.get("FUZZ_PROGRESS"))
STREAMS = ("/agent/events", "/webhooks/app/events")


BASE = "http://fuzz.test"


class Run:
    def __init__(self, served: Served) -> None:
        self.served = served
        self.schema = schemathesis.openapi.from_dict(served.json("GET", "/openapi.json"))
        self.before = seed_known(served)
        login_agent(served)
        customer = jwt.encode({"sub": "C1001", "exp": int(time.time()) + 3600}, CUSTOMER_SECRET)
        self.auth = {
            "agent": f"Bearer {served.agent_token}",
            "customer": f"Bearer {customer}",
            "operator": f"Bearer {OPERATOR_TOKEN}",
        }
        self.statuses: Counter[int] = Counter()

    def headers_for(self, path: str) -> dict[str, str]:
        if path in STREAMS:  # a bad token: a 401, not an open stream
            return {"Authorization": "Bearer not-a-valid-token"}
        if path.startswith("/agent"):
            return {"Authorization": self.auth["agent"]}
        if path.startswith("/webhooks/app"):
            return {"Authorization": self.auth["customer"]}
        return {"Authorization": self.auth["operator"]}


@pytest.fixture(scope="module")
def run(trained_bot: TrainedBot, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    logging.disable(logging.ERROR)
    served = Served(build_app(new_agent(trained_bot), tmp_path_factory.mktemp("schema")))
    try:
        yield Run(served)
    finally:
        logging.disable(logging.NOTSET)
        served.close()


def _bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode("utf-8", "surrogateescape")


def as_req(case: Any, headers: dict[str, str]) -> Req:
    """The Schemathesis case as the bytes that go on the wire (through ``requests``'
    preparation, as Schemathesis' own transport sends it)."""
    kwargs = case.as_transport_kwargs(base_url=BASE, headers=headers)
    fields = ("method", "url", "headers", "params", "data", "json", "files", "cookies")
    prepared = requests.Request(**{k: v for k, v in kwargs.items() if k in fields}).prepare()
    body = prepared.body
    if isinstance(body, str):
        body = body.encode("utf-8", "surrogateescape")
    wire = tuple(
        (
            name.lower(),
            value if isinstance(value, bytes) else str(value).encode("utf-8", "surrogateescape"),
        )
        for name, value in prepared.headers.items()
        if name.lower() != "host"
    )
    return Req(case.operation.label, str(prepared.method), prepared.path_url, wire, body)


def operations(schema: Any) -> list[Any]:
    return [result.ok() for result in schema.get_all_operations()]


def test_the_document_lists_every_public_route(run: Run) -> None:
    labels = {op.label for op in operations(run.schema)}
    for expected in (
        "POST /webhooks/rest/webhook",
        "POST /webhooks/app/webhook",
        "POST /webhooks/wechat/webhook",
        "POST /model/parse",
        "GET /conversations/{conversation_id}/tracker",
        "POST /conversations/{conversation_id}/messages",
        "POST /agent/login",
        "GET /webhooks/app/history",
        "GET /static/{path}",
    ):
        assert expected in labels, expected
    assert len(labels) >= 35


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_schemathesis_finds_no_server_error(run: Run, mode: GenerationMode) -> None:
    problems: list[str] = []
    for op in operations(run.schema):
        fuzz_operation(run, op, mode, problems)
    assert sum(run.statuses.values()) >= 200
    assert not problems, "\n".join(problems[:10])
    check_known(run.served, run.before)


def fuzz_operation(run: Run, op: Any, mode: GenerationMode, problems: list[str]) -> None:
    extra = run.headers_for(op.path)

    @settings(
        max_examples=EXAMPLES[mode],
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(op.as_strategy(generation_mode=mode))
    def case(case: Any) -> None:
        generated = case.headers or {}
        # positive cases carry our credentials (to reach the code behind them); negative
        # ones keep whatever broken credentials Schemathesis made
        headers = (
            {**generated, **extra} if mode == GenerationMode.POSITIVE else {**extra, **generated}
        )
        if case.path_parameters and KNOWN in json.dumps(case.path_parameters):
            return  # the known conversation is left to the invariant
        req = as_req(case, headers)
        if PROGRESS:
            print(req.describe()[:200], file=sys.stderr, flush=True)
        outcome = run.served.send(req)
        run.statuses[outcome.status] += 1
        note(f"{req.describe()} -> {outcome.status} {outcome.body[:200]!r}")
        problem = problem_of(outcome)
        if problem is not None and known_finding(req) is None:
            problems.append(f"{problem}: {req.describe()}")

    try:
        case()
    except Unsatisfiable:  # nothing to break (no parameters, no body): nothing to send
        assert mode == GenerationMode.NEGATIVE, op.label
