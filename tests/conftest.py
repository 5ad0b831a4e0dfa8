"""Fixtures shared by the NLU test files.

``tiny_project``: a fresh three-intent project in ``tmp_path`` (trains in well under a second).
``tiny_model``: that project trained once per session (read-only for tests).
``shipped``: the repository's own config, domain and NLU data, copied to a temporary folder
and trained once per session (never into the repository's ``models/``).
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# tests/rasa_projects/ holds Rasa 3.x projects used as data by test_rasa_projects.py: their
# actions.py / actions/ must not be imported and their tests/ folders hold Rasa test stories.
collect_ignore = ["rasa_projects"]

TINY_FILES = {
    "config.yml": """\
language: zh
pipeline:
  - name: ChineseTextNormalizer
  - name: JiebaTokenizer
  - name: TfidfVectorsFeaturizer
    analyzer: word
  - name: TfidfVectorsFeaturizer
    analyzer: char
    max_ngram: 3
  - name: LogisticRegressionClassifier
  - name: RegexEntityExtractor
  - name: EntitySynonymMapper
  - name: EntityValueNormalizer
  - name: FallbackClassifier
    threshold: 0.3
    ambiguity_threshold: 0.05
policies: []
""",
    "domain.yml": """\
version: "3.1"
intents:
  - greet
  - query_balance
  - report_loss
entities:
  - card_last4
  - account_type
  - amount
""",
    "nlu_data/intents.yml": """\
version: "3.1"
nlu:
- intent: greet
  examples: |
    - 你好
    - 您好
    - 早上好
    - 嗨 在吗
    - 哈喽
    - 你好呀 客服
- intent: query_balance
  examples: |
    - 查下尾号[1234](card_last4)的余额
    - 我[工资卡]{"entity": "account_type", "value": "debit_card"}还有多少钱
    - 查余额
    - 余额多少
    - 帮我查一下[信用卡]{"entity": "account_type", "value": "credit_card"}余额
    - 卡里还剩多少钱
""",
    "nlu_data/report_loss.yml": """\
version: "3.1"
nlu:
- intent: report_loss
  examples: |
    - 我的卡丢了
    - 挂失[信用卡]{"entity": "account_type", "value": "credit_card"}
    - 卡被偷了
    - 我要挂失
    - 钱包丢了卡也没了
    - 帮我冻结[储蓄卡]{"entity": "account_type", "value": "debit_card"}
""",
    "nlu_data/entities.yml": """\
version: "3.1"
nlu:
- synonym: debit_card
  examples: |
    - 储蓄卡
    - 工资卡
- synonym: credit_card
  examples: |
    - 信用卡
- lookup: account_type
  examples: |
    - 储蓄卡
    - 工资卡
    - 信用卡
- regex: card_last4
  examples: |
    - 尾号(?P<value>\\d{4})(?!\\d)
- regex: amount
  examples: |
    - (?P<value>\\d+(?:\\.\\d+)?[万千]?)\\s*(?=元|块)
""",
    "nlu_data/userdict.txt": "冻结卡 3000\n",
    "tests/data/nlu_test.yml": """\
version: "3.1"
nlu:
- intent: greet
  examples: |
    - 你好啊
    - 嗨
- intent: query_balance
  examples: |
    - 查一下尾号[5678](card_last4)的余额
    - 我[储蓄卡]{"entity": "account_type", "value": "debit_card"}余额多少
- intent: report_loss
  examples: |
    - 卡丢了 挂失
""",
}


def write_tiny_project(root: Path) -> Path:
    for name, text in TINY_FILES.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


@dataclass(frozen=True)
class Trained:
    root: Path
    archive: Path
    model: object  # bot.model.LoadedModel


def _train(root: Path) -> Trained:
    from bot.model import load_model
    from bot.project import Project
    from bot.train import train

    result = train(Project(root))
    assert not result.skipped
    return Trained(root, result.archive, load_model(result.archive))


@pytest.fixture
def tiny_project(tmp_path: Path) -> Path:
    return write_tiny_project(tmp_path / "tiny")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    return _train(write_tiny_project(tmp_path_factory.mktemp("tiny_model")))


@pytest.fixture(scope="session")
def shipped(tmp_path_factory: pytest.TempPathFactory) -> Trained:
    root = tmp_path_factory.mktemp("shipped")
    for name in ("config.yml", "domain.yml"):
        shutil.copy(REPO / name, root / name)
    shutil.copytree(REPO / "nlu_data", root / "nlu_data")
    shutil.copytree(REPO / "sentiment", root / "sentiment")
    shutil.copytree(REPO / "tests" / "data", root / "tests" / "data")
    return _train(root)


# --- dialogue engine tests -------------------------------------------------------------------


@pytest.fixture
def dialogue(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Factory ``(domain_yaml, data_yaml="", policies=None) -> (Domain, PolicyEnsemble)``: a
    domain from YAML text and policies trained on the stories/rules YAML text. ``policies`` is
    a list of ``(name, options)``; by default Rule, Memoization and Sklearn policies."""
    import textwrap

    import yaml

    from bot.config import ComponentSpec
    from bot.core.policies.ensemble import PolicyEnsemble
    from bot.domain import parse_domain
    from bot.training.story_graph import flatten
    from bot.training.story_reader import read_story_file

    def build(domain_yaml: str, data_yaml: str = "", policies: list | None = None):  # type: ignore[no-untyped-def]
        domain = parse_domain(yaml.safe_load(textwrap.dedent(domain_yaml)), Path("domain.yml"))
        path = tmp_path / f"data_{len(list(tmp_path.glob('data_*.yml')))}.yml"
        path.write_text(textwrap.dedent(data_yaml) or "version: '3.1'\n", encoding="utf-8")
        data, problems = read_story_file(path)
        assert not [p for p in problems if p.level == "error"], problems
        specs = [ComponentSpec(n, dict(o)) for n, o in policies] if policies else []
        ensemble = PolicyEnsemble.from_specs(tuple(specs))
        ensemble.train(flatten(data.stories), flatten(data.rules), domain)
        return domain, ensemble

    return build
