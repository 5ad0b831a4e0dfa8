"""What the bank actions say, word for word: their responses in ``domain.yml`` filled with
the sandbox bank's data, rendered as the engine renders an action's messages; a bank
changes a sentence (or a list item) in its domain, not in code."""

from __future__ import annotations

import copy
import random
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from rasa_sdk import Action, Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import balance, card_loss, faq, progress
from bot.bank.interfaces import BackendUnavailable
from bot.bank.sandbox import SandboxBank
from bot.core.actions.custom import _response_events
from bot.core.actions.interfaces import ActionContext
from bot.domain import Domain, load_project_domain
from bot.project import Project

# actions/common.py fixes its project root when first imported: forget this repository's copy
# (the modules above stay usable here) so that tests training a copied project import theirs.
for _name in [m for m in sys.modules if m == "actions" or m.startswith("actions.")]:
    del sys.modules[_name]

ROOT = Path(__file__).resolve().parents[1]
HUMAN = [{"title": "转人工", "payload": "/request_human"}]
Reply = tuple[str | None, list[dict[str, str]] | None]


@pytest.fixture(scope="module")
def domain() -> Domain:
    return load_project_domain(Project(ROOT))


@pytest.fixture
def bank(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SandboxBank:
    sandbox = SandboxBank(tmp_path / "sandbox.db")
    use_backend(monkeypatch, sandbox)
    return sandbox


def use_backend(monkeypatch: pytest.MonkeyPatch, backend: Any) -> None:
    for module in (balance, card_loss, progress):
        monkeypatch.setattr(module, "backend", lambda: backend)


class Down:
    def __getattr__(self, name: str) -> Any:
        def fail(*args: Any, **kwargs: Any) -> Any:
            raise BackendUnavailable("down")

        return fail


def replies(
    action: Action,
    domain: Domain,
    slots: dict[str, Any],
    *,
    text: str = "",
    entities: list[dict[str, Any]] | None = None,
    validate: Any = "-",
    raw: dict[str, Any] | None = None,
) -> list[Reply]:
    """The action's messages as the engine sends them: (text, buttons)."""
    slots = {"customer_id": None, **slots}
    tracker = Tracker(
        "s",
        slots,
        {"text": text, "entities": entities or [], "intent": {}},
        [],
        False,
        None,
        {},
        None,
    )
    dispatcher = CollectingDispatcher()
    rasa_domain = raw or domain.as_rasa_dict()
    if validate != "-":
        assert isinstance(action, card_loss.ValidateReportLossForm)
        action.validate_card_last4(validate, dispatcher, tracker, rasa_domain)
    else:
        action.run(dispatcher, tracker, rasa_domain)
    context = ActionContext(domain, rng=random.Random(0))
    return [
        (e.get("text"), (e.get("data") or {}).get("buttons"))
        for e in _response_events(dispatcher.messages, context, slots)
    ]


def test_balance_replies(domain: Domain, bank: SandboxBank) -> None:
    b = balance.ActionQueryBalance()
    assert replies(b, domain, {}) == [
        (
            "为保护您的账户安全，查询余额需要先验证身份：请在示例银行App内登录后再来咨询，或在微信"
            "公众号中绑定您的银行账户。您也可以点击“转人工”由人工客服为您办理。",
            HUMAN,
        )
    ]
    assert replies(b, domain, {"customer_id": "C1001"}) == [
        (
            "您名下有多张卡，请问要查询哪一张？",
            [
                {"title": "储蓄卡 尾号1234", "payload": '/query_balance{"card_last4": "1234"}'},
                {"title": "信用卡 尾号5678", "payload": '/query_balance{"card_last4": "5678"}'},
            ],
        )
    ]
    assert replies(b, domain, {"customer_id": "C1002"}) == [
        ("您尾号8888的储蓄卡可用余额为 128,000.00 元。", None)
    ]
    assert replies(b, domain, {"customer_id": "C1006"}) == [("您名下暂时没有可查询的账户。", None)]
    assert replies(b, domain, {"customer_id": "C1001", "account_type": "credit_card"}) == [
        (
            "您尾号5678的信用卡可用额度为 31,200.00 元，总额度 50,000.00 元；"
            "本期账单 18,800.00 元，请在 2026-12-05 前还款。",
            None,
        )
    ]
    assert replies(b, domain, {"customer_id": "C1005", "card_last4": "4321"}) == [
        ("您尾号4321的储蓄卡可用余额为 5,000.00 元。（该卡目前处于冻结状态。）", None)
    ]
    [(text, buttons)] = replies(b, domain, {"customer_id": "C1001", "card_last4": "0000"})
    assert text == (
        "没有找到您名下尾号0000的卡。您名下的卡有：尾号1234、尾号5678。请问要查询哪一张？"
    )
    assert [x["title"] for x in buttons or []] == ["储蓄卡 尾号1234", "信用卡 尾号5678"]


def test_progress_replies(domain: Domain, bank: SandboxBank) -> None:
    p = progress.ActionQueryProgress()
    assert replies(p, domain, {"customer_id": "C1001"}) == [
        (
            "您有多笔申请，请问要查询哪一笔？",
            [
                {
                    "title": "个人消费贷 L20261101001",
                    "payload": '/query_progress{"application_id": "L20261101001"}',
                },
                {
                    "title": "补换卡 R20261115002",
                    "payload": '/query_progress{"application_id": "R20261115002"}',
                },
            ],
        )
    ]
    assert replies(p, domain, {"customer_id": "C1001", "business_type": "loan"}) == [
        (
            "您的个人消费贷申请（编号L20261101001，金额 200,000.00 元）当前处于“风控审批”阶段。"
            "已完成：资料提交（2026-11-01）、资料审核（2026-11-03）。下一步：放款。",
            None,
        )
    ]
    assert replies(p, domain, {"customer_id": "C1001", "application_id": "R20261115002"}) == [
        (
            "您的补换卡申请（编号R20261115002）当前处于“已寄出”阶段（2026-11-18 起）。"
            "已完成：申请受理（2026-11-15）。下一步：签收。快递：顺丰 SF1234567890。",
            None,
        )
    ]
    assert replies(p, domain, {"customer_id": "C1002"}) == [
        (
            "您的信用卡提额申请（编号Q20261120003）已办理完成，最近一步：“审核通过”。"
            "已完成：提交申请（2026-11-20）、审核通过（2026-11-21）。新额度：30,000.00 元。",
            None,
        )
    ]
    [(none_of_type, _)] = replies(p, domain, {"customer_id": "C1002", "business_type": "loan"})
    assert none_of_type.startswith("您目前没有贷款业务。")  # and the others (test_bank_fit.py)
    [(text, buttons)] = replies(p, domain, {"customer_id": "C1003", "application_id": "x9"})
    assert text == "没有找到您名下编号为x9的申请，请核对编号。您名下的申请有："
    assert [x["title"] for x in buttons or []] == ["信用卡 A20261118004"]


def test_a_waiting_application_and_steps_without_dates(
    domain: Domain, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.bank.interfaces import Application, ApplicationStep

    apps = {
        "Z1": Application(
            "Z1",
            "C9",
            "loan",
            None,
            None,
            (ApplicationStep("受理", "pending"), ApplicationStep("审批", "pending")),
        ),
        "Z2": Application(
            "Z2",
            "C9",
            "card_replacement",
            None,
            100,
            (ApplicationStep("受理", "done"), ApplicationStep("制卡", "in_progress")),
        ),
    }
    use_backend(monkeypatch, SimpleNamespace(application=lambda c, i: apps.get(i)))
    p = progress.ActionQueryProgress()
    assert replies(p, domain, {"customer_id": "C9", "application_id": "Z1"}) == [
        ("您的贷款申请（编号Z1）正在等待处理。下一步：受理。", None)
    ]
    assert replies(p, domain, {"customer_id": "C9", "application_id": "Z2"}) == [
        ("您的补换卡申请（编号Z2，金额 1.00 元）当前处于“制卡”阶段。已完成：受理。", None)
    ]


def test_card_loss_replies(domain: Domain, bank: SandboxBank) -> None:
    v = card_loss.ValidateReportLossForm()
    assert replies(v, domain, {"customer_id": "C1001"}, validate="12") == [
        ("卡号后四位应为4位数字，请重新输入，例如：尾号1234。", None)
    ]
    assert replies(v, domain, {"customer_id": "C1001"}, validate="0000") == [
        ("您名下没有尾号0000的卡，您的卡是：尾号1234、尾号5678。", None)
    ]
    assert replies(v, domain, {"customer_id": "C1006"}, validate="1234") == [
        ("您名下暂时没有可挂失的银行卡。如需帮助，请点击“转人工”。", HUMAN)
    ]
    ask = card_loss.ActionAskCardLast4()
    assert replies(ask, domain, {"customer_id": "C1001"}) == [
        (
            "请问需要挂失的是哪张卡？请选择或告诉我卡号后四位。",
            [
                {"title": "储蓄卡 尾号1234", "payload": '/inform{"card_last4": "1234"}'},
                {"title": "信用卡 尾号5678", "payload": '/inform{"card_last4": "5678"}'},
            ],
        )
    ]
    assert replies(ask, domain, {"customer_id": "C1006"}) == [
        ("请问需要挂失的是哪张卡？请选择或告诉我卡号后四位。", None)
    ]
    freeze = card_loss.ActionFreezeCard()
    confirmed = {"customer_id": "C1001", "card_last4": "1234", "loss_confirmed": True}
    assert replies(freeze, domain, {**confirmed, "loss_confirmed": False}) == [
        ("好的，暂不挂失。如发现卡片有异常交易，请随时联系我们。", None)
    ]
    assert replies(freeze, domain, {**confirmed, "card_last4": "0000"}) == [
        ("没有找到您名下尾号0000的卡，请核对卡号，或点击“转人工”由人工客服协助。", HUMAN)
    ]
    assert replies(freeze, domain, confirmed) == [
        (
            "已为您临时冻结尾号1234的卡，冻结期间该卡无法交易。接下来：请携带本人身份证到任一网点办理"
            "正式挂失和补卡；如发现盗刷，请拨打 95500-0000 并报警。需要人工客服进一步协助吗？",
            HUMAN,
        )
    ]
    assert replies(freeze, domain, confirmed) == [
        (
            "您尾号1234的卡已经处于冻结状态，无需重复操作。如需补卡，请携带本人身份证到任一网点办理，"
            "或拨打 95500-0000 咨询。",
            HUMAN,
        )
    ]


def test_replies_when_the_backend_is_down(domain: Domain, monkeypatch: pytest.MonkeyPatch) -> None:
    use_backend(monkeypatch, Down())
    unavailable = [
        (
            "抱歉，系统暂时无法查询，请稍后再试。如需帮助，可以点击“转人工”由人工客服为您服务。",
            HUMAN,
        )
    ]
    assert replies(balance.ActionQueryBalance(), domain, {"customer_id": "C1001"}) == unavailable
    assert replies(progress.ActionQueryProgress(), domain, {"customer_id": "C1001"}) == unavailable
    assert replies(
        card_loss.ActionFreezeCard(),
        domain,
        {"customer_id": "C1001", "card_last4": "5678", "loss_confirmed": True},
    ) == [
        (
            "抱歉，系统暂时无法冻结卡片。为保障资金安全，请立即拨打24小时客服热线 95500-0000 "
            "挂失，或点击“转人工”。",
            HUMAN,
        )
    ]


def test_faq_replies(domain: Domain, monkeypatch: pytest.MonkeyPatch) -> None:
    entry = SimpleNamespace(
        id="t1",
        answer=" 答案一。 ",
        links=[SimpleNamespace(title="官网", url="https://x")],
        buttons=[SimpleNamespace(title="办理", payload="/x")],
    )
    kind = {"now": "clarify"}
    kb = SimpleNamespace(
        entries=[entry],
        decide=lambda text, channel=None: SimpleNamespace(
            kind=kind["now"],
            hits=[SimpleNamespace(entry=entry)],
            buttons=lambda: [{"title": "问题一", "payload": '/faq{"topic": "t1"}'}],
        ),
    )
    monkeypatch.setattr(faq, "knowledge_base", lambda: kb)
    f = faq.ActionAnswerFaq()
    assert replies(f, domain, {}, entities=[{"entity": "topic", "value": "t1"}]) == [
        ("答案一。\n官网：https://x", [{"title": "办理", "payload": "/x"}])
    ]
    assert replies(f, domain, {}, text="问") == [
        ("您是想问：", [{"title": "问题一", "payload": '/faq{"topic": "t1"}'}])
    ]
    kind["now"] = "none"
    assert replies(f, domain, {}, text="问") == [
        (
            "抱歉，这个问题我暂时没有把握回答，已记录下来改进。您可以换个说法再问，或点击“转人工”由"
            "人工客服为您解答。",
            HUMAN,
        )
    ]


def test_a_bank_changes_the_words_in_its_domain(domain: Domain, bank: SandboxBank) -> None:
    raw = copy.deepcopy(domain.as_rasa_dict())
    raw["responses"]["utter_part_card"] = [{"text": "末四位{last4}"}]
    raw["responses"]["utter_part_separator"] = [{"text": "，"}]
    raw["responses"]["utter_part_account_debit_card"] = [{"text": "借记卡"}]
    v = card_loss.ValidateReportLossForm()
    assert replies(v, domain, {"customer_id": "C1001"}, validate="0000", raw=raw) == [
        ("您名下没有尾号0000的卡，您的卡是：末四位1234，末四位5678。", None)
    ]
    [(_, buttons)] = replies(
        card_loss.ActionAskCardLast4(), domain, {"customer_id": "C1001"}, raw=raw
    )
    assert [b["title"] for b in buttons or []] == ["借记卡 尾号1234", "信用卡 尾号5678"]


def test_buttons_given_with_a_response_follow_its_own(domain: Domain) -> None:
    """As Rasa: ``utter_message(response=..., buttons=[...])`` keeps the response's buttons
    and adds the given ones after them."""
    context = ActionContext(domain, rng=random.Random(0))
    extra = [{"title": "A", "payload": "/a"}]
    [event] = _response_events(
        [{"response": "utter_backend_unavailable", "buttons": extra}], context, {}
    )
    assert event["data"]["buttons"] == [*HUMAN, *extra]
    [event] = _response_events([{"response": "utter_choose_account", "buttons": []}], context, {})
    assert "buttons" not in event["data"]


def test_an_faq_answer_names_its_knowledge_entry(
    domain: Domain, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bot event of an answer carries ``metadata.kb_entry`` (what `bot report` counts as the
    top knowledge entries); a clarifying question carries none."""
    entry = SimpleNamespace(id="fee_transfer", answer="免费。", links=[], buttons=[])
    kb = SimpleNamespace(
        entries=[entry],
        decide=lambda text, channel=None: SimpleNamespace(
            kind="answer", hits=[SimpleNamespace(entry=entry)], buttons=lambda: []
        ),
    )
    monkeypatch.setattr(faq, "knowledge_base", lambda: kb)
    dispatcher = CollectingDispatcher()
    tracker = Tracker(
        "s", {}, {"text": "转账手续费", "entities": [], "intent": {}}, [], False, None, {}, None
    )
    faq.ActionAnswerFaq().run(dispatcher, tracker, domain.as_rasa_dict())
    context = ActionContext(domain, rng=random.Random(0))
    [event] = _response_events(dispatcher.messages, context, {})
    assert event["metadata"] == {"utter_action": "utter_faq_answer", "kb_entry": "fee_transfer"}
    [plain] = _response_events([{"text": "x", "metadata": {"k": 1}}], context, {})
    assert plain["metadata"] == {"k": 1}
    [clarify] = _response_events([{"response": "utter_faq_clarify"}], context, {})
    assert "kb_entry" not in clarify["metadata"]
