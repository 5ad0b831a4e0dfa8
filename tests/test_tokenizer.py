"""JiebaTokenizer: no whitespace tokens (Rasa issue 7910), project dictionary, offsets."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.nlu.interfaces import Message
from bot.nlu.normalizer import ChineseTextNormalizer
from bot.nlu.tokenizer import JiebaTokenizer, dictionary_words, new_jieba
from bot.training.data import (
    EntityAnnotation,
    Example,
    LookupTable,
    Synonym,
    TrainingData,
)


@pytest.fixture(scope="module")
def plain() -> JiebaTokenizer:
    return JiebaTokenizer({})


@pytest.mark.parametrize(
    "text",
    [
        "查下 余额",
        "我的  卡 丢了",
        " 你好 ",
        "hello world 查余额",
        "a\tb\nc",
        "查\u3000余额",
        "   ",
    ],
)
def test_whitespace_is_never_a_token(plain: JiebaTokenizer, text: str) -> None:
    tokens = plain.tokenize(text)
    assert all(t.text.strip() == t.text and t.text for t in tokens)
    assert "".join(t.text for t in tokens) == "".join(text.split())


def test_offsets_index_the_text(plain: JiebaTokenizer) -> None:
    text = "我想 查一下 信用卡 balance 123"
    tokens = plain.tokenize(text)
    assert tokens
    for token in tokens:
        assert text[token.start : token.end] == token.text
    assert [t.start for t in tokens] == sorted(t.start for t in tokens)


def test_custom_dictionary_words_stay_whole() -> None:
    text = "信用咔还能刷多少"
    without = [t.text for t in JiebaTokenizer({}).tokenize(text)]
    assert "信用咔" not in without  # jieba alone splits the typo
    tokenizer = JiebaTokenizer({}, [("信用咔", 2000)])
    assert "信用咔" in [t.text for t in tokenizer.tokenize(text)]


def test_training_builds_the_dictionary_from_data_and_user_file(tmp_path: Path) -> None:
    userdict = tmp_path / "nlu_data" / "userdict.txt"
    userdict.parent.mkdir()
    userdict.write_text("# comment line\n预留手机号 3000\n无卡取款\n", encoding="utf-8")
    data = TrainingData(
        examples=[
            Example(
                "查下储畜卡余额",
                "query_balance",
                (EntityAnnotation("account_type", "debit_card", 2, 5, "储畜卡"),),
            )
        ],
        synonyms=[Synonym("credit_card", ("信用咔",))],
        lookups=[LookupTable("business_type", ("经营贷", "Loan Plus"))],
    )
    words = dict(dictionary_words(data, userdict))
    assert words["预留手机号"] == 3000
    assert words["无卡取款"] == 2000
    assert {"储畜卡", "信用咔", "经营贷"} <= set(words)
    assert "loan plus" not in words and "# comment" not in words  # spaces, comments skipped

    tokenizer = JiebaTokenizer({"project_root": str(tmp_path)})
    message = Message("我的预留手机号改了 信用咔 经营贷")
    ChineseTextNormalizer({}).process(message)
    tokenizer.train(data, [message])
    texts = [t.text for t in message.tokens]
    assert {"预留手机号", "信用咔", "经营贷"} <= set(texts)
    assert " " not in texts


def test_persist_and_load_keep_the_dictionary(tmp_path: Path) -> None:
    tokenizer = JiebaTokenizer({}, [("信用咔", 2000), ("储畜卡", 2500)])
    tokenizer.persist(tmp_path)
    loaded = JiebaTokenizer.load(tmp_path, {})
    assert loaded.words == [("信用咔", 2000), ("储畜卡", 2500)]
    text = "储畜卡和信用咔"
    assert loaded.tokenize(text) == tokenizer.tokenize(text)
    assert [t.text for t in loaded.tokenize(text)] == ["储畜卡", "和", "信用咔"]


def test_tokens_refer_to_the_normalised_text() -> None:
    message = Message("  ＡＰＰ  登不上  ")
    ChineseTextNormalizer({}).process(message)
    JiebaTokenizer({}, [("登不上", 3000)]).process(message)
    assert [(t.text, t.start, t.end) for t in message.tokens] == [
        ("app", 0, 3),
        ("登不上", 4, 7),
    ]
    # and the offsets of the message take them back to the customer's text
    start, end = message.original_span(4, 7)
    assert message.text[start:end] == "登不上"


def test_tokenizers_share_the_dictionary_load_but_not_their_words() -> None:
    # the NLU and the knowledge base each add words; one load of jieba's dictionary serves both
    first, second = new_jieba(), new_jieba()
    assert first.FREQ is not second.FREQ and first.FREQ == second.FREQ
    first.add_word("薪享通卡", 50000)
    assert "薪享通卡" in first.lcut("我要办薪享通卡")
    assert "薪享通卡" not in second.lcut("我要办薪享通卡")
    assert "薪享通卡" not in new_jieba().FREQ
