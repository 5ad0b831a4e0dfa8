"""Choices that fit the customer's products: a card or account is offered only when it fits
the request (信用卡丢了 without a credit card is told so, not offered the debit card alone as if
it were the one); a progress question about a type with nothing in progress lists what is in
progress instead (no 没有信用卡申请业务申请). Sandbox customers: C1001 (debit 1234, credit 5678,
a loan and a card replacement), C1002 (debit 8888 only, a credit-limit increase)."""

from __future__ import annotations

# the action modules as test_bank_replies imported them: importing ``actions`` again here would
# put this repository's copy back into sys.modules, where the trained project's must be found
from test_bank_replies import HUMAN, balance, bank, card_loss, domain, progress, replies

from bot.bank.sandbox import SandboxBank
from bot.domain import Domain

__all__ = ["bank", "domain"]


def test_a_lost_credit_card_without_one_is_told_so(domain: Domain, bank: SandboxBank) -> None:
    ask = card_loss.ActionAskCardLast4()
    [(text, buttons)] = replies(
        ask, domain, {"customer_id": "C1002", "account_type": "credit_card"}
    )
    assert text is not None and "您在本行名下没有信用卡" in text and "发卡银行" in text
    assert buttons == [
        *HUMAN,
        {"title": "储蓄卡 尾号8888", "payload": '/inform{"card_last4": "8888"}'},
    ]


def test_card_choices_fit_the_type_asked_for(domain: Domain, bank: SandboxBank) -> None:
    ask = card_loss.ActionAskCardLast4()
    [(text, buttons)] = replies(
        ask, domain, {"customer_id": "C1001", "account_type": "credit_card"}
    )
    assert text == "请问需要挂失的是哪张卡？请选择或告诉我卡号后四位。"
    assert [b["title"] for b in buttons or []] == ["信用卡 尾号5678"]
    [(_, every)] = replies(ask, domain, {"customer_id": "C1001"})
    assert [b["title"] for b in every or []] == ["储蓄卡 尾号1234", "信用卡 尾号5678"]


def test_a_credit_limit_without_a_credit_card(domain: Domain, bank: SandboxBank) -> None:
    b = balance.ActionQueryBalance()
    [(text, buttons)] = replies(b, domain, {"customer_id": "C1002", "account_type": "credit_card"})
    assert text == "您在本行名下没有信用卡。您可以查询以下卡片："  # not the debit balance
    assert buttons == [
        {"title": "储蓄卡 尾号8888", "payload": '/query_balance{"card_last4": "8888"}'}
    ]


def test_progress_of_a_type_without_applications_lists_the_others(
    domain: Domain, bank: SandboxBank
) -> None:
    p = progress.ActionQueryProgress()
    [(text, buttons)] = replies(
        p, domain, {"customer_id": "C1001", "business_type": "credit_card_application"}
    )
    assert text is not None
    assert text.startswith("您目前没有信用卡申请业务。") and "申请业务申请" not in text
    assert "个人消费贷（编号L20261101001，风控审批）" in text
    assert "R20261115002" in text
    assert [b["payload"] for b in buttons or []] == [
        '/query_progress{"application_id": "L20261101001"}',
        '/query_progress{"application_id": "R20261115002"}',
    ]
    [(one, _)] = replies(p, domain, {"customer_id": "C1002", "business_type": "loan"})
    assert one == (
        "您目前没有贷款业务。您名下正在办理或近期办理的业务有："
        "信用卡提额（编号Q20261120003，审核通过）。请问要查询哪一笔？"
    )
