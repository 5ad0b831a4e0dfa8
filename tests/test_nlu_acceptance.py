"""Acceptance figures of issue 3 on the shipped data (trained once per session)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bot.domain import load_domain
from bot.evaluation.nlu import NLUEvaluation, evaluate
from bot.nlu.normalizer import normalise
from bot.project import Project
from bot.train import load_training_data
from bot.training import TrainingData, read_nlu_file

REPO = Path(__file__).resolve().parents[1]
BIG_INTENTS = (
    "query_balance",
    "query_progress",
    "faq",
    "request_human",
    "complain",
    "report_loss",
    "out_of_scope",
)

# Knowledge topics of bank-domain.md → phrases that show an faq example asks about it
# ("a+b": both parts in one example). Every topic needs at least one faq example.
FAQ_TOPICS = {
    "open_account_documents": ("开户",),
    "forgot_login_password": ("登录密码", "登陆密码"),
    "reset_card_pin": ("取款密码", "交易密码", "pin", "卡+密码"),
    "card_lost_replacement": ("补办", "补卡"),
    "transfer_limit": ("限额",),
    "interbank_transfer_fee": ("跨行",),
    "transfer_arrival_time": ("到账",),
    "credit_card_apply": ("申请信用卡", "办信用卡", "信用卡申请"),
    "credit_limit_increase": ("提额", "调额", "额度+提"),
    "credit_card_billing_date": ("账单日",),
    "credit_card_installment": ("分期",),
    "credit_card_overdue": ("逾期",),
    "credit_card_annual_fee": ("年费",),
    "loan_apply_conditions": ("贷+条件", "贷+要求", "贷+能"),
    "loan_required_documents": ("贷+材料", "贷+资料", "贷+证明"),
    "mortgage_prepayment": ("提前还",),
    "wealth_redemption": ("赎回",),
    "wealth_risk_assessment": ("风险测评", "风险评估"),
    "deposit_insurance": ("存款保险",),
    "time_deposit_early_withdrawal": ("定期+提前",),
    "mobile_banking_register": ("注册", "开通手机银行"),
    "change_phone_number": ("手机号+换", "手机号+改"),
    "foreign_exchange": ("外汇", "美元", "购汇"),
    "branch_hours": ("营业",),
    "large_cash_withdrawal_appointment": ("大额",),
    "cardless_withdrawal": ("无卡",),
    "account_freeze_unfreeze": ("冻结",),
    "sms_notification": ("短信",),
    "elderly_services": ("老人", "老年"),
    "fraud_prevention": ("诈骗",),
    "ecny_wallet": ("数字人民币",),
    "social_security_card": ("社保卡",),
}


@pytest.fixture(scope="module")
def training() -> TrainingData:
    return load_training_data(Project(REPO))


@pytest.fixture(scope="module")
def test_data() -> TrainingData:
    return read_nlu_file(REPO / "tests" / "data" / "nlu_test.yml", "tests/data/nlu_test.yml")


@pytest.fixture(scope="module")
def result(shipped: Any, test_data: TrainingData) -> NLUEvaluation:
    return evaluate(shipped.model.nlu, test_data.examples)


def test_intent_accuracy(result: NLUEvaluation) -> None:
    assert result.accuracy >= 0.95, result.intent_errors()


def test_intent_macro_f1(result: NLUEvaluation) -> None:
    assert result.macro_f1 >= 0.93


def test_entity_f1(result: NLUEvaluation) -> None:
    assert result.entity_f1 >= 0.95, result.entity_errors()


def test_every_test_entity_type_is_found(result: NLUEvaluation) -> None:
    report = result.entity_report()
    for entity, row in report.items():
        if isinstance(row, dict) and "support" in row and entity != "micro avg":
            assert row["recall"] >= 0.8, (entity, row)


# sent only by buttons (the satisfaction rating after a human agent closes)
BUTTON_ONLY_INTENTS = {"rate_service"}


def test_test_set_size_and_coverage(test_data: TrainingData) -> None:
    domain = load_domain(REPO / "domain.yml")
    assert test_data.problems == []
    assert len(test_data.examples) >= 150
    assert set(test_data.intents) == set(domain.intents) - BUTTON_ONLY_INTENTS
    assert set(test_data.entity_names) <= set(domain.entities)


def test_test_set_is_mostly_unseen(training: TrainingData, test_data: TrainingData) -> None:
    seen = {normalise(e.text)[0] for e in training.examples}
    unseen = [e for e in test_data.examples if normalise(e.text)[0] not in seen]
    assert len(unseen) >= 150


def test_training_data_size(training: TrainingData) -> None:
    domain = load_domain(REPO / "domain.yml")
    counts = training.intent_counts()
    assert sum(counts.values()) >= 1200
    assert set(counts) == set(domain.intents) - BUTTON_ONLY_INTENTS
    for intent in set(domain.intents) - BUTTON_ONLY_INTENTS:
        minimum = 60 if intent in BIG_INTENTS else 25
        assert counts[intent] >= minimum, (intent, counts[intent])


def test_every_entity_is_annotated_and_synonyms_exist(training: TrainingData) -> None:
    domain = load_domain(REPO / "domain.yml")
    annotated = Counter(a.entity for e in training.examples for a in e.entities)
    # set by buttons (您是想问：, the rating after a human agent), never typed by customers
    payload_only = {"topic", "rating"}
    for entity in domain.entities:
        if entity not in payload_only:
            assert annotated[entity] >= 3, entity
    values = {s.value for s in training.synonyms}
    assert {
        "debit_card",
        "credit_card",
        "loan",
        "credit_card_application",
        "card_replacement",
        "credit_limit_increase",
    } <= values


def test_examples_are_written_as_customers_type(training: TrainingData) -> None:
    texts = [e.text for e in training.examples]
    full_width = [t for t in texts if re.search("[\uff01-\uff5e]", t)]
    traditional = [
        t
        for t in texts
        if normalise(t, lowercase=False)[0]
        != normalise(t, lowercase=False, traditional_to_simplified=False)[0]
    ]
    mixed = [t for t in texts if re.search("[A-Za-z]", t) and re.search("[\u4e00-\u9fff]", t)]
    assert len(full_width) >= 5
    assert len(traditional) >= 5
    assert len(mixed) >= 20


@pytest.mark.parametrize("topic", list(FAQ_TOPICS))
def test_faq_examples_cover_every_knowledge_topic(training: TrainingData, topic: str) -> None:
    faq = [normalise(e.text)[0] for e in training.examples if e.intent == "faq"]
    hits = [
        t
        for t in faq
        for phrase in FAQ_TOPICS[topic]
        if all(part in t for part in phrase.split("+"))
    ]
    assert hits, topic


def test_faq_examples_differ_from_one_another(training: TrainingData) -> None:
    faq = [normalise(e.text)[0] for e in training.examples if e.intent == "faq"]
    assert len(faq) >= 60
    assert len(set(faq)) == len(faq)


def test_model_archive_size(shipped: Any) -> None:
    assert shipped.archive.stat().st_size <= 20 * 1024 * 1024
