"""The context packet (bot/handoff/packet.py): the masked transcript, names, and every field
an agent reads, from tracker events made here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from bot.core import events as ev
from bot.handoff.packet import INTERNAL_SLOTS, VERSION, build_packet, mask_name, transcript
from bot.handoff.records import Handoff
from bot.handoff.routing import Profile

CARD = "6222021234567890123"
PHONE = "13812345678"
ID_NUMBER = "110101199003077758"


def said(
    text: str,
    intent: str | None = None,
    confidence: float = 0.9,
    negative: float | None = None,
    at: float = 0.0,
    channel: str = "rest",
) -> dict[str, Any]:
    parse: dict[str, Any] = {"text": text, "entities": []}
    if intent is not None:
        parse["intent"] = {"name": intent, "confidence": confidence}
    if negative is not None:
        parse["sentiment"] = {"negative": negative, "label": "negative"}
    return ev.user(text, parse, input_channel=channel, timestamp=at)


def answered(
    text: str,
    at: float = 0.0,
    agent: str | None = None,
    buttons: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return ev.bot(
        text,
        {"buttons": buttons} if buttons else {},
        {"agent": agent} if agent else {},
        timestamp=at,
    )


def handoff(reason: str = "customer_request", customer_id: str | None = "C1001") -> Handoff:
    return Handoff(
        "h-1",
        "conv-1",
        "rest",
        customer_id,
        "张*",
        "信用卡",
        3,
        reason,
        "客户要求人工服务",
        "waiting",
        1700000000.0,
    )


class FakeSearch:
    """A knowledge base that answers every query with the same entries, and records them."""

    def __init__(self, hits: dict[str, list[tuple[str, str, str, str, float]]]) -> None:
        self.hits = hits
        self.queries: list[str] = []

    def __call__(self, query: str) -> Sequence[tuple[str, str, str, str, float]]:
        self.queries.append(query)
        return self.hits.get(query, [])


# --- mask_name ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "masked"),
    [("张伟", "张*"), ("欧阳娜娜", "欧***"), ("李", "李"), ("", ""), (None, None)],
)
def test_mask_name(name: str | None, masked: str | None) -> None:
    assert mask_name(name) == masked


# --- transcript -----------------------------------------------------------------------------


def test_transcript_masks_card_phone_and_id_numbers() -> None:
    events = [
        said(f"卡号{CARD}，手机{PHONE}", at=1.0),
        said(f"身份证{ID_NUMBER}", at=2.0),
        answered(f"已为您登记手机{PHONE}", at=3.0),
    ]
    texts = [m["text"] for m in transcript(events)]
    assert texts == [
        "卡号***************0123，手机138****5678",
        "身份证110101********7758",
        "已为您登记手机138****5678",
    ]
    for text in texts:
        assert CARD not in text and PHONE not in text and ID_NUMBER not in text


def test_transcript_roles_indexes_and_fields() -> None:
    events = [
        ev.session_started(0.5),
        said("转人工", "request_human", 0.97, negative=0.61234, at=1.0, channel="wechat"),
        ev.action("action_handoff", timestamp=1.1),
        answered("正在为您转接人工客服", at=2.0),
        ev.slot("account_type", "credit_card", 2.1),
        answered("您好，我是客服小王", at=3.0, agent="alice"),
        ev.user(None, {}, timestamp=4.0),
    ]
    messages = transcript(events)
    assert [m["from"] for m in messages] == ["customer", "bot", "agent", "customer"]
    assert [m["index"] for m in messages] == [0, 1, 2, 3]
    assert [m["at"] for m in messages] == [1.0, 2.0, 3.0, 4.0]
    first = messages[0]
    assert first["intent"] == "request_human" and first["confidence"] == 0.97
    assert first["channel"] == "wechat" and first["negative"] == 0.612
    assert "agent" not in messages[1]
    assert messages[2]["agent"] == "alice"
    assert messages[3]["text"] == "" and messages[3]["intent"] is None
    assert "negative" not in messages[3]


def test_transcript_keeps_buttons_titles_and_payloads() -> None:
    buttons = [
        {"title": "5分", "payload": '/rate_service{"rating": "5"}', "extra": 1},
        {"title": "1分", "payload": '/rate_service{"rating": "1"}'},
        "not a button",
    ]
    messages = transcript([answered("请打分", buttons=buttons)])
    assert messages[0]["buttons"] == [
        {"title": "5分", "payload": '/rate_service{"rating": "5"}'},
        {"title": "1分", "payload": '/rate_service{"rating": "1"}'},
    ]
    assert "buttons" not in transcript([answered("没有按钮")])[0]


# --- build_packet ---------------------------------------------------------------------------


def conversation() -> list[dict[str, Any]]:
    return [
        said("开户要带什么材料", "faq", 0.88, negative=0.1, at=10.0),
        answered("请携带身份证原件", at=10.5),
        said("信用卡额度怎么提高", "faq", 0.81, negative=0.3, at=20.0),
        answered("您可以在App中申请提额", at=20.5),
        said(f"不行，我的卡{CARD}被扣了钱", "complain", 0.7, negative=0.9, at=30.0),
        said('/request_human{"x": 1}', "request_human", 1.0, at=40.0),
    ]


SEARCH_HITS = {
    "开户要带什么材料": [
        ("open_docs", "开户需要什么", "身份证", "账户", 0.91234),
        ("open_fee", "开户收费吗", "免费", "账户", 0.5),
        ("kid_account", "儿童开户", "户口本", "账户", 0.4),
        ("fourth", "第四条", "不应出现", "账户", 0.3),
    ],
    "信用卡额度怎么提高": [
        ("limit_up", "如何提额", "App申请", "信用卡", 0.8),
        ("open_docs", "开户需要什么", "身份证", "账户", 0.2),
    ],
    f"不行，我的卡{'*' * 15}0123被扣了钱": [
        ("dispute", "扣款争议", "请拨打客服", "信用卡", 0.66666)
    ],
}


def test_build_packet_fields() -> None:
    search = FakeSearch(SEARCH_HITS)
    profile = Profile("C1001", "欧阳娜娜", age=67, vip=True)
    slots = {
        "account_type": "credit_card",
        "phone": PHONE,
        "note": f"卡号{CARD}",
        "amount": 500,
        "loss_confirmed": False,
        "empty": None,
        "requested_slot": "phone",
        "session_started_metadata": {"ip": "1.2.3.4"},
    }
    packet = build_packet(handoff("complaint"), conversation(), slots, profile, search)

    assert packet["version"] == VERSION
    assert (packet["handoff_id"], packet["conversation_id"], packet["channel"]) == (
        "h-1",
        "conv-1",
        "rest",
    )
    assert packet["customer"] == {
        "id": "C1001",
        "verified": True,
        "name": "欧***",
        "age": 67,
        "vip": True,
    }
    assert packet["reason"] == {
        "code": "complaint",
        "label": "客户投诉",
        "detail": "客户要求人工服务",
    }
    assert (packet["group"], packet["priority"], packet["enqueued_at"]) == (
        "信用卡",
        3,
        1700000000.0,
    )
    assert len(packet["transcript"]) == 6

    assert [(i["intent"], i["confidence"], i["at"]) for i in packet["intents"]] == [
        ("faq", 0.88, 10.0),
        ("faq", 0.81, 20.0),
        ("complain", 0.7, 30.0),
        ("request_human", 1.0, 40.0),
    ]
    assert CARD not in packet["intents"][2]["text"]  # masked there too

    assert packet["slots"] == {
        "account_type": "credit_card",
        "phone": "138****5678",
        "note": "卡号***************0123",
        "amount": 500,
        "loss_confirmed": False,
    }
    assert not INTERNAL_SLOTS & set(packet["slots"])

    assert packet["sentiment"] == {"trend": [0.1, 0.3, 0.9], "latest": 0.9, "average": 0.433}

    # knowledge the bot looked up for the faq turns: top 3 of each, each entry once
    assert packet["knowledge_tried"] == [
        {"id": "open_docs", "question": "开户需要什么", "category": "账户", "score": 0.912},
        {"id": "open_fee", "question": "开户收费吗", "category": "账户", "score": 0.5},
        {"id": "kid_account", "question": "儿童开户", "category": "账户", "score": 0.4},
        {"id": "limit_up", "question": "如何提额", "category": "信用卡", "score": 0.8},
    ]
    # suggestions for the conversation's topic: its latest customer messages that are not
    # button payloads (masked), the latest weighing most (x1, x0.85, x0.7), 0.3 or more
    assert packet["suggestions"] == [
        {"id": "limit_up", "question": "如何提额", "answer": "App申请", "score": 0.68},
        {"id": "dispute", "question": "扣款争议", "answer": "请拨打客服", "score": 0.667},
        {"id": "open_docs", "question": "开户需要什么", "answer": "身份证", "score": 0.639},
    ]
    assert f"不行，我的卡{'*' * 15}0123被扣了钱" in search.queries
    assert not any(q.startswith("/") for q in search.queries)
    assert not any(CARD in q for q in search.queries)  # the search never sees the number


def test_build_packet_for_an_anonymous_customer_without_search() -> None:
    packet = build_packet(handoff(customer_id=None), conversation(), {}, None, None)
    assert packet["customer"] == {
        "id": None,
        "verified": False,
        "name": None,
        "age": None,
        "vip": False,
    }
    assert packet["knowledge_tried"] == [] and packet["suggestions"] == []
    assert packet["slots"] == {}


def test_build_packet_without_sentiment_or_messages() -> None:
    packet = build_packet(handoff("paused"), [], {}, None, FakeSearch({}))
    assert packet["sentiment"] == {"trend": [], "latest": None, "average": None}
    assert packet["transcript"] == [] and packet["intents"] == []
    assert packet["suggestions"] == [] and packet["knowledge_tried"] == []
    assert packet["reason"]["label"] == "会话已暂停，等待人工"


def test_an_unknown_reason_is_its_own_label() -> None:
    packet = build_packet(handoff("operator"), [], {}, None)
    assert packet["reason"]["label"] == "operator"


def test_suggestions_need_a_customer_message_that_is_not_a_payload() -> None:
    search = FakeSearch({"/request_human": [("x", "q", "a", "c", 1.0)]})
    packet = build_packet(handoff(), [said("/request_human", "request_human")], {}, None, search)
    assert packet["suggestions"] == [] and search.queries == []
