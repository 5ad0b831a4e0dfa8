"""Zero-shot retrieval (entries without paraphrases): synonyms, numerals, answer and category
evidence, the BM25 baseline, calibration reliability; and the centroid classifier."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from kb_helpers import write_library_kb

from bot.cli.main import main
from bot.kb import KnowledgeBase, build_knowledge_base
from bot.kb.calibration import reliability
from bot.kb.classifier import EntryClassifier
from bot.kb.evaluate import BM25Baseline, decision_reliability
from bot.kb.settings import KBSettings
from bot.kb.sources import KBEntry
from bot.kb.synonyms import SynonymError, load_synonyms, read_groups, synonym_map
from bot.kb.text import TextAnalyzer, fold_numbers

# One question per entry and a long answer: the usual FAQ document.
ZERO_SHOT = """\
id\tquestion\tsimilar_questions\tanswer\tcategory
card_loss\t信用卡丢了怎么办？\t\t请立即致电客服或在手机银行办理挂失，挂失后可申请补发新卡，补卡工本费免收。\t信用卡
login_locked\t网上银行登录密码输错被锁定怎么办？\t\t连续输错5次密码会锁定24小时，次日自动解锁，也可携带身份证到柜台重置。\t网上银行
transfer_limit\t转账的每日限额是多少？\t\t手机银行单笔转账最高50000元，日累计200000元，可在安全中心调整。\t转账汇款
fx_purchase\t个人怎么购买外汇？\t\t每人每年便利化额度等值5万美元，可在手机银行外汇频道购汇。\t外汇
deposit_rate\t定期存款利率是多少？\t\t三个月、半年、一年、三年期定期存款利率以网点公告为准，大额存单利率更高。\t存款
atm_swallow\tATM吞卡了怎么处理？\t\t卡片被自动取款机吞没后，请携带身份证在两个工作日内到该网点领取。\t借记卡
statement\t怎么打印银行流水？\t\t在手机银行「账户明细」导出电子流水，或到网点柜台打印加盖公章的交易明细。\t账户
"""


@pytest.fixture(scope="module")
def zero_kb(tmp_path_factory: pytest.TempPathFactory) -> KnowledgeBase:
    kb_dir = tmp_path_factory.mktemp("zero") / "kb"
    (kb_dir / "sources").mkdir(parents=True)
    (kb_dir / "sources" / "faq.tsv").write_text(ZERO_SHOT, encoding="utf-8")
    build_knowledge_base(kb_dir, {}, None, progress=False)
    return KnowledgeBase.load(kb_dir, KBSettings())


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("贷记卡掉了", "card_loss"),  # synonyms: 贷记卡 = 信用卡, 掉了 = 丢了
        ("网银密码被锁了", "login_locked"),  # 网银 = 网上银行, 被锁了 = 密码锁定
        ("汇款一天最多多少钱", "transfer_limit"),  # 汇款 = 转账
        ("取款机把卡吞了", "atm_swallow"),  # 取款机 = atm
        ("買美元", "fx_purchase"),  # Traditional script; 买美元 = 购汇
        ("导出交易明细", "statement"),  # only in the answer: 流水 = 交易明细
    ],
)
def test_entries_without_paraphrases_are_found(
    zero_kb: KnowledgeBase, query: str, expected: str
) -> None:
    assert zero_kb.search(query, top=3)[0].id == expected


def test_zero_shot_build_reports_its_calibration(zero_kb: KnowledgeBase) -> None:
    meta = zero_kb.meta
    assert meta["synonyms"] > 300
    calibration = meta["calibration"]
    assert set(calibration) >= {"queries", "ece"}


def test_numerals_are_folded_where_they_are_numbers() -> None:
    assert fold_numbers("转账五万要多久") == "转账50000要多久"
    assert fold_numbers("三天能到吗") == "3天能到吗"
    assert fold_numbers("十二点关门") == "12点关门"
    for text in ("一般多久", "万一丢了", "一心一意", "千万别", "十分方便", "一卡通"):
        assert fold_numbers(text) == text
    assert TextAnalyzer().analyse("轉賬五萬").norm == "转账50000"  # Traditional, numerals


def test_synonym_groups_merge_and_expand(tmp_path: Path) -> None:
    mapping = synonym_map([["信用卡", "贷记卡"], ["xyk", "贷记卡"], ["挂失", "报失"]])
    assert mapping["xyk"] == mapping["贷记卡"] == "信用卡" and mapping["报失"] == "挂失"
    analyzer = TextAnalyzer(None, mapping)
    assert analyzer.analyse("贷记卡报失").word_list()[-2:] == ["信用卡", "挂失"]
    kb_dir = tmp_path / "kb"
    kb_dir.mkdir()
    (kb_dir / "synonyms.yml").write_text(
        'version: "1"\nsynonyms:\n  - [借书证, 读者卡]\n', encoding="utf-8"
    )
    assert load_synonyms(kb_dir)["读者卡"] == "借书证"
    assert load_synonyms(kb_dir)["贷记卡"] == "信用卡"  # the shipped dictionary still applies
    (kb_dir / "synonyms.yml").write_text("synonyms: 信用卡\n", encoding="utf-8")
    with pytest.raises(SynonymError, match="list of word lists"):
        read_groups(kb_dir / "synonyms.yml")


def test_kb_synonyms_file_changes_the_build(tmp_path: Path) -> None:
    kb_dir = write_library_kb(tmp_path)
    first = build_knowledge_base(kb_dir, {}, None, progress=False)
    (kb_dir / "synonyms.yml").write_text(
        'version: "1"\nsynonyms:\n  - [读者证, 阅览证]\n', encoding="utf-8"
    )
    second = build_knowledge_base(kb_dir, {}, None, progress=False)
    assert not second.skipped and second.fingerprint != first.fingerprint
    kb = KnowledgeBase.load(kb_dir, KBSettings())
    assert kb.search("阅览证怎么办理", top=1)[0].id == "reader_card"


def test_bm25_baseline_ranks_by_best_question() -> None:
    entries = [
        KBEntry("a", "c", "信用卡怎么还款", "答", ("信用卡还款方式",)),
        KBEntry("b", "c", "借记卡怎么挂失", "答", ("银行卡丢了",)),
    ]
    baseline = BM25Baseline(entries)
    assert baseline.search("银行卡丢了怎么办", 2)[0] == "b"
    assert baseline.search("信用卡还款", 1) == ["a"]
    assert baseline.search("？？", 2) == []


def test_reliability_bins_and_ece() -> None:
    confidence = np.asarray([0.9, 0.9, 0.9, 0.9, 0.1, 0.1])
    correct = np.asarray([1, 1, 1, 0, 0, 0])
    report = reliability(confidence, correct)
    bins = {row["bin"]: row for row in report["bins"]}
    assert bins["0.9-1.0"]["actual"] == 0.75 and bins["0.1-0.2"]["n"] == 2
    assert report["ece"] == pytest.approx((4 * 0.15 + 2 * 0.1) / 6, abs=1e-4)
    assert decision_reliability([1.0], [True])["ece"] == 0.0


def test_centroid_classifier_scores_the_nearest_entry(tmp_path: Path) -> None:
    analyzer = TextAnalyzer()
    texts = ["信用卡怎么还款", "信用卡还款日", "借记卡挂失", "银行卡丢了怎么办"]
    docs = [analyzer.analyse(t) for t in texts]
    model = EntryClassifier.fit(docs, np.asarray([0, 0, 2, 2]), 3)
    scores, coverage = model.predict(analyzer.analyse("卡丢了挂失"))
    assert scores.shape == (3,) and int(np.argmax(scores)) == 2 and scores[1] == 0.0
    assert 0.0 < coverage <= 1.0 and scores.min() >= 0.0 and scores.max() <= 1.0 + 1e-6
    model.save(tmp_path)
    again = EntryClassifier.load(tmp_path)
    assert np.allclose(
        again.predict(analyzer.analyse("信用卡还款"))[0],
        model.predict(analyzer.analyse("信用卡还款"))[0],
    )


def test_cli_prints_calibration_and_baseline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BOT_PROJECT", raising=False)
    kb_dir = write_library_kb(tmp_path)
    assert main(["kb", "build", "--kb-dir", str(kb_dir)]) == 0
    out = capsys.readouterr().out
    assert "ECE" in out and "predicted" in out
    tsv = tmp_path / "eval.tsv"
    tsv.write_text("query\ttopic_id\n借书要带什么\tborrow_books\nwifi连不上\twifi\n", "utf-8")
    assert main(["kb", "eval", str(tsv), "--out", str(tmp_path), "--kb-dir", str(kb_dir)]) == 0
    out = capsys.readouterr().out
    assert "baseline BM25" in out and "ECE" in out
    data = json.loads((tmp_path / "kb_eval.json").read_text(encoding="utf-8"))
    assert {"baseline_bm25", "reliability", "build_calibration"} <= set(data)
    assert 0.0 <= data["baseline_bm25"]["top1"] <= 1.0


def test_refined_classifier_separates_close_entries_and_warm_starts() -> None:
    from scipy import sparse

    from bot.kb.classifier import refine

    analyzer = TextAnalyzer()
    texts = [
        "信用卡怎么还款",
        "信用卡还款方式",
        "信用卡自动还款",  # entry 0
        "信用卡额度怎么提高",
        "信用卡提额",
        "信用卡临时额度",  # entry 1
        "借记卡挂失",
        "银行卡丢了怎么办",  # entry 2
    ]
    labels = np.asarray([0, 0, 0, 1, 1, 1, 2, 2])
    docs = [analyzer.analyse(t) for t in texts]
    model = EntryClassifier.fit(docs, labels, 3)
    for doc, label in zip(docs, labels, strict=True):  # every training row leads for its entry
        assert int(np.argmax(model.predict(doc)[0])) == label
    # refining moves weights: a row confused with another entry is pushed apart by the margin
    x = sparse.csr_matrix(np.asarray([[1.0, 0.0], [0.8, 0.6]], np.float32))
    start = sparse.csr_matrix(np.asarray([[1.0, 0.9], [0.0, 0.3]], np.float32))
    w = refine(start, x, np.asarray([0, 1]), epochs=20, rate=0.1, margin=0.2).toarray()
    scores = x.toarray() @ w
    assert scores[0, 0] - scores[0, 1] >= 0.2 and scores[1, 1] - scores[1, 0] >= 0.2
    # an incremental fit keeps the vocabulary and starts unchanged entries from their weights
    warm = EntryClassifier.fit(docs, labels, 3, warm=(model, np.asarray([0, -1, 2])))
    assert warm.featurizer is model.featurizer
    assert int(np.argmax(warm.predict(analyzer.analyse("信用卡提额"))[0])) == 1
