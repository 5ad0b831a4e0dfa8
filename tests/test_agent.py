"""The assembled assistant: a trained model (NLU, policies, domain) with the stores and the
custom-action executor of ``endpoints.yml``."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import write_tiny_project

from bot.agent import Agent, create_executor
from bot.core.actions.custom import InProcessExecutor, RemoteExecutor
from bot.core.messages import UserMessage
from bot.core.tracker_store import InMemoryTrackerStore, SQLTrackerStore
from bot.endpoints import read_endpoints
from bot.errors import ConfigError, ModelNotFoundError
from bot.project import Project
from bot.train import train

# The engine's built-in utter_action_failed (bot/resources/responses/engine.yml)
ACTION_FAILED_TEXT = (
    "抱歉，系统暂时无法完成您的请求，请稍后再试。如需帮助，可以点击“转人工”由人工客服为您服务。"
)

DOMAIN = """\
version: "3.1"
intents: [greet, query_balance, report_loss]
entities: [card_last4, account_type, amount]
slots:
  customer_id:
    type: any
    influence_conversation: false
    mappings: [{type: custom}]
  card_last4:
    type: text
    influence_conversation: false
    mappings: [{type: from_entity, entity: card_last4}]
actions: [action_agent_balance]
responses:
  utter_greet: [{text: "您好{customer_id}"}]
  utter_loss: [{text: "请拨打热线挂失尾号{card_last4}的卡"}]
"""

RULES = """\
version: "3.1"
rules:
- rule: greet
  steps:
  - intent: greet
  - action: utter_greet
- rule: balance
  steps:
  - intent: query_balance
  - action: action_agent_balance
- rule: loss
  steps:
  - intent: report_loss
  - action: utter_loss
"""

ACTIONS = """\
from rasa_sdk import Action


class AgentBalance(Action):
    def name(self):
        return "action_agent_balance"

    def run(self, dispatcher, tracker, domain):
        who = tracker.get_slot("customer_id") or "访客"
        dispatcher.utter_message(text=f"{who}：尾号{tracker.get_slot('card_last4')}余额100元")
        return []
"""


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = write_tiny_project(tmp_path_factory.mktemp("agent") / "bot")
    (root / "domain.yml").write_text(DOMAIN, encoding="utf-8")
    (root / "stories").mkdir()
    (root / "stories" / "rules.yml").write_text(RULES, encoding="utf-8")
    result = train(Project(root))
    assert result.rules == 3
    return root


@pytest.fixture
def project(trained: Path, tmp_path: Path) -> Project:
    root = tmp_path / "bot"
    shutil.copytree(trained, root)
    return Project(root)


@pytest.fixture
def actions_package(project: Project, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The project's own ``actions/`` package, imported as ``actions`` for this test only
    (the repository has an ``actions`` package too)."""
    package = project.root / "actions"
    package.mkdir()
    (package / "__init__.py").write_text(ACTIONS, encoding="utf-8")
    monkeypatch.setattr(sys, "path", list(sys.path))
    saved = {
        name: mod
        for name, mod in sys.modules.items()
        if name == "actions" or name.startswith("actions.")
    }
    for name in saved:
        del sys.modules[name]
    yield package
    for name in [n for n in sys.modules if n == "actions" or n.startswith("actions.")]:
        del sys.modules[name]
    sys.modules.update(saved)


def memory(project: Project) -> None:
    (project.root / "endpoints.yml").write_text(
        "tracker_store:\n  type: memory\n", encoding="utf-8"
    )


async def test_text_goes_through_nlu_policies_and_responses(project: Project) -> None:
    memory(project)
    agent = Agent.load(project, use_executor=False)
    assert isinstance(agent.processor.tracker_store, InMemoryTrackerStore)
    assert await agent.handle_text("你好", "a") == [{"recipient_id": "a", "text": "您好"}]
    assert await agent.handle_text("我的卡丢了 尾号4321", "a") == [
        {"recipient_id": "a", "text": "请拨打热线挂失尾号4321的卡"}
    ]
    result = await agent.handle(UserMessage("/greet", "a", customer_id="C1001"))
    assert result.parse_data["intent"]["name"] == "greet"
    assert [m["text"] for m in result.messages] == ["您好C1001"]


async def test_in_process_actions_package(project: Project, actions_package: Path) -> None:
    memory(project)
    agent = Agent.load(project)
    assert isinstance(agent.processor.executor, InProcessExecutor)
    assert "action_agent_balance" in agent.processor.executor.names()
    replies = await agent.handle_text("查下尾号1234的余额", "b", customer_id="C1001")
    assert replies == [{"recipient_id": "b", "text": "C1001：尾号1234余额100元"}]


async def test_unreachable_action_endpoint(project: Project) -> None:
    (project.root / "endpoints.yml").write_text(
        "tracker_store: {type: memory}\n"
        "action_endpoint:\n  url: http://127.0.0.1:9/webhook\n  timeout: 2\n",
        encoding="utf-8",
    )
    agent = Agent.load(project)
    assert isinstance(agent.processor.executor, RemoteExecutor)
    assert agent.processor.executor.names() == {"action_agent_balance"}
    replies = await agent.handle_text("查余额", "c")
    assert replies[0]["text"] == ACTION_FAILED_TEXT
    assert replies[0]["buttons"] == [{"title": "转人工", "payload": "/request_human"}]
    tracker = await agent.processor.get_tracker("c")
    assert tracker.latest_message["intent"]["name"] == "query_balance"


async def test_default_store_is_sqlite_under_the_project_and_survives_a_restart(
    project: Project,
) -> None:
    agent = Agent.load(project, use_executor=False)
    store = agent.processor.tracker_store
    assert isinstance(store, SQLTrackerStore)
    try:
        await agent.handle_text("/report_loss", "d")
        await agent.handle_text("/greet", "d", customer_id="C7")
    finally:
        await store.close()
    assert (project.root / "data" / "bankbot.db").is_file()
    again = Agent.load(project, use_executor=False)
    try:
        tracker = await again.processor.get_tracker("d")
        assert [e["text"] for e in tracker.events if e["event"] == "bot"] == [
            "请拨打热线挂失尾号的卡",
            "您好C7",
        ]
    finally:
        await again.processor.tracker_store.close()


async def test_explicit_model_path_store_and_seed(project: Project) -> None:
    archive = next((project.root / "models").glob("*.tar.gz"))
    store = InMemoryTrackerStore()
    agent = Agent.load(project, archive, tracker_store=store, use_executor=False, seed=1)
    assert agent.model.path == archive
    assert agent.processor.tracker_store is store
    await agent.handle_text("你好", "e")
    assert await store.count("e") > 0


def test_no_model_is_a_clear_error(tmp_path: Path) -> None:
    root = write_tiny_project(tmp_path / "empty")
    with pytest.raises(ModelNotFoundError, match="bot train"):
        Agent.load(Project(root))


def test_endpoints(project: Project) -> None:
    assert read_endpoints(project) == {}
    assert create_executor(project, {}, set()) is None
    (project.root / "endpoints.yml").write_text("- not a mapping\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="expected a mapping"):
        read_endpoints(project)
    (project.root / "endpoints.yml").write_text("a: [\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="invalid YAML"):
        read_endpoints(project)
    remote = create_executor(project, {"action_endpoint": {"url": "http://x:5055"}}, {"a"})
    assert isinstance(remote, RemoteExecutor)
    assert remote.url == "http://x:5055/webhook"
    assert remote.timeout == 1.5
