"""Small helpers for the NLU component tests: training data from inline NLU YAML and a
pipeline built from a config dict through the public API."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from bot.config import parse_config
from bot.nlu.pipeline import NLUPipeline
from bot.training import read_nlu_file
from bot.training.data import TrainingData


def nlu_data(tmp_path: Path, yaml_text: str, name: str = "nlu.yml") -> TrainingData:
    path = tmp_path / name
    path.write_text('version: "3.1"\nnlu:\n' + textwrap.dedent(yaml_text), encoding="utf-8")
    data = read_nlu_file(path)
    assert not data.problems, data.problems
    return data


def build(
    pipeline: list[dict[str, Any]], root: Path | None = None, language: str = "zh"
) -> NLUPipeline:
    config = parse_config({"language": language, "pipeline": pipeline}, Path("config.yml"))
    return NLUPipeline.from_config(config, root)


def trained(
    pipeline: list[dict[str, Any]],
    data: TrainingData,
    root: Path | None = None,
    language: str = "zh",
) -> NLUPipeline:
    nlu = build(pipeline, root, language)
    nlu.train(data)
    return nlu


def round_trip(nlu: NLUPipeline, tmp_path: Path) -> NLUPipeline:
    folder = tmp_path / "model_nlu"
    nlu.persist(folder)
    return NLUPipeline.load(folder)


ZH_ENTITIES = """\
- intent: query_balance
  examples: |
    - 查下尾号[1234](card_last4)的余额
    - 尾号[5678](card_last4)那张卡还有多少钱
    - 我的[工资卡]{"entity": "account_type", "value": "debit_card"}余额
    - [信用卡]{"entity": "account_type", "value": "credit_card"}还能刷多少
    - 看看[储蓄卡]{"entity": "account_type", "value": "debit_card"}里还有钱吗
    - 卡号后四位[4321](card_last4)查余额
    - 帮我查[信用卡]{"entity": "account_type", "value": "credit_card"}额度
    - 余额多少
    - 查一下余额
- intent: transfer
  examples: |
    - 从[上海]{"entity": "city", "role": "from"}转到[北京]{"entity": "city", "role": "to"}
    - 把钱从[广州]{"entity": "city", "role": "from"}汇到[深圳]{"entity": "city", "role": "to"}
    - 从[北京]{"entity": "city", "role": "from"}转账到[上海]{"entity": "city", "role": "to"}
    - 从[深圳]{"entity": "city", "role": "from"}转到[广州]{"entity": "city", "role": "to"}
    - 从[杭州]{"entity": "city", "role": "from"}汇款到[南京]{"entity": "city", "role": "to"}
    - 从[南京]{"entity": "city", "role": "from"}转到[杭州]{"entity": "city", "role": "to"}
    - 转账
    - 我要汇款
- intent: greet
  examples: |
    - 你好
    - 您好
    - 早上好
    - 在吗
- synonym: debit_card
  examples: |
    - 工资卡
    - 储蓄卡
- regex: card_last4
  examples: |
    - \\d{4}
"""
