"""Knowledge-base sources: YAML and TSV reading, validation with file:line, duplicates."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
from kb_helpers import REPO, write_library_kb

from bot.kb.sources import (
    KBEntry,
    KBSourceError,
    dump_yaml_entries,
    load_sources,
    read_tsv_source,
    read_yaml_source,
)

DOMAIN_IDS = """open_account_documents, forgot_login_password, reset_card_pin,
card_lost_replacement,
transfer_limit, interbank_transfer_fee, transfer_arrival_time, credit_card_apply,
credit_limit_increase, credit_card_billing_date, credit_card_installment, credit_card_overdue,
credit_card_annual_fee, loan_apply_conditions, loan_required_documents, mortgage_prepayment,
wealth_redemption, wealth_risk_assessment, deposit_insurance, time_deposit_early_withdrawal,
mobile_banking_register, change_phone_number, foreign_exchange, branch_hours,
large_cash_withdrawal_appointment, cardless_withdrawal, account_freeze_unfreeze,
sms_notification, elderly_services, fraud_prevention, ecny_wallet, social_security_card"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_kb_has_every_domain_topic_without_errors() -> None:
    sources = load_sources(REPO / "kb_index")
    assert sources.errors == []
    ids = {e.id for e in sources.entries}
    expected = set(re.split(r"[,\s]+", DOMAIN_IDS.strip()))
    assert expected <= ids
    for entry in sources.entries:
        assert len(entry.similar_questions) >= 8, entry.id
        assert entry.answer and entry.category and entry.question


def test_library_kb_reads_entries_with_lines(tmp_path: Path) -> None:
    kb = write_library_kb(tmp_path)
    sources = load_sources(kb)
    assert [e.id for e in sources.entries][:2] == ["borrow_books", "renew_books"]
    first = sources.entries[0]
    assert first.source is not None and first.source.line == 3
    assert first.source.file.endswith("library.yml")
    assert first.variants()[0] == "怎么借书？"
    assert len(first.variants()) == 9


def test_yaml_problems_name_file_line_and_fix(tmp_path: Path) -> None:
    path = write(
        tmp_path / "kb" / "sources" / "bad.yml",
        """\
version: "1"
entries:
  - id: ok_entry
    category: 测试
    question: 这是好的吗
    answer: 是的
  - id: no answer here
    category: 测试
    question: 缺少答案
  - id: typo_key
    category: 测试
    question: 有拼写错误
    similar_question:
      - 错
    answer: 答
  - id: bad_dates
    category: 测试
    question: 日期
    answer: 答
    valid_from: 2026-05-01
    valid_to: 2026-01-01
""",
    )
    result = read_yaml_source(path, "bad.yml")
    assert [e.id for e in result.entries] == ["ok_entry"]
    messages = [str(p) for p in result.errors]
    assert any(m.startswith("bad.yml:7:") and "letters, digits" in m for m in messages)
    assert any(m.startswith("bad.yml:7:") and "no 'answer'" in m for m in messages)
    assert any(
        m.startswith("bad.yml:13:") and "unknown key 'similar_question'" in m for m in messages
    )
    assert any(m.startswith("bad.yml:21:") and "before valid_from" in m for m in messages)
    assert all("Fix:" in m for m in messages)


def test_invalid_yaml_is_one_error_with_line(tmp_path: Path) -> None:
    path = write(tmp_path / "x.yml", 'version: "1"\nentries:\n  - id: a\n    question: [oops\n')
    result = read_yaml_source(path, "x.yml")
    assert len(result.errors) == 1 and "invalid YAML" in str(result.errors[0])


def test_duplicate_ids_across_files_are_errors(tmp_path: Path) -> None:
    kb = write_library_kb(tmp_path)
    write(
        kb / "sources" / "more.yml",
        'version: "1"\nentries:\n  - id: wifi\n    category: 服务\n    question: 网络\n'
        "    answer: 有\n"
        "  - id: net\n    category: 服务\n    question: 网络2\n"
        "    similar_questions: [借书需要什么手续]\n    answer: 有\n",
    )
    sources = load_sources(kb)
    dup = [str(p) for p in sources.errors]
    assert len(dup) == 1 and "duplicate id 'wifi'" in dup[0] and "library.yml:" in dup[0]
    warnings = [str(p) for p in sources.problems if p.level == "warning"]
    assert any("duplicate question '借书需要什么手续'" in w for w in warnings)
    with pytest.raises(KBSourceError, match="duplicate id"):
        sources.raise_on_errors()


TSV_HEADER = "id\tquestion\tsimilar_questions\tanswer\tcategory\n"


def test_tsv_rows_and_per_line_errors(tmp_path: Path) -> None:
    path = write(
        tmp_path / "in.tsv",
        TSV_HEADER
        + "fee\t手续费多少\t收费吗|要钱吗|贵不贵\t免费。\\n第二行\t费用\n"
        + "only_three\tcolumns\there\n"
        + "\t没有id\t\t答\t类\n"
        + "bad id\t问\t\t答\t类\n"
        + "\n",
    )
    result = read_tsv_source(path, "in.tsv")
    assert [e.id for e in result.entries] == ["fee"]
    entry = result.entries[0]
    assert entry.similar_questions == ("收费吗", "要钱吗", "贵不贵")
    assert entry.answer == "免费。\n第二行"
    errors = [str(p) for p in result.errors]
    assert errors[0].startswith("in.tsv:3:") and "3 column(s), expected 5" in errors[0]
    assert any(e.startswith("in.tsv:4:") and "empty id" in e for e in errors)
    assert any(e.startswith("in.tsv:5:") and "letters, digits" in e for e in errors)


def test_tsv_bad_header(tmp_path: Path) -> None:
    path = write(tmp_path / "h.tsv", "id\tquestion\tanswer\n")
    result = read_tsv_source(path, "h.tsv")
    assert len(result.errors) == 1
    assert "missing column(s) similar_questions, category" in str(result.errors[0])


def test_tsv_optional_columns(tmp_path: Path) -> None:
    path = write(
        tmp_path / "o.tsv",
        "id\tquestion\tsimilar_questions\tanswer\tcategory\tchannels\tvalid_from\tvalid_to\n"
        "promo\t活动\t\t答\t类\tapp|wechat\t2026-01-01\t2026-01-31\n",
    )
    entry = read_tsv_source(path).entries[0]
    assert entry.channels == ("app", "wechat")
    assert entry.valid_from == date(2026, 1, 1) and entry.valid_to == date(2026, 1, 31)


def test_is_active_and_yaml_round_trip(tmp_path: Path) -> None:
    entry = KBEntry(
        id="promo",
        category="活动",
        question="活动吗",
        answer="第一行\n第二行",
        similar_questions=("有活动吗",),
        channels=("app",),
        valid_from=date(2026, 1, 1),
        valid_to=date(2026, 1, 31),
    )
    assert entry.is_active("app", date(2026, 1, 15))
    assert not entry.is_active("wechat", date(2026, 1, 15))
    assert entry.is_active(None, date(2026, 1, 15))
    assert not entry.is_active("app", date(2026, 2, 1))
    assert not entry.is_active("app", date(2025, 12, 31))
    path = write(tmp_path / "r.yml", dump_yaml_entries([entry]))
    again = read_yaml_source(path)
    assert again.errors == [] and again.entries == [entry]
    assert KBEntry.from_dict(entry.to_dict()) == entry
