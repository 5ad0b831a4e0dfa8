"""Entity extraction: spaCy rules on the shipped model, and RegexEntityExtractor as a unit."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest

from bot.nlu.entity_extractor import RegexEntityExtractor
from bot.nlu.interfaces import Message
from bot.nlu.normalizer import ChineseTextNormalizer
from bot.training.data import (
    EntityAnnotation,
    Example,
    LookupTable,
    RegexPattern,
    Synonym,
    TrainingData,
)


def entities(shipped: Any, text: str) -> list[dict[str, Any]]:
    result = shipped.model.nlu.parse(text)
    for e in result["entities"]:
        assert 0 <= e["start"] < e["end"] <= len(text)
    return result["entities"]


def only(shipped: Any, text: str, entity: str) -> tuple[Any, str]:
    """The value of the one ``entity`` found in ``text`` and the original text it covers."""
    found = [e for e in entities(shipped, text) if e["entity"] == entity]
    assert len(found) == 1, (text, entities(shipped, text))
    return found[0]["value"], text[found[0]["start"] : found[0]["end"]]


class TestShippedModel:
    def test_card_last4_points_at_the_digits(self, shipped: Any) -> None:
        text = "查下尾号1234的余额"
        (e,) = entities(shipped, text)
        assert (e["entity"], e["value"], e["start"], e["end"]) == ("card_last4", "1234", 4, 8)
        assert e["extractor"] == "RegexEntityExtractor"

    def test_card_last4_with_full_width_digits(self, shipped: Any) -> None:
        assert only(shipped, "尾号１２３４", "card_last4") == ("1234", "１２３４")
        text = "  查下  尾号１２３４的余额"
        assert only(shipped, text, "card_last4") == ("1234", "１２３４")

    def test_card_last4_in_traditional_characters(self, shipped: Any) -> None:
        assert only(shipped, "尾號5678那張卡", "card_last4") == ("5678", "5678")

    @pytest.mark.parametrize(
        ("text", "value", "surface"),
        [
            ("看看我工资卡余额", "debit_card", "工资卡"),
            ("储蓄卡还有多少钱", "debit_card", "储蓄卡"),
            ("信用卡还能刷多少", "credit_card", "信用卡"),
            ("我的信用咔额度", "credit_card", "信用咔"),
            ("幫我查一下銀行卡的餘額", "debit_card", "銀行卡"),
        ],
    )
    def test_account_type_synonyms(self, shipped: Any, text: str, value: str, surface: str) -> None:
        assert only(shipped, text, "account_type") == (value, surface)

    def test_business_type_longest_match(self, shipped: Any) -> None:
        text = "我的信用卡申请到哪一步了"
        found = entities(shipped, text)
        assert [(e["entity"], e["value"]) for e in found] == [
            ("business_type", "credit_card_application")
        ]
        assert text[found[0]["start"] : found[0]["end"]] == "信用卡申请"

    def test_application_id_is_upper_case(self, shipped: Any) -> None:
        text = "申请编号l20261101001现在什么状态"
        assert only(shipped, text, "application_id") == ("L20261101001", "l20261101001")
        assert only(shipped, "编号Ｃ２０２６１０１５０２３", "application_id")[0] == "C20261015023"

    @pytest.mark.parametrize(
        ("text", "value", "surface"),
        [
            ("转五万给我妈", 50000, "五万"),
            ("转3千5元", 3500, "3千5"),
            ("帮我看下余额够不够两万", 20000, "两万"),
            ("转账2,000元", 2000, "2,000"),
        ],
    )
    def test_amount_values(self, shipped: Any, text: str, value: int, surface: str) -> None:
        assert only(shipped, text, "amount") == (value, surface)

    def test_date_yesterday_is_an_iso_date(self, shipped: Any) -> None:
        before = (dt.date.today() - dt.timedelta(days=1)).isoformat()
        value, surface = only(shipped, "昨天申请的贷款", "date")
        after = (dt.date.today() - dt.timedelta(days=1)).isoformat()
        assert surface == "昨天"
        assert value in {before, after}
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", value)

    def test_date_with_year(self, shipped: Any) -> None:
        assert only(shipped, "2026-11-01交的申请", "date") == ("2026-11-01", "2026-11-01")

    def test_phone(self, shipped: Any) -> None:
        assert only(shipped, "我手机号13812345678", "phone") == ("13812345678", "13812345678")
        assert only(shipped, "手机１３８１２３４５６７８", "phone")[0] == "13812345678"

    def test_id_number_upper_case(self, shipped: Any) -> None:
        text = "身份证11010119900307775x"
        assert only(shipped, text, "id_number") == ("11010119900307775X", "11010119900307775x")

    def test_long_digit_runs_are_not_phones_or_cards(self, shipped: Any) -> None:
        found = {e["entity"] for e in entities(shipped, "订单号123456789012345678901234")}
        assert not found & {"phone", "card_last4", "id_number"}

    def test_several_entities_in_one_message(self, shipped: Any) -> None:
        text = "昨天从尾号1234的工资卡转了五万"
        names = sorted(e["entity"] for e in entities(shipped, text))
        assert names == ["account_type", "amount", "card_last4", "date"]


def _data() -> TrainingData:
    return TrainingData(
        examples=[
            Example(
                "我的信用卡丢了",
                "report_loss",
                (EntityAnnotation("account_type", "credit_card", 2, 5, "信用卡"),),
            ),
            Example(
                "查一下小金库",
                "query_balance",
                (EntityAnnotation("account_type", "savings", 3, 6, "小金库"),),
            ),
        ],
        synonyms=[Synonym("credit_card", ("信用卡", "XYK"))],
        lookups=[
            LookupTable("account_type", ("信用卡", "储蓄卡")),
            LookupTable("business_type", ("信用卡申请",)),
        ],
        regexes=[
            RegexPattern("card_last4", (r"尾号(?P<value>\d{4})(?!\d)",)),
            RegexPattern("phone", (r"1[3-9]\d{9}",)),
        ],
    )


def _extract(extractor: RegexEntityExtractor, text: str) -> list[tuple[str, Any, str]]:
    message = Message(text)
    ChineseTextNormalizer({}).process(message)
    extractor.process(message)
    return [(e["entity"], e["value"], text[e["start"] : e["end"]]) for e in message.entities]


@pytest.fixture(scope="module")
def trained() -> RegexEntityExtractor:
    extractor = RegexEntityExtractor({})
    extractor.train(_data(), [])
    return extractor


class TestRegexEntityExtractor:
    def test_lookup_synonym_annotation_and_regex(self, trained: RegexEntityExtractor) -> None:
        assert _extract(trained, "我的储蓄卡") == [("account_type", "储蓄卡", "储蓄卡")]
        assert _extract(trained, "xyk额度") == [("account_type", "credit_card", "xyk")]
        assert _extract(trained, "查下小金库") == [("account_type", "savings", "小金库")]
        assert _extract(trained, "尾号9876") == [("card_last4", "9876", "9876")]
        assert _extract(trained, "电话13912345678") == [("phone", "13912345678", "13912345678")]

    def test_named_group_marks_the_value(self, trained: RegexEntityExtractor) -> None:
        assert _extract(trained, "尾号12345") == []  # (?!\d) in the pattern

    def test_overlaps_keep_the_longest_span(self, trained: RegexEntityExtractor) -> None:
        assert _extract(trained, "信用卡申请进度") == [
            ("business_type", "信用卡申请", "信用卡申请")
        ]

    def test_case_and_width_insensitive(self, trained: RegexEntityExtractor) -> None:
        assert _extract(trained, "ＸＹＫ额度") == [("account_type", "credit_card", "ＸＹＫ")]

    def test_nothing_in_empty_text(self, trained: RegexEntityExtractor) -> None:
        assert _extract(trained, "") == []
        assert trained.extract("") == []

    def test_options_switch_sources_off(self) -> None:
        extractor = RegexEntityExtractor({"use_regexes": False, "use_lookup_tables": False})
        extractor.train(_data(), [])
        assert _extract(extractor, "尾号9876 储蓄卡") == []  # 储蓄卡 is only in a lookup
        assert _extract(extractor, "xyk") == [("account_type", "credit_card", "xyk")]
        none = RegexEntityExtractor(
            {"use_synonyms": False, "use_annotations": False, "use_lookup_tables": False}
        )
        none.train(_data(), [])
        assert _extract(none, "xyk 信用卡 小金库") == []
        assert _extract(none, "尾号9876") == [("card_last4", "9876", "9876")]

    def test_persist_and_load(self, trained: RegexEntityExtractor, tmp_path: Path) -> None:
        trained.persist(tmp_path)
        loaded = RegexEntityExtractor.load(tmp_path, trained.config)
        for text in ("尾号9876的信用卡申请", "xyk 13912345678", "查下小金库"):
            assert _extract(loaded, text) == _extract(trained, text)

    def test_invalid_regex_fails_at_training_time(self) -> None:
        data = TrainingData(regexes=[RegexPattern("card_last4", ("尾号(\\d{4}",))])
        with pytest.raises(re.error):
            RegexEntityExtractor({}).train(data, [])

    def test_texts_no_rule_can_match_skip_spacy_with_the_same_result(
        self, trained: RegexEntityExtractor
    ) -> None:
        """The screen in front of the spaCy pipeline: only texts in which no regex matches and
        no phrase occurs skip it, and for every text the entities are what spaCy finds."""

        def spacy_entities(text: str) -> list[tuple[str, str, int, int]]:
            doc = trained._nlp(text)
            return [(e.label_, e.ent_id_ or e.text, e.start_char, e.end_char) for e in doc.ents]

        texts = [
            "你好",
            "开户要带什么材料",
            "我的储蓄卡",
            "X Y K额度",
            "xy k",
            "XYK",
            "信用 卡",
            "尾号 9876",
            "电话13912345678",
            "小金 库",
            "  ",
            "ΣΑΣ 信用卡",
            "\t储蓄卡\n",
        ]
        skipped = [t for t in texts if not trained._screen.may_match(t)]
        assert skipped == ["你好", "开户要带什么材料", "尾号 9876", "  "]
        for text in texts:
            assert trained.extract(text) == spacy_entities(text), text
