"""Schemathesis over the server's own ``/openapi.json``: for every operation the document
lists, requests that fit the schema (positive) and requests that break it (negative), sent
in process through Schemathesis' ASGI transport (Sanic's app is an ASGI app). Invariants as
tests/test_fuzz.py: no 5xx, and the known conversation intact afterwards.

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
from pathlib import Path
from typing import Any

import jwt
import pytest
import schemathesis
from fuzz_support import (
    AGENT,
    CUSTOMER_SECRET,
    KNOWN,
    OPERATOR_TOKEN,
    build_app,
    check_known,
    seed_known,
)
from hypothesis import HealthCheck, given, note, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.python import asgi
from test_server_project import TrainedBot, new_agent, trained_bot

__all__ = ["trained_bot"]
EXAMPLES = {GenerationMode.POSITIVE: 12, GenerationMode.NEGATIVE: 8}  # per operation
PROGRESS = bool(os.environ.get("FUZZ_PROGRESS"))
STREAMS = ("/agent/events", "/webhooks/app/events")


class AsgiJson:
    """``json(method, path, body, **headers)`` over Schemathesis' ASGI client, so that
    fuzz_support's seed_known / check_known work on this app too."""

    def __init__(self, client: Any) -> None:
        self.client = client  # entered: the app's lifespan (startup listeners) has run

    def json(self, method: str, path: str, body: Any = None, **headers: str) -> Any:
        response = self.client.request(
            method, "http://localhost" + path, json=body, headers=headers, timeout=30
        )
        assert response.status_code == 200, (method, path, response.text[:300])
        return response.json()


class Run:
    def __init__(self, app: Any, schema: Any, client: AsgiJson) -> None:
        self.app, self.schema, self.client = app, schema, client
        self.before = seed_known(client)  # type: ignore[arg-type]
        agent = client.json("POST", "/agent/login", {"username": AGENT[0], "password": AGENT[1]})
        customer = jwt.encode({"sub": "C1001", "exp": int(time.time()) + 3600}, CUSTOMER_SECRET)
        self.auth = {
            "agent": f"Bearer {agent['token']}",
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


@pytest.fixture
def run(trained_bot: TrainedBot, tmp_path: Path) -> Iterator[Run]:
    """A fresh app per test: Schemathesis' pytest plugin ends every ASGI lifespan when a
    test ends, and a Sanic app does not start twice."""
    logging.disable(logging.ERROR)
    app = build_app(new_agent(trained_bot), tmp_path)
    try:
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        with asgi.get_client(app) as client:
            yield Run(app, schema, AsgiJson(client))
    finally:
        logging.disable(logging.NOTSET)


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
    check_known(run.client, run.before)  # type: ignore[arg-type]


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
        if PROGRESS:
            print(op.label, file=sys.stderr, flush=True)
        response = case.call(headers=headers, timeout=10)
        run.statuses[response.status_code] += 1
        note(f"{op.label} -> {response.status_code} {response.text[:200]}")
        if response.status_code >= 500:
            problems.append(f"{op.label}: {response.status_code} for {case.as_curl_command()}")

    try:
        case()
    except Unsatisfiable:  # nothing to break (no parameters, no body): nothing to send
        assert mode == GenerationMode.NEGATIVE, op.label
