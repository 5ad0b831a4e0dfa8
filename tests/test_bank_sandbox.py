"""The sandbox core system: the contract records of bank-domain.md, freezes, ownership of
applications, reset, persistence and concurrent use; and choosing it through the factory."""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from bot.bank import factory
from bot.bank.interfaces import (
    Account,
    Application,
    ApplicationStep,
    BackendUnavailable,
    BankError,
    Customer,
    FreezeResult,
    UnknownCard,
    UnknownCustomer,
)
from bot.bank.money import format_yuan
from bot.bank.sandbox import ACCOUNTS, SandboxBank
from bot.errors import ConfigError

CST = timezone(timedelta(hours=8))


@pytest.fixture
def bank(tmp_path: Path) -> Iterator[SandboxBank]:
    with SandboxBank(tmp_path / "sandbox_bank.db") as b:
        yield b


# -- the contract records (../shared/reference/bank-domain.md) ---------------------------------


def test_customers_of_the_contract(bank: SandboxBank) -> None:
    assert bank.customer("C1001") == Customer("C1001", "张伟", 35, False)
    assert bank.customer("C1002") == Customer("C1002", "李秀英", 72, False)
    assert bank.customer("C1003") == Customer("C1003", "王磊", 28, False)


def test_c1001_accounts(bank: SandboxBank) -> None:
    debit, credit = bank.accounts("C1001")
    assert debit == Account(
        account_id=debit.account_id,
        customer_id="C1001",
        type="debit_card",
        last4="1234",
        balance_fen=5238050,
        available_fen=5238050,
        frozen=False,
    )
    assert credit == Account(
        account_id=credit.account_id,
        customer_id="C1001",
        type="credit_card",
        last4="5678",
        balance_fen=None,
        credit_limit_fen=5000000,
        available_fen=3120000,
        statement_balance_fen=1880000,
        due_date=date(2026, 12, 5),
        frozen=False,
    )
    assert format_yuan(debit.balance_fen or 0) == "52,380.50 元"
    assert format_yuan(credit.credit_limit_fen or 0) == "50,000.00 元"
    assert format_yuan(credit.available_fen or 0) == "31,200.00 元"
    assert format_yuan(credit.statement_balance_fen or 0) == "18,800.00 元"
    assert debit.masked == "尾号1234"


def test_c1001_applications(bank: SandboxBank) -> None:
    loan, replacement = bank.applications("C1001")
    assert loan == Application(
        id="L20261101001",
        customer_id="C1001",
        business_type="loan",
        product="个人消费贷",
        amount_fen=20000000,
        steps=(
            ApplicationStep("资料提交", "done", date(2026, 11, 1)),
            ApplicationStep("资料审核", "done", date(2026, 11, 3)),
            ApplicationStep("风控审批", "in_progress", None),
            ApplicationStep("放款", "pending", None),
        ),
        details={},
    )
    assert format_yuan(loan.amount_fen or 0) == "200,000.00 元"
    assert loan.current_step == ApplicationStep("风控审批", "in_progress", None)
    assert loan.next_step == ApplicationStep("放款", "pending", None)
    assert loan.is_open
    assert replacement.id == "R20261115002"
    assert replacement.business_type == "card_replacement"
    assert replacement.details == {"courier": "顺丰", "tracking_number": "SF1234567890"}
    shipped = next(s for s in replacement.steps if s.name == "已寄出")
    assert shipped.date == date(2026, 11, 18)
    assert shipped.status in ("done", "in_progress")


def test_c1002_records(bank: SandboxBank) -> None:
    assert bank.accounts("C1002") == [
        Account(
            account_id=bank.accounts("C1002")[0].account_id,
            customer_id="C1002",
            type="debit_card",
            last4="8888",
            balance_fen=12800000,
            available_fen=12800000,
        )
    ]
    (increase,) = bank.applications("C1002")
    assert increase.id == "Q20261120003"
    assert increase.business_type == "credit_limit_increase"
    assert ApplicationStep("审核通过", "done", date(2026, 11, 21)) in increase.steps
    assert increase.details["new_limit_fen"] == 3000000
    assert format_yuan(increase.details["new_limit_fen"]) == "30,000.00 元"
    assert not increase.is_open


def test_c1003_records(bank: SandboxBank) -> None:
    (debit,) = bank.accounts("C1003")
    assert (debit.type, debit.last4, debit.balance_fen) == ("debit_card", "3141", 271828)
    assert format_yuan(debit.balance_fen or 0) == "2,718.28 元"
    (app,) = bank.applications("C1003")
    assert app.id == "A20261118004"
    assert app.business_type == "credit_card_application"
    assert app.current_step == ApplicationStep("资料审核", "in_progress", date(2026, 11, 18))


def test_variety_beyond_the_contract(bank: SandboxBank) -> None:
    customers = bank.customers()
    assert [c.id for c in customers][:3] == ["C1001", "C1002", "C1003"]
    assert any(c.vip for c in customers)
    assert any(sum(a.type == "debit_card" for a in bank.accounts(c.id)) >= 2 for c in customers)
    assert any(a.frozen for c in customers for a in bank.accounts(c.id))
    assert any(not bank.accounts(c.id) for c in customers)
    assert bank.counts() == {
        "customers": len(customers),
        "accounts": len(ACCOUNTS),
        "applications": 8,
    }


def test_every_record_is_well_formed(bank: SandboxBank) -> None:
    for customer in bank.customers():
        last4s = [a.last4 for a in bank.accounts(customer.id)]
        assert len(last4s) == len(set(last4s))
        for account in bank.accounts(customer.id):
            assert account.customer_id == customer.id
            if account.type == "credit_card":
                assert account.credit_limit_fen is not None
                assert account.available_fen is not None
                assert account.available_fen <= account.credit_limit_fen
            else:
                assert account.balance_fen is not None
        for app in bank.applications(customer.id):
            assert re.fullmatch(r"[A-Z]\d{11}", app.id)
            assert app.customer_id == customer.id
            assert sum(s.status == "in_progress" for s in app.steps) <= 1
            for step in app.steps:
                if step.status == "done":
                    assert step.date is not None
                if step.status == "pending":
                    assert step.date is None


# -- cards only as last four digits ----------------------------------------------------------


def test_no_full_card_number_ever_leaves(bank: SandboxBank) -> None:
    returned = [repr(bank.customers())]
    for customer in bank.customers():
        returned += [
            repr(bank.customer(customer.id)),
            repr(bank.accounts(customer.id)),
            repr(bank.applications(customer.id)),
        ]
        for account in bank.accounts(customer.id):
            returned.append(repr(bank.freeze_card(customer.id, account.last4)))
    text = "\n".join(returned)
    for row in ACCOUNTS:
        assert row[3] not in text
    assert not re.search(r"\d{12,}", text)


# -- applications: only the customer's own -----------------------------------------------------


def test_application_by_id(bank: SandboxBank) -> None:
    app = bank.application("C1001", "L20261101001")
    assert app is not None and app.amount_fen == 20000000
    assert bank.application("C1001", " l20261101001 ") == app


def test_another_customers_application_is_not_found(bank: SandboxBank) -> None:
    assert bank.application("C1002", "L20261101001") is None
    assert bank.application("C1003", "Q20261120003") is None
    assert bank.application("C1001", "A20261118004") is None
    assert all(a.customer_id == "C1002" for a in bank.applications("C1002"))


def test_unknown_application(bank: SandboxBank) -> None:
    assert bank.application("C1001", "L99999999999") is None
    assert bank.application("C1001", "") is None


def test_open_only(bank: SandboxBank) -> None:
    assert [a.id for a in bank.applications("C1001", open_only=True)] == [
        "L20261101001",
        "R20261115002",
    ]
    assert bank.applications("C1002", open_only=True) == []
    everything = bank.applications("C1004")
    assert len(everything) == 2
    assert [a.id for a in bank.applications("C1004", open_only=True)] == [
        a.id for a in everything if a.is_open
    ]


@pytest.mark.parametrize(
    "call",
    [
        lambda b: b.customer("C9999"),
        lambda b: b.accounts("C9999"),
        lambda b: b.applications("C9999"),
        lambda b: b.application("C9999", "L20261101001"),
        lambda b: b.freeze_card("C9999", "1234"),
        lambda b: b.accounts(""),
    ],
)
def test_unknown_customer(bank: SandboxBank, call: object) -> None:
    with pytest.raises(UnknownCustomer):
        call(bank)  # type: ignore[operator]


# -- freezing ----------------------------------------------------------------------------------


def test_freeze_card(bank: SandboxBank) -> None:
    before = datetime.now(CST).replace(microsecond=0)
    result = bank.freeze_card("C1001", "1234")
    assert result.last4 == "1234"
    assert result.already_frozen is False
    assert result.frozen_at is not None and result.frozen_at.utcoffset() == timedelta(hours=8)
    assert result.frozen_at >= before
    debit, credit = bank.accounts("C1001")
    assert debit.frozen and not credit.frozen
    again = bank.freeze_card("C1001", "1234")
    assert again == FreezeResult("1234", True, result.frozen_at)


def test_already_frozen_seed_card(bank: SandboxBank) -> None:
    frozen = [(c.id, a) for c in bank.customers() for a in bank.accounts(c.id) if a.frozen]
    assert frozen
    customer, account = frozen[0]
    result = bank.freeze_card(customer, account.last4)
    assert result.already_frozen is True
    assert result.frozen_at == datetime(2026, 11, 10, 9, 30, tzinfo=CST)


@pytest.mark.parametrize("last4", ["0000", "8888", "123", "12345", "abcd", "", "1234 "])
def test_unknown_card(bank: SandboxBank, last4: str) -> None:
    if last4.strip() == "1234":
        assert bank.freeze_card("C1001", last4).last4 == "1234"  # surrounding space is fine
        return
    with pytest.raises(UnknownCard):
        bank.freeze_card("C1001", last4)
    assert not any(a.frozen for a in bank.accounts("C1001"))


def test_cannot_freeze_another_customers_card(bank: SandboxBank) -> None:
    with pytest.raises(UnknownCard):
        bank.freeze_card("C1002", "1234")
    assert not bank.accounts("C1001")[0].frozen


def test_freeze_persists_for_another_connection(bank: SandboxBank) -> None:
    bank.freeze_card("C1003", "3141")
    with SandboxBank(bank.path) as other:
        assert other.accounts("C1003")[0].frozen
        assert other.freeze_card("C1003", "3141").already_frozen


# -- reset and creation ------------------------------------------------------------------------


def test_reset_reseeds(bank: SandboxBank) -> None:
    seeded = {c.id: (bank.accounts(c.id), bank.applications(c.id)) for c in bank.customers()}
    bank.freeze_card("C1001", "1234")
    conn = sqlite3.connect(bank.path)
    with conn:
        conn.execute("DELETE FROM application_steps WHERE application_id = 'L20261101001'")
        conn.execute("UPDATE accounts SET balance_fen = 1 WHERE account_id = 'AC100201'")
        conn.execute("INSERT INTO customers VALUES ('C7777', '测试', 30, 0)")
    conn.close()
    counts = bank.reset()
    assert counts == {"customers": 6, "accounts": len(ACCOUNTS), "applications": 8}
    assert {
        c.id: (bank.accounts(c.id), bank.applications(c.id)) for c in bank.customers()
    } == seeded
    assert not bank.accounts("C1001")[0].frozen
    with pytest.raises(UnknownCustomer):
        bank.customer("C7777")


def test_created_on_first_use(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "bank.db"
    with SandboxBank(path) as bank:
        assert path.is_file()
        assert bank.customer("C1001").name == "张伟"
    with SandboxBank(path) as bank:  # opening again does not reseed
        assert bank.counts()["customers"] == 6


def test_old_schema_asks_for_reset(tmp_path: Path) -> None:
    path = tmp_path / "bank.db"
    SandboxBank(path).close()
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("UPDATE meta SET value = '0' WHERE key = 'schema_version'")
    conn.close()
    with pytest.raises(BankError, match="bot sandbox reset"):
        SandboxBank(path)


def test_closed_bank_is_unavailable(tmp_path: Path) -> None:
    bank = SandboxBank(tmp_path / "bank.db")
    bank.close()
    with pytest.raises(BackendUnavailable):
        bank.accounts("C1001")
    with pytest.raises(BackendUnavailable):
        bank.freeze_card("C1001", "1234")


# -- concurrency -------------------------------------------------------------------------------


def _run_threads(count: int, work: object) -> list[object]:
    barrier = threading.Barrier(count)
    results: list[object] = [None] * count
    errors: list[BaseException] = []

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)  # type: ignore[operator]
        except BaseException as exc:  # collected and re-raised in the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


def test_one_freeze_wins_among_threads(bank: SandboxBank) -> None:
    results = _run_threads(16, lambda i: bank.freeze_card("C1001", "5678"))
    assert sum(not r.already_frozen for r in results) == 1  # type: ignore[attr-defined]
    assert len({r.frozen_at for r in results}) == 1  # type: ignore[attr-defined]


def test_one_freeze_wins_among_connections(tmp_path: Path) -> None:
    path = tmp_path / "bank.db"
    banks = [SandboxBank(path) for _ in range(6)]
    try:
        results = _run_threads(6, lambda i: banks[i].freeze_card("C1004", "1357"))
    finally:
        for b in banks:
            b.close()
    assert sum(not r.already_frozen for r in results) == 1  # type: ignore[attr-defined]


def test_concurrent_reads_writes_and_resets(bank: SandboxBank) -> None:
    customers = ["C1001", "C1002", "C1003", "C1004", "C1005"]

    def work(i: int) -> None:
        for n in range(30):
            customer = customers[(i + n) % len(customers)]
            accounts = bank.accounts(customer)
            assert accounts and all(a.customer_id == customer for a in accounts)
            assert all(a.customer_id == customer for a in bank.applications(customer))
            if n % 7 == 0:
                bank.freeze_card(customer, accounts[-1].last4)
            if i == 0 and n % 10 == 0:
                bank.reset()

    _run_threads(8, work)
    assert bank.reset()["customers"] == 6


# -- the factory -------------------------------------------------------------------------------


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in (factory.ENV_URL, factory.ENV_TOKEN, factory.ENV_PROJECT):
        monkeypatch.delenv(name, raising=False)
    factory.reset_default_backend()
    yield
    factory.reset_default_backend()


def test_factory_defaults_to_the_sandbox(tmp_path: Path, clean_env: None) -> None:
    with factory.create_backend(None, tmp_path) as backend:
        assert isinstance(backend, SandboxBank)
        assert backend.path == tmp_path / "data" / "sandbox_bank.db"
    with factory.create_backend({"type": "sandbox", "path": "x/bank.db"}, tmp_path) as backend:
        assert isinstance(backend, SandboxBank)
        assert backend.path == tmp_path / "x" / "bank.db"
    absolute = tmp_path / "abs.db"
    with factory.create_backend({"path": str(absolute)}, tmp_path / "elsewhere") as backend:
        assert isinstance(backend, SandboxBank) and backend.path == absolute


@pytest.mark.parametrize(
    "config",
    [
        {"type": "mainframe"},
        {"type": "sandbox", "pth": "typo.db"},
        {"type": "http"},
        {"type": "http", "base_url": "ftp://x"},
        {"type": "http", "base_url": "http://127.0.0.1:1", "timeout": 0},
        {"type": "http", "base_url": "http://127.0.0.1:1", "timeout": "fast"},
        {"type": "http", "base_url": "http://127.0.0.1:1", "token": "${BANKBOT_TEST_UNSET_VAR}"},
    ],
)
def test_factory_rejects_bad_config(
    tmp_path: Path, clean_env: None, config: dict[str, object]
) -> None:
    with pytest.raises(ConfigError):
        factory.create_backend(config, tmp_path)


def test_default_backend_reads_endpoints(
    tmp_path: Path, clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "endpoints.yml").write_text(
        "bank:\n  type: sandbox\n  path: var/b.db\n", encoding="utf-8"
    )
    monkeypatch.setenv(factory.ENV_PROJECT, str(tmp_path))
    backend = factory.default_backend()
    assert factory.default_backend() is backend
    assert isinstance(backend, SandboxBank) and backend.path == tmp_path / "var" / "b.db"
    assert backend.accounts("C1001")[0].last4 == "1234"
    factory.reset_default_backend()
    assert factory.default_backend() is not backend


def test_default_backend_without_endpoints_uses_cwd(
    tmp_path: Path, clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    backend = factory.default_backend()
    assert isinstance(backend, SandboxBank)
    assert backend.path == tmp_path.resolve() / "data" / "sandbox_bank.db"


def test_default_backend_is_created_once_across_threads(
    tmp_path: Path, clean_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(factory.ENV_PROJECT, str(tmp_path))
    backends = _run_threads(8, lambda i: factory.default_backend())
    assert len({id(b) for b in backends}) == 1


def test_dataclasses_refuse_floats_and_full_numbers() -> None:
    account = Account("A", "C1", "debit_card", "1234", balance_fen=100)
    with pytest.raises(TypeError):
        replace(account, balance_fen=1.5)
    with pytest.raises(ValueError):
        replace(account, last4="6222021001001234")
    with pytest.raises(ValueError):
        replace(account, type="savings")
