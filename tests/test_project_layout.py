"""Rasa 3.x projects train and run unchanged: ``data/`` files mixing nlu, stories, rules and
responses, a ``domain/`` folder, Rasa's path flags, default pipeline and policies, Rasa's
policy names, retrieval intents, ``tests/test_stories.yml`` and ``actions.py`` at the root.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.agent import Agent, create_executor, import_actions
from bot.cli.main import main
from bot.config import (
    RASA_DEFAULT_PIPELINE,
    ComponentSpec,
    describe_defaults,
    load_config,
    parse_config,
)
from bot.core.actions.custom import InProcessExecutor, RemoteExecutor
from bot.core.messages import UserMessage
from bot.core.policies.ensemble import PolicyEnsemble
from bot.core.policies.registry import UnexpecTEDIntentPolicy, policy_class
from bot.core.policies.sklearn_policy import SklearnPolicy
from bot.domain import load_domain, load_project_domain
from bot.endpoints import read_endpoints
from bot.errors import ConfigError, ModelNotFoundError
from bot.model import core_fingerprint, load_model, training_fingerprint
from bot.project import Project
from bot.training.nlu_yaml import check_data_file
from bot.validation import validate_project

# A Chinese assistant as a Rasa book writes it: no pipeline or policies, domain split in two.
RASA_PROJECT = {
    "config.yml": "recipe: default.v1\nlanguage: zh\npipeline:\npolicies:\n",
    "domain/intents.yml": """\
version: "3.1"
intents:
  - greet
  - goodbye
  - ask_time
  - chitchat:
      is_retrieval_intent: true
""",
    "domain/responses.yml": """\
version: "3.1"
responses:
  utter_greet:
  - text: 您好
  utter_goodbye:
  - text: 再见
actions:
  - action_layout_time
""",
    "data/nlu.yml": """\
version: "3.1"
nlu:
- intent: greet
  examples: |
    - 你好
    - 您好
    - 早上好
    - 嗨
- intent: goodbye
  examples: |
    - 再见
    - 拜拜
    - 下次聊
- intent: ask_time
  examples: |
    - 现在几点
    - 几点了
    - 告诉我时间
""",
    "data/chitchat.yml": """\
version: "3.1"
nlu:
- intent: chitchat/ask_name
  examples: |
    - 你叫什么名字
    - 你是谁
responses:
  utter_chitchat/ask_name:
  - text: 我是小助手
rules:
- rule: chitchat
  steps:
  - intent: chitchat
  - action: utter_chitchat
""",
    "data/stories.yml": """\
version: "3.1"
stories:
- story: greet
  steps:
  - intent: greet
  - action: utter_greet
rules:
- rule: bye
  steps:
  - intent: goodbye
  - action: utter_goodbye
- rule: time
  steps:
  - intent: ask_time
  - action: action_layout_time
""",
    "actions.py": """\
from rasa_sdk import Action


class ActionLayoutTime(Action):
    def name(self):
        return "action_layout_time"

    def run(self, dispatcher, tracker, domain):
        dispatcher.utter_message(text="ten o'clock")
        return []
""",
    "tests/test_stories.yml": """\
version: "3.1"
stories:
- story: greet and ask the time
  steps:
  - user: |
      你好
    intent: greet
  - action: utter_greet
  - user: |
      现在几点
    intent: ask_time
  - action: action_layout_time
""",
}


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


@pytest.fixture
def own_actions(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``actions`` imported from the test's project (the repository has an ``actions``
    package too), for this test only."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    saved = {n: m for n, m in sys.modules.items() if n == "actions" or n.startswith("actions.")}
    for name in saved:
        del sys.modules[name]
    yield
    for name in [n for n in sys.modules if n == "actions" or n.startswith("actions.")]:
        del sys.modules[name]
    sys.modules.update(saved)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Rasa project trained once by ``bot train`` (read-only for the tests)."""
    root = write(tmp_path_factory.mktemp("rasa") / "proj", RASA_PROJECT)
    assert main(["train", "--project", str(root)]) == 0
    return root


# --- the whole project ---------------------------------------------------------------------


def test_train_prints_the_defaults_it_used(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write(tmp_path / "p", RASA_PROJECT)
    assert main(["train", "--project", str(root)]) == 0
    out = capsys.readouterr().out
    assert "no pipeline: using the default for language 'zh'" in out
    assert "  - LogisticRegressionClassifier (C: 50)" in out
    assert "no policies: using Rasa's default policies" in out
    assert "  - TEDPolicy (max_history: 5, epochs: 100, constrain_similarities: True)" in out
    # each substitution once
    assert out.count("TEDPolicy: runs as SklearnPolicy") == 1
    assert out.count("UnexpecTEDIntentPolicy: accepted") == 1
    assert "Trained on 12 examples of 4 intents" in out


def test_merged_domain_and_stories_of_data_files_are_in_the_model(trained: Path) -> None:
    model = load_model(trained / "models")
    assert model.domain is not None and model.core is not None
    assert model.domain.responses["utter_chitchat/ask_name"] == [{"text": "我是小助手"}]
    assert {"utter_greet", "utter_goodbye", "utter_chitchat", "action_layout_time"} <= set(
        model.domain.action_names
    )
    assert model.domain.retrieval_intents == frozenset({"chitchat"})
    assert model.meta.training["stories"] == 1 and model.meta.training["rules"] == 3


def test_rasa_test_stories_in_tests_folder_run(
    trained: Path, tmp_path: Path, own_actions: None, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "results"
    assert main(["test", "core", "--project", str(trained), "--out", str(out)]) == 0
    report = json.loads((out / "story_report.json").read_text(encoding="utf-8"))
    assert (report["total"], report["passed"]) == (1, 1)
    assert report["stories"][0]["source"] == "tests/test_stories.yml:3"
    # 'bot test': no NLU test set in a Rasa project, the test stories still run
    assert main(["test", "--project", str(trained), "--out", str(tmp_path / "all")]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert "NLU evaluation skipped" in printed and "1/1 test stories passed" in printed


async def test_actions_py_at_the_root_runs_in_process(trained: Path, own_actions: None) -> None:
    agent = Agent.load(Project(trained))
    assert isinstance(agent.processor.executor, InProcessExecutor)
    assert "action_layout_time" in agent.processor.executor.names()
    messages = await agent.handle_text("现在几点", "s1")
    assert [m.get("text") for m in messages] == ["ten o'clock"]


def test_action_endpoint_of_endpoints_flag_is_used(
    trained: Path, tmp_path: Path, own_actions: None
) -> None:
    endpoints = tmp_path / "elsewhere.yml"
    endpoints.write_text(
        "action_endpoint:\n  url: http://127.0.0.1:5055/webhook\n", encoding="utf-8"
    )
    project = Project.find(trained, endpoints=endpoints)
    executor = create_executor(project, read_endpoints(project), set())
    assert isinstance(executor, RemoteExecutor)
    assert executor.url == "http://127.0.0.1:5055/webhook"
    # without the flag: the root's actions.py in-process
    assert isinstance(
        create_executor(Project(trained), read_endpoints(Project(trained)), set()),
        InProcessExecutor,
    )


def test_broken_actions_py_is_one_line(tmp_path: Path, own_actions: None) -> None:
    root = write(tmp_path / "p", {"config.yml": "", "actions.py": "def run(:\n    pass\n"})
    with pytest.raises(ConfigError) as info:
        import_actions(Project(root), "actions")
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"{root / 'actions.py'}:1: ")


# --- data files ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        (
            "version: '3.1'\nstorys:\n- story: a\n",
            2,
            "unknown top-level key 'storys'. Fix: did you mean 'stories'?",
        ),
        (
            "nlu: []\nintents: [greet]\n",
            2,
            "unknown top-level key 'intents'. Fix: move 'intents:' to the domain",
        ),
        ("version: '3.1'\n", 1, "the file has none of nlu, stories, rules, responses"),
        ("nlu:\n- intent: a\n  examples: |\n    - x\n bad: [\n", 5, "invalid YAML"),
        ("- a\n- b\n", 1, "not a mapping"),
    ],
)
def test_a_bad_data_file_stops_training_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, line: int, fragment: str
) -> None:
    root = write(tmp_path / "p", {**RASA_PROJECT, "data/extra.yml": text})
    assert main(["train", "--project", str(root)]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith(f"error: data/extra.yml:{line}: ") and fragment in err
    assert "Traceback" not in err


def test_each_reader_ignores_the_other_readers_keys(tmp_path: Path) -> None:
    root = write(tmp_path / "p", RASA_PROJECT)
    for path in Project(root).data_files():
        assert check_data_file(path) == []
    problems = validate_project(Project(root), min_examples=2)
    assert [p for p in problems if p.level == "error"] == []


def test_empty_data_folder_and_missing_domain_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write(tmp_path / "p", {"config.yml": "language: zh\n", "domain.yml": "intents: [a]\n"})
    (root / "data").mkdir()
    assert main(["train", "--project", str(root)]) == 1
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "error: no training data files in data/. Fix: put YAML files with 'nlu:', 'stories:' "
        "or 'rules:' under data/, or pass --data PATH"
    )
    (root / "domain.yml").unlink()
    write(root, {"data/nlu.yml": RASA_PROJECT["data/nlu.yml"]})
    assert main(["train", "--project", str(root)]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("error: domain.yml does not exist. Fix: create domain.yml")


def test_duplicate_response_in_data_and_domain_is_an_error(tmp_path: Path) -> None:
    root = write(
        tmp_path / "p",
        {
            **RASA_PROJECT,
            "data/more.yml": "responses:\n  utter_greet:\n  - text: 嗨\n",
        },
    )
    with pytest.raises(
        ConfigError,
        match=r"^data/more.yml:2: response 'utter_greet' is also "
        r"defined in domain/responses.yml:3\. Fix: keep one",
    ):
        load_project_domain(Project(root))
    problems = validate_project(Project(root))
    (problem,) = [p for p in problems if p.level == "error"]
    assert str(problem.source) == "data/more.yml:2"


# --- the domain --------------------------------------------------------------------------------


def test_domain_folder_is_merged(tmp_path: Path) -> None:
    folder = write(
        tmp_path / "domain",
        {
            "a.yml": "intents: [greet, bye]\nentities: [card]\nslots:\n  card:\n    type: text\n"
            "session_config:\n  session_expiration_time: 5\n",
            "sub/b.yaml": "intents: [bye, thank]\nresponses:\n  utter_bye:\n  - text: 再见\n"
            "forms:\n  f:\n    required_slots: [card]\n",
        },
    )
    domain = load_domain(folder)
    assert domain.intents == ("greet", "bye", "thank")
    assert set(domain.slots) == {"card", "requested_slot"}
    assert domain.session_config.expiration_minutes == 5
    assert "f" in domain.forms and "utter_bye" in domain.responses


@pytest.mark.parametrize(
    ("second", "message"),
    [
        ("slots:\n  card:\n    type: text\n", r"b.yml:2: slot 'card' is also defined in .*a.yml:2"),
        ("session_config:\n  session_expiration_time: 9\n", "'session_config' is also set"),
        ("responses:\n  utter_x/:\n  - text: x\n", "not a retrieval response name"),
        ("intents:\n  - a: {use_entity: [x]}\n", "intent 'a' has options"),
        ("intents: [\n", r"b.yml:2: invalid YAML"),
    ],
)
def test_domain_folder_errors_name_the_file(tmp_path: Path, second: str, message: str) -> None:
    folder = write(
        tmp_path / "domain",
        {"a.yml": "slots:\n  card:\n    type: text\nsession_config: {}\n", "b.yml": second},
    )
    with pytest.raises(ConfigError, match=message):
        load_domain(folder, root=tmp_path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("forms:\n  f: 3\n", "form 'f' needs 'required_slots"),
        ("session_config: 5\n", "'session_config' must be a mapping"),
        ("session_config: {session_expiration_time: abc}\n", "session_expiration_time is 'abc'"),
        ("slots:\n  a: {type: text, mappings: 3}\n", "'mappings' must be a list"),
        ("slots:\n  a: {type: float, min_value: x}\n", "min_value is 'x'"),
        ("intents:\n- {}\n", "cannot read intents entry"),
    ],
)
def test_malformed_domain_values_are_config_errors(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "domain.yml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_domain(tmp_path / "domain.yml")


def test_empty_domain_folder_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "domain").mkdir()
    with pytest.raises(ConfigError, match=r"domain folder holds no \.yml files"):
        load_domain(tmp_path / "domain")


def test_retrieval_intents(tmp_path: Path) -> None:
    path = (
        write(
            tmp_path,
            {
                "domain.yml": """\
intents:
  - greet:
      use_entities: []
  - faq:
      is_retrieval_intent: true
  - chitchat
responses:
  utter_chitchat/ask_name:
  - text: 我是小助手
  utter_chitchat/ask_weather:
  - text: 不知道
  utter_greet:
  - text: 您好
"""
            },
        )
        / "domain.yml"
    )
    domain = load_domain(path)
    assert domain.retrieval_intents == frozenset({"faq", "chitchat"})
    assert domain.intent_properties == {"greet": {"use_entities": []}}
    names = domain.action_names
    assert {"utter_chitchat", "respond_chitchat", "utter_faq", "utter_greet"} <= set(names)
    assert "utter_chitchat/ask_name" not in names
    assert set(domain.retrieval_responses("chitchat")) == {
        "utter_chitchat/ask_name",
        "utter_chitchat/ask_weather",
    }
    assert domain.retrieval_intent_of("utter_chitchat") == "chitchat"
    assert domain.retrieval_intent_of("respond_faq") == "faq"
    assert domain.retrieval_intent_of("utter_greet") is None


def test_retrieval_intent_examples_validate_against_the_domain_intent(tmp_path: Path) -> None:
    root = write(tmp_path / "p", RASA_PROJECT)
    problems = validate_project(Project(root), min_examples=2)
    assert not [p for p in problems if "chitchat" in p.message and p.level == "error"]
    write(
        root,
        {
            "data/more.yml": "nlu:\n- intent: chitchat/ask_age\n  examples: |\n"
            "    - 你几岁\n    - 你多大\n"
        },
    )
    problems = validate_project(Project(root), min_examples=2)
    assert [
        (p.level, str(p.source)) for p in problems if "utter_chitchat/ask_age" in p.message
    ] == [("warning", "data/more.yml:4")]
    # an undeclared retrieval intent is reported under its domain name, once
    write(root, {"domain/intents.yml": "intents: [greet, goodbye, ask_time]\n"})
    problems = validate_project(Project(root), min_examples=2)
    assert [
        p.message
        for p in problems
        if "'chitchat'" in p.message and p.level == "error" and "intent" in p.message
    ][:1] == ["intent 'chitchat' is not declared in domain.yml"]


# --- config defaults -------------------------------------------------------------------------


def test_zh_default_pipeline_uses_project_files_only_when_present(tmp_path: Path) -> None:
    config = parse_config({"language": "zh"}, tmp_path / "config.yml")
    names = [s.name for s in config.pipeline]
    assert names[:2] == ["ChineseTextNormalizer", "JiebaTokenizer"]
    assert "SentimentAnalyzer" not in names
    assert config.pipeline[1].options == {}
    assert config.defaulted == ("pipeline", "policies")
    write(tmp_path, {"nlu_data/userdict.txt": "挂失 100\n", "sentiment/train.yml": "x: 1\n"})
    config = parse_config({"language": "zh", "pipeline": []}, tmp_path / "config.yml")
    assert config.pipeline[1].options == {"dictionary_path": "nlu_data/userdict.txt"}
    assert config.pipeline[-1] == ComponentSpec(
        "SentimentAnalyzer", {"data_path": "sentiment/train.yml"}
    )


ZH_DEFAULT_PROJECT = {
    "config.yml": "language: zh\npipeline:\npolicies:\n",
    "domain.yml": """version: "3.1"
intents: [greet, ask_weather, chitchat]
entities: [address]
responses:
  utter_greet: [{text: 你好}]
  utter_weather: [{text: "{address}的天气晴"}]
  utter_chitchat/whoyouare: [{text: 我是小助手}]
  utter_chitchat/ask_age: [{text: 我还很年轻}]
slots:
  address: {type: text, mappings: [{type: from_entity, entity: address}]}
""",
    "data/nlu.yml": """version: "3.1"
nlu:
- intent: greet
  examples: |
    - 你好
    - 您好
    - 早上好
    - 嗨
- intent: ask_weather
  examples: |
    - [上海](address)的天气
    - [北京](address)天气怎么样
    - 查一下[广州](address)的天气
    - [深圳](address)今天天气
    - [杭州](address)会下雨吗
    - [南京](address)天气如何
    - 我想知道[成都](address)的天气
    - [武汉](address)热不热
- intent: chitchat/whoyouare
  examples: |
    - 你是谁
    - 你是什么
    - 你是机器人吗
    - 介绍一下你自己
- intent: chitchat/ask_age
  examples: |
    - 你几岁了
    - 你多大了
    - 你的年龄是多少
    - 你多少岁
rules:
- rule: weather
  steps:
  - intent: ask_weather
  - action: utter_weather
- rule: chitchat
  steps:
  - intent: chitchat
  - action: utter_chitchat
""",
}


def test_zh_default_pipeline_learns_entities_and_retrieval_intents(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An empty pipeline in a zh project still learns [上海](address) annotations (CRF) and
    answers retrieval intents (ResponseSelector), as Rasa's default would."""
    root = write(tmp_path, ZH_DEFAULT_PROJECT)
    assert main(["train", "--project", str(root)]) == 0
    out = capsys.readouterr().out
    assert "CRFEntityExtractor" in out and "ResponseSelector" in out
    agent = Agent.load(Project(root), use_executor=False)
    parsed = agent.model.nlu.parse("厦门的天气")
    assert [(e["entity"], e["value"]) for e in parsed["entities"]] == [("address", "厦门")]
    assert parsed["response_selector"]["all_retrieval_intents"] == ["chitchat"]

    async def chat() -> list[list[dict[str, Any]]]:
        return [await agent.handle_text(text, "u1") for text in ("厦门的天气", "你是谁")]

    weather, who = asyncio.run(chat())
    assert [m["text"] for m in weather] == ["厦门的天气晴"]
    assert [m["text"] for m in who] == ["我是小助手"]


def test_other_languages_get_rasas_default_pipeline(tmp_path: Path) -> None:
    # the en components train once the NLU registry names them (branch nlu)
    config = parse_config({}, tmp_path / "config.yml")
    assert config.language == "en"  # Rasa's default language
    assert [s.as_dict() for s in config.pipeline] == [
        {"name": "WhitespaceTokenizer"},
        {"name": "RegexFeaturizer"},
        {"name": "LexicalSyntacticFeaturizer"},
        {"name": "CountVectorsFeaturizer"},
        {"name": "CountVectorsFeaturizer", "analyzer": "char_wb", "min_ngram": 1, "max_ngram": 4},
        {"name": "DIETClassifier", "epochs": 100},
        {"name": "EntitySynonymMapper"},
        {"name": "ResponseSelector", "epochs": 100},
        {"name": "FallbackClassifier", "threshold": 0.3, "ambiguity_threshold": 0.1},
    ]
    assert parse_config({"language": "de"}, tmp_path / "c.yml").pipeline == RASA_DEFAULT_PIPELINE
    assert [s.name for s in config.policies] == [
        "MemoizationPolicy",
        "RulePolicy",
        "UnexpecTEDIntentPolicy",
        "TEDPolicy",
    ]


def test_given_pipeline_and_policies_are_kept(tmp_path: Path) -> None:
    path = (
        write(
            tmp_path,
            {
                "config.yml": "language: zh\npipeline:\n- name: JiebaTokenizer\n"
                "policies:\n- name: RulePolicy\n"
            },
        )
        / "config.yml"
    )
    config = load_config(path)
    assert [s.name for s in config.pipeline] == ["JiebaTokenizer"]
    assert [s.name for s in config.policies] == ["RulePolicy"]
    assert config.defaulted == () and describe_defaults(config) == []


def test_config_yaml_error_is_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, {"config.yml": "language: zh\npipeline: [\n"}) / "config.yml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "\n" not in str(info.value) and f"{path}:3: invalid YAML" in str(info.value)


# --- policies ------------------------------------------------------------------------------------


def test_rasa_policy_names() -> None:
    ensemble = PolicyEnsemble.from_specs(
        (
            ComponentSpec("MemoizationPolicy"),
            ComponentSpec("AugmentedMemoizationPolicy", {"max_history": 3}),
            ComponentSpec("RulePolicy", {"restrict_rules": False}),
            ComponentSpec("TEDPolicy", {"max_history": 8, "epochs": 100}),
            ComponentSpec("UnexpecTEDIntentPolicy", {"epochs": 100}),
        )
    )
    ted = ensemble.policies[3]
    assert isinstance(ted, SklearnPolicy) and ted.config["max_history"] == 8
    assert "epochs" not in ted.config
    assert ensemble.notes() == [
        "RulePolicy: options not honoured: restrict_rules",
        "TEDPolicy: runs as SklearnPolicy (scikit-learn, no TensorFlow); options not "
        "honoured: epochs",
        "UnexpecTEDIntentPolicy: accepted; never predicts action_unlikely_intent; options "
        "not honoured: epochs",
    ]


def test_unexpected_intent_policy_abstains_and_persists(tmp_path: Path) -> None:
    from bot.core.tracker import DialogueStateTracker
    from bot.domain import Domain

    ensemble = PolicyEnsemble.from_specs((ComponentSpec("UnexpecTEDIntentPolicy"),))
    ensemble.train([], [], Domain())
    ensemble.persist(tmp_path / "core")
    (policy,) = PolicyEnsemble.load(tmp_path / "core").policies
    assert isinstance(policy, UnexpecTEDIntentPolicy)
    tracker = DialogueStateTracker("s", Domain())
    assert policy.predict(tracker, tracker.past_states(), Domain()) is None


def test_unknown_and_custom_policies_are_one_line() -> None:
    with pytest.raises(
        ConfigError,
        match=r"^unknown policy 'TedPolicy'\. Known policies: "
        r"AugmentedMemoizationPolicy, .*UnexpecTEDIntentPolicy$",
    ):
        policy_class("TedPolicy")
    with pytest.raises(
        ConfigError,
        match=r"policy 'my_policies.Custom' is a Python path: "
        r"custom Rasa policies .* do not run here",
    ):
        policy_class("my_policies.Custom")


# --- flags --------------------------------------------------------------------------------------


def test_rasa_flags_on_train(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    src = write(tmp_path / "src", RASA_PROJECT)
    root = tmp_path / "empty"
    root.mkdir()
    monkeypatch.chdir(tmp_path)  # relative flags are taken from the working directory
    args = [
        "train",
        "--project",
        str(root),
        "--config",
        "src/config.yml",
        "--domain",
        "src/domain",
        "--data",
        "src/data/nlu.yml",
        "src/data/chitchat.yml",
        "--data",
        "src/data/stories.yml",
        "--out",
        "built",
        "--fixed-model-name",
        "bank",
    ]
    assert main(args) == 0
    archive = tmp_path / "built" / "bank.tar.gz"
    assert archive.is_file() and "built/bank.tar.gz" in capsys.readouterr().out
    assert main(args) == 0 and "Nothing changed" in capsys.readouterr().out
    # a new story: trained again under the same name, and loaded fresh
    stories = src / "data" / "stories.yml"
    stories.write_text(
        stories.read_text(encoding="utf-8").replace(
            "rules:\n",
            """\
- story: bye
  steps:
  - intent: goodbye
  - action: utter_goodbye
rules:
""",
        ),
        encoding="utf-8",
    )
    before = load_model(archive).meta
    assert main(args) == 0
    after = load_model(archive).meta
    assert (before.training["stories"], after.training["stories"]) == (1, 2)
    assert after.training["nlu_reused"]  # the NLU part of a story change is not retrained
    assert load_model(tmp_path / "built").path == archive


def test_flags_build_the_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = write(tmp_path / "p", {"config.yml": "", "ep.yml": "{}\n", "cred.yml": "{}\n"})
    seen: dict[str, Any] = {}

    def fake_serve(project: Project, settings: Any, model: Path | None = None) -> None:
        seen.update(project=project, model=model)

    monkeypatch.setattr("bot.server.run.serve", fake_serve)
    for name in ("BOT_ENDPOINTS", "BOT_CREDENTIALS"):
        monkeypatch.setenv(name, "")  # 'bot run' sets them; removed again after the test
    monkeypatch.chdir(root)
    assert (
        main(
            [
                "run",
                "--endpoints",
                "ep.yml",
                "--credentials",
                "cred.yml",
                "--model",
                "models/x.tar.gz",
                "--port",
                "5099",
            ]
        )
        == 0
    )
    project = seen["project"]
    assert (project.endpoints_file, project.credentials_file) == (
        root / "ep.yml",
        root / "cred.yml",
    )
    assert seen["model"] == root / "models" / "x.tar.gz"
    # a server worker finds the project again from its folder: the same files
    again = Project.find(str(root))
    assert (again.endpoints_file, again.credentials_file) == (root / "ep.yml", root / "cred.yml")
    from bot.bank.factory import bank_config

    (root / "ep.yml").write_text("bank:\n  type: sandbox\n", encoding="utf-8")
    assert bank_config(root) == {"type": "sandbox"}  # in-process bank actions read it too


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--data", "nowhere"], "--data nowhere: no such file or folder"),
        (["train", "--domain", "nowhere.yml"], "--domain nowhere.yml: no such file"),
        (["train", "--fixed-model-name", "a/b"], "--fixed-model-name 'a/b'"),
        (["shell", "--config", "no.yml"], "--config no.yml: no such file"),
        (["test", "core", "--model", "config.yml"], "config.yml is not a model archive"),
    ],
)
def test_bad_flags_are_one_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    root = write(tmp_path / "p", RASA_PROJECT)
    monkeypatch.chdir(root)
    assert main(argv) == 1
    err = capsys.readouterr()
    assert message in err.err + err.out and "Traceback" not in err.err


def test_model_flag_takes_an_unpacked_folder(trained: Path) -> None:
    model = load_model(trained / "models")
    assert model.folder is not None
    assert load_model(model.folder).meta.fingerprint == model.meta.fingerprint
    with pytest.raises(ModelNotFoundError, match="no trained model in"):
        load_model(trained / "domain")


# --- fingerprints ---------------------------------------------------------------------------


def test_fingerprints_cover_every_data_file_and_the_domain_folder(tmp_path: Path) -> None:
    root = write(tmp_path / "p", RASA_PROJECT)
    project = Project(root)
    config = load_config(project.config_file)

    def prints() -> tuple[str, str]:
        return training_fingerprint(project, config), core_fingerprint(project, config)

    nlu, core = prints()
    # a rule added to a mixed file: the dialogue retrains, the NLU does not
    chit = root / "data" / "chitchat.yml"
    chit.write_text(
        chit.read_text(encoding="utf-8") + "- rule: r2\n  steps:\n  - intent: greet\n"
        "  - action: utter_greet\n",
        encoding="utf-8",
    )
    assert prints()[0] == nlu and prints()[1] != core
    nlu, core = prints()
    # an example in a nested data file: the NLU retrains
    write(root, {"data/more/extra.yaml": "nlu:\n- intent: greet\n  examples: |\n    - 嘿\n"})
    assert prints()[0] != nlu
    nlu, core = prints()
    # any file of the domain folder
    write(root, {"domain/sub/slots.yml": "slots:\n  x:\n    type: text\n"})
    assert prints() == (nlu, prints()[1]) and prints()[1] != core


def test_test_stories_default_to_ours_then_rasas(tmp_path: Path) -> None:
    root = write(tmp_path / "p", {"config.yml": "", "tests/test_stories.yml": "stories: []\n"})
    assert Project(root).test_stories_path == root / "tests"
    (root / "tests" / "stories").mkdir()
    assert Project(root).test_stories_path == root / "tests" / "stories"


def test_shell_runs_the_rasa_project(
    trained: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    own_actions: None,
) -> None:
    import io

    monkeypatch.setattr(sys, "stdin", io.StringIO("你好\n"))
    assert main(["shell", "--project", str(trained)]) == 0
    assert "🤖 您好" in capsys.readouterr().out


async def test_agent_message_from_rasa_project(trained: Path, own_actions: None) -> None:
    agent = Agent.load(Project(trained))
    result = await agent.handle(UserMessage("再见", "s2", "rest", {}, None))
    assert [m.get("text") for m in result.messages] == ["再见"]


def test_examples_written_as_text_items(tmp_path: Path) -> None:
    from bot.training.nlu_yaml import read_nlu_file

    path = tmp_path / "nlu.yml"
    path.write_text(
        "nlu:\n- intent: greet\n  examples:\n  - text: 你好\n    metadata: {a: 1}\n"
        "  - text: |\n      您好\n  - metadata: {}\n",
        encoding="utf-8",
    )
    data = read_nlu_file(path, "nlu.yml")
    assert [(e.text, str(e.source)) for e in data.examples] == [
        ("你好", "nlu.yml:4"),
        ("您好", "nlu.yml:6"),
    ]
    assert [str(p) for p in data.problems] == [
        "nlu.yml:8: error: empty example. Fix: remove the bare '-' line"
    ]


def test_markdown_training_data_is_named_not_ignored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write(
        tmp_path / "p",
        {
            "config.yml": "language: zh\n",
            "domain.yml": "intents: [a]\n",
            "data/nlu.md": "## intent:a\n- hi\n",
        },
    )
    assert main(["train", "--project", str(root)]) == 1
    assert "error: data/nlu.md: Markdown/JSON training data (Rasa 1.x/2.x) is not read" in (
        capsys.readouterr().err
    )
    write(root, {"data/nlu.yml": "nlu:\n- intent: a\n  examples: |\n    - x\n    - y\n"})
    problems = validate_project(Project(root))
    assert [(str(p.source), p.level) for p in problems if "Markdown" in p.message] == [
        ("data/nlu.md:1", "warning")
    ]
