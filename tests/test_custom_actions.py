"""Custom actions written with ``rasa_sdk``: in-process, and on an action server over the
Rasa protocol; a failing or unreachable server gives a polite message, never an exception."""

from __future__ import annotations

import json
import socket
import sys
import textwrap
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from bot.core import events as ev
from bot.core.actions.custom import InProcessExecutor, RemoteExecutor
from bot.core.processor import MessageProcessor, UserMessage
from bot.core.tracker import LISTEN
from bot.core.tracker_store import InMemoryTrackerStore

# The engine's built-in utter_action_failed (bot/resources/responses/engine.yml), as sent.
ACTION_FAILED_TEXT = (
    "抱歉，系统暂时无法完成您的请求，请稍后再试。如需帮助，可以点击“转人工”由人工客服为您服务。"
)
HUMAN_BUTTON = {"title": "转人工", "payload": "/request_human"}

DOMAIN = """
version: "3.1"
intents: [greet, query_balance, break_it, refuse, human, follow, request_human]
entities: [card_last4]
slots:
  card_last4:
    type: text
    mappings: [{type: from_entity, entity: card_last4}]
  balance:
    type: float
    influence_conversation: false
    mappings: [{type: custom}]
actions: [action_cx_balance, action_cx_fail, action_cx_refuse, action_cx_human,
          action_cx_follow, action_cx_missing]
responses:
  utter_greet: [{text: 您好}]
  utter_balance_is: [{text: "尾号{card_last4}的余额是{amount}元"}]
  utter_after: [{text: 还有什么可以帮您？}]
"""

RULES = """
version: "3.1"
rules:
- rule: greet
  steps:
  - intent: greet
  - action: utter_greet
- rule: balance
  steps:
  - intent: query_balance
  - action: action_cx_balance
- rule: fail
  steps:
  - intent: break_it
  - action: action_cx_fail
- rule: refuse
  steps:
  - intent: refuse
  - action: action_cx_refuse
- rule: human
  steps:
  - intent: human
  - action: action_cx_human
- rule: follow
  steps:
  - intent: follow
  - action: action_cx_follow
- rule: missing
  steps:
  - intent: request_human
  - action: action_cx_missing
"""

PACKAGE = """
from rasa_sdk import Action
from rasa_sdk.events import ConversationPaused, FollowupAction, SlotSet
from rasa_sdk.interfaces import ActionExecutionRejection


class Balance(Action):
    def name(self):
        return "action_cx_balance"

    def run(self, dispatcher, tracker, domain):
        card = tracker.get_slot("card_last4")
        dispatcher.utter_message(text=f"{tracker.sender_id}/{tracker.latest_message['intent']['name']}")
        dispatcher.utter_message(response="utter_balance_is", amount="1,024.00")
        dispatcher.utter_message(text="明细", buttons=[{"title": "转人工", "payload": "/human"}],
                                 json_message={"kind": "statement", "card": card})
        return [SlotSet("balance", "1024")]


class Fail(Action):
    def name(self):
        return "action_cx_fail"

    def run(self, dispatcher, tracker, domain):
        raise RuntimeError("core banking timed out for 13812345678")


class Refuse(Action):
    def name(self):
        return "action_cx_refuse"

    def run(self, dispatcher, tracker, domain):
        raise ActionExecutionRejection("action_cx_refuse", "not now")


class Human(Action):
    def name(self):
        return "action_cx_human"

    async def run(self, dispatcher, tracker, domain):
        dispatcher.utter_message(text="正在转人工")
        return [ConversationPaused()]


class Follow(Action):
    def name(self):
        return "action_cx_follow"

    def run(self, dispatcher, tracker, domain):
        return [FollowupAction("utter_after")]
"""


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    name = f"cx_actions_{uuid.uuid4().hex[:8]}"
    (tmp_path / name).mkdir()
    (tmp_path / name / "__init__.py").write_text(textwrap.dedent(PACKAGE), encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield name
    for module in [m for m in sys.modules if m.startswith(name)]:
        del sys.modules[module]


@pytest.fixture
def built(dialogue):  # type: ignore[no-untyped-def]
    return dialogue(DOMAIN, RULES, [("RulePolicy", {})])


def texts(messages: list[dict[str, Any]]) -> list[str | None]:
    return [m.get("text") for m in messages]


# --- in-process ---------------------------------------------------------------------------


async def test_in_process_action_reads_the_tracker_and_answers(built, package: str) -> None:  # type: ignore[no-untyped-def]
    p = MessageProcessor(*built, executor=InProcessExecutor(package))
    messages = await p.handle_message(UserMessage('/query_balance{"card_last4": "1234"}', "c1"))
    assert messages == [
        {"recipient_id": "c1", "text": "c1/query_balance"},
        {"recipient_id": "c1", "text": "尾号1234的余额是1,024.00元"},
        {
            "recipient_id": "c1",
            "text": "明细",
            "buttons": [{"title": "转人工", "payload": "/human"}],
            "custom": {"kind": "statement", "card": "1234"},
        },
    ]
    tracker = await p.get_tracker("c1")
    assert tracker.get_slot("balance") == 1024.0
    assert tracker.latest_action_name == LISTEN


async def test_a_raising_action_gives_a_polite_message(built, package: str) -> None:  # type: ignore[no-untyped-def]
    store = InMemoryTrackerStore()
    p = MessageProcessor(*built, tracker_store=store, executor=InProcessExecutor(package))
    messages = await p.handle_message(UserMessage("/break_it", "c2"))
    assert messages == [
        {"recipient_id": "c2", "text": ACTION_FAILED_TEXT, "buttons": [HUMAN_BUTTON]}
    ]
    assert HUMAN_BUTTON["title"] == "转人工"
    events = await store.events("c2")
    kinds = [(e["event"], e.get("name")) for e in events][-4:]
    assert kinds == [
        ("user", None),
        ("action", "action_cx_fail"),
        ("bot", None),
        ("action", LISTEN),
    ]
    assert events[-2]["metadata"] == {"action_failed": "action_cx_fail"}
    assert texts(await p.handle_message(UserMessage("/greet", "c2"))) == ["您好"]


async def test_rejection_is_an_event_not_a_failure(built, package: str) -> None:  # type: ignore[no-untyped-def]
    p = MessageProcessor(*built, executor=InProcessExecutor(package))
    result = await p.handle(UserMessage("/refuse", "c3"))
    assert ACTION_FAILED_TEXT not in texts(result.messages)
    assert result.rejected == ["action_cx_refuse"]  # tried once, not until max_predictions
    assert [a for a, _, _ in result.actions] == ["action_default_fallback", LISTEN]
    tracker = await p.get_tracker("c3")
    rejected = [e for e in tracker.events if e["event"] == "action_execution_rejected"]
    assert [e["name"] for e in rejected] == ["action_cx_refuse"]
    assert tracker.latest_action_name == LISTEN


async def test_an_action_can_pause_the_conversation(built, package: str) -> None:  # type: ignore[no-untyped-def]
    p = MessageProcessor(*built, executor=InProcessExecutor(package))
    assert texts(await p.handle_message(UserMessage("/human", "c4"))) == ["正在转人工"]
    assert (await p.get_tracker("c4")).paused
    assert await p.handle_message(UserMessage("/greet", "c4")) == []
    await p.append_events("c4", [ev.resume()])
    assert texts(await p.handle_message(UserMessage("/greet", "c4"))) == ["您好"]


async def test_followup_action_from_an_action_runs_next(dialogue, package: str) -> None:  # type: ignore[no-untyped-def]
    # The rule says utter_greet comes next; the action's FollowupAction wins.
    rules = RULES.replace(
        "  - action: action_cx_follow\n", "  - action: action_cx_follow\n  - action: utter_greet\n"
    )
    built = dialogue(DOMAIN, rules, [("RulePolicy", {})])
    p = MessageProcessor(*built, executor=InProcessExecutor(package), max_predictions=2)
    result = await p.handle(UserMessage("/follow", "c5"))
    assert [a for a, _, _ in result.actions][:2] == ["action_cx_follow", "utter_after"]
    assert texts(result.messages) == ["还有什么可以帮您？"]
    assert (await p.get_tracker("c5")).followup_action is None


async def test_no_executor_or_unknown_action_is_a_polite_failure(built, package: str) -> None:  # type: ignore[no-untyped-def]
    bare = MessageProcessor(*built)  # no executor configured at all
    assert texts(await bare.handle_message(UserMessage("/query_balance", "c6"))) == [
        ACTION_FAILED_TEXT
    ]
    p = MessageProcessor(*built, executor=InProcessExecutor(package))
    assert texts(await p.handle_message(UserMessage("/request_human", "c7"))) == [
        ACTION_FAILED_TEXT
    ]


# --- action server ----------------------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_unreachable_action_server(built) -> None:  # type: ignore[no-untyped-def]
    store = InMemoryTrackerStore()
    executor = RemoteExecutor(
        f"http://127.0.0.1:{closed_port()}", timeout=2.0, names={"action_cx_balance"}
    )
    p = MessageProcessor(*built, tracker_store=store, executor=executor)
    result = await p.handle(UserMessage("/query_balance", "r1"))
    assert result.messages == [
        {
            "recipient_id": "r1",
            "text": ACTION_FAILED_TEXT,
            "buttons": [{"title": "转人工", "payload": "/request_human"}],
        }
    ]
    stored = await store.events("r1")
    assert [e["event"] for e in stored].count("user") == 1
    assert stored == (await p.get_tracker("r1")).events
    assert stored[-1]["name"] == LISTEN
    # and the conversation carries on
    assert texts(await p.handle_message(UserMessage("/greet", "r1"))) == ["您好"]


class ActionServer:
    """A stand-in for ``rasa_sdk``'s server: POST /webhook, answers per action name."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append({"path": self.path, **body})
                name = body["next_action"]
                status, answer = {
                    "action_cx_balance": (
                        200,
                        {
                            "events": [
                                {
                                    "event": "slot",
                                    "timestamp": None,
                                    "name": "balance",
                                    "value": 88.5,
                                }
                            ],
                            "responses": [
                                {"response": "utter_balance_is", "amount": "88.50"},
                                {"text": "来自服务器"},
                            ],
                        },
                    ),
                    "action_cx_refuse": (400, {"error": "not now", "action_name": name}),
                    "action_cx_fail": (500, {"error": "boom"}),
                }.get(name, (404, {"error": f"No registered action found for name '{name}'."}))
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def action_server() -> Iterator[ActionServer]:
    server = ActionServer()
    yield server
    server.close()


async def test_action_server_protocol(built, action_server: ActionServer) -> None:  # type: ignore[no-untyped-def]
    executor = RemoteExecutor(
        action_server.url,
        timeout=5.0,
        names={"action_cx_balance", "action_cx_refuse", "action_cx_fail"},
    )
    p = MessageProcessor(*built, executor=executor)
    messages = await p.handle_message(
        UserMessage('/query_balance{"card_last4": "4321"}', "r2", metadata={"channel": "app"})
    )
    assert texts(messages) == ["尾号4321的余额是88.50元", "来自服务器"]
    assert (await p.get_tracker("r2")).get_slot("balance") == 88.5
    (request,) = action_server.requests
    assert request["path"] == "/webhook"
    assert request["next_action"] == "action_cx_balance"
    assert request["sender_id"] == "r2"
    assert request["version"].startswith("3.")
    tracker = request["tracker"]
    assert {
        "sender_id",
        "slots",
        "latest_message",
        "latest_event_time",
        "followup_action",
        "paused",
        "events",
        "latest_input_channel",
        "active_loop",
        "latest_action",
        "latest_action_name",
    } <= set(tracker)
    assert tracker["slots"]["card_last4"] == "4321"
    assert tracker["latest_message"]["intent"]["name"] == "query_balance"
    user = [e for e in tracker["events"] if e["event"] == "user"][-1]
    assert user["metadata"] == {"channel": "app"}
    assert request["domain"]["responses"]["utter_greet"] == [{"text": "您好"}]
    # the tracker an action server gets is one rasa_sdk can read
    from rasa_sdk.interfaces import Tracker

    assert Tracker.from_dict(tracker).get_slot("card_last4") == "4321"


async def test_action_server_errors(built, action_server: ActionServer) -> None:  # type: ignore[no-untyped-def]
    executor = RemoteExecutor(
        action_server.url + "/webhook",
        timeout=5.0,
        names={"action_cx_refuse", "action_cx_fail", "action_cx_human"},
    )
    p = MessageProcessor(*built, executor=executor)
    refused = await p.handle(UserMessage("/refuse", "r3"))  # 400: rejected, no failure text
    assert ACTION_FAILED_TEXT not in texts(refused.messages)
    assert any(e["event"] == "action_execution_rejected" for e in refused.events)
    assert texts(await p.handle_message(UserMessage("/break_it", "r3"))) == [ACTION_FAILED_TEXT]
    assert texts(await p.handle_message(UserMessage("/human", "r3"))) == [ACTION_FAILED_TEXT]
    assert [r["path"] for r in action_server.requests] == ["/webhook"] * 3
