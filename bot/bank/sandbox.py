"""The sandbox core system: a real SQLite database, created and seeded on first use, that
stands in for the bank's core banking. Its records are a contract (see
``docs/bank-backend.md``); :meth:`SandboxBank.reset` puts them back as seeded.

Full card numbers are stored (as a real core system would) but only the last four digits
ever leave this module.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, cast

from bot.bank.interfaces import (
    LAST4,
    Account,
    AccountType,
    Application,
    ApplicationStep,
    BackendUnavailable,
    BankError,
    BusinessType,
    CoreBanking,
    Customer,
    FreezeResult,
    StepStatus,
    UnknownCard,
    UnknownCustomer,
)

DEFAULT_PATH = Path("data") / "sandbox_bank.db"
SCHEMA_VERSION = "1"
CHINA_TZ = timezone(timedelta(hours=8))  # Asia/Shanghai, no DST

_TABLES = ("application_steps", "applications", "accounts", "customers", "meta")
_SCHEMA = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE customers (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        age INTEGER NOT NULL,
        vip INTEGER NOT NULL DEFAULT 0)""",
    """CREATE TABLE accounts (
        account_id TEXT PRIMARY KEY,
        customer_id TEXT NOT NULL REFERENCES customers(id),
        position INTEGER NOT NULL,
        type TEXT NOT NULL CHECK (type IN ('debit_card', 'credit_card')),
        card_number TEXT NOT NULL UNIQUE CHECK (length(card_number) BETWEEN 16 AND 19),
        last4 TEXT NOT NULL GENERATED ALWAYS AS (substr(card_number, -4)) VIRTUAL,
        balance_fen INTEGER,
        credit_limit_fen INTEGER,
        available_fen INTEGER,
        statement_balance_fen INTEGER,
        due_date TEXT,
        frozen INTEGER NOT NULL DEFAULT 0,
        frozen_at TEXT)""",
    "CREATE INDEX accounts_by_customer ON accounts (customer_id, position)",
    """CREATE TABLE applications (
        id TEXT PRIMARY KEY,
        customer_id TEXT NOT NULL REFERENCES customers(id),
        business_type TEXT NOT NULL CHECK (business_type IN
            ('loan', 'credit_card_application', 'card_replacement', 'credit_limit_increase')),
        product TEXT,
        amount_fen INTEGER,
        submitted_on TEXT NOT NULL,
        details TEXT NOT NULL DEFAULT '{}')""",
    "CREATE INDEX applications_by_customer ON applications (customer_id, submitted_on)",
    """CREATE TABLE application_steps (
        application_id TEXT NOT NULL REFERENCES applications(id),
        seq INTEGER NOT NULL,
        name TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('done', 'in_progress', 'pending')),
        date TEXT,
        PRIMARY KEY (application_id, seq))""",
)

# The seeded records. C1001-C1003 are those of bank-domain.md (a contract other tools test
# against: change them only together with that file); the others add variety.
CUSTOMERS: tuple[tuple[str, str, int, bool], ...] = (
    ("C1001", "张伟", 35, False),
    ("C1002", "李秀英", 72, False),
    ("C1003", "王磊", 28, False),
    ("C1004", "周敏", 46, True),  # VIP with two debit cards and a credit card
    ("C1005", "赵强", 52, False),  # a card already frozen, replacement in progress
    ("C1006", "刘洋", 24, False),  # no cards yet, first credit card applied for
)

# account_id, customer, type, full card number, balance, limit, available, statement, due,
# frozen_at (None: not frozen). Amounts in fen.
ACCOUNTS: tuple[tuple[Any, ...], ...] = (
    (
        "AC100101",
        "C1001",
        "debit_card",
        "6222021001001234",
        5238050,
        None,
        5238050,
        None,
        None,
        None,
    ),
    (
        "AC100102",
        "C1001",
        "credit_card",
        "6258091001005678",
        None,
        5000000,
        3120000,
        1880000,
        "2026-12-05",
        None,
    ),
    (
        "AC100201",
        "C1002",
        "debit_card",
        "6222021002008888",
        12800000,
        None,
        12800000,
        None,
        None,
        None,
    ),
    ("AC100301", "C1003", "debit_card", "6222021003003141", 271828, None, 271828, None, None, None),
    ("AC100401", "C1004", "debit_card", "6222021004002468", 865000, None, 865000, None, None, None),
    (
        "AC100402",
        "C1004",
        "debit_card",
        "6222021004011357",
        32690000,
        None,
        32690000,
        None,
        None,
        None,
    ),
    (
        "AC100403",
        "C1004",
        "credit_card",
        "6258091004009999",
        None,
        20000000,
        18854000,
        1146000,
        "2026-12-08",
        None,
    ),
    (
        "AC100501",
        "C1005",
        "debit_card",
        "6222021005004321",
        500000,
        None,
        500000,
        None,
        None,
        "2026-11-10T09:30:00+08:00",
    ),
    (
        "AC100502",
        "C1005",
        "credit_card",
        "6258091005008765",
        None,
        2000000,
        2000000,
        0,
        "2026-12-10",
        None,
    ),
)

# id, customer, business type, product, amount (fen), submitted on, details, steps
APPLICATIONS: tuple[tuple[Any, ...], ...] = (
    (
        "L20261101001",
        "C1001",
        "loan",
        "个人消费贷",
        20000000,
        "2026-11-01",
        {},
        (
            ("资料提交", "done", "2026-11-01"),
            ("资料审核", "done", "2026-11-03"),
            ("风控审批", "in_progress", None),
            ("放款", "pending", None),
        ),
    ),
    (
        "R20261115002",
        "C1001",
        "card_replacement",
        "补换卡",
        None,
        "2026-11-15",
        {"courier": "顺丰", "tracking_number": "SF1234567890"},
        (
            ("申请受理", "done", "2026-11-15"),
            ("已寄出", "in_progress", "2026-11-18"),
            ("签收", "pending", None),
        ),
    ),
    (
        "Q20261120003",
        "C1002",
        "credit_limit_increase",
        "信用卡提额",
        None,
        "2026-11-20",
        {"new_limit_fen": 3000000},
        (
            ("提交申请", "done", "2026-11-20"),
            ("审核通过", "done", "2026-11-21"),
        ),
    ),
    (
        "A20261118004",
        "C1003",
        "credit_card_application",
        "信用卡",
        None,
        "2026-11-18",
        {},
        (
            ("提交申请", "done", "2026-11-18"),
            ("资料审核", "in_progress", "2026-11-18"),
            ("审批", "pending", None),
            ("制卡寄送", "pending", None),
        ),
    ),
    (
        "L20260915007",
        "C1004",
        "loan",
        "装修贷",
        30000000,
        "2026-09-15",
        {},
        (
            ("资料提交", "done", "2026-09-15"),
            ("资料审核", "done", "2026-09-17"),
            ("风控审批", "done", "2026-09-20"),
            ("放款", "done", "2026-09-22"),
        ),
    ),
    (
        "Q20261123008",
        "C1004",
        "credit_limit_increase",
        "信用卡提额",
        None,
        "2026-11-23",
        {"requested_limit_fen": 30000000},
        (
            ("提交申请", "done", "2026-11-23"),
            ("额度审核", "in_progress", "2026-11-23"),
            ("额度生效", "pending", None),
        ),
    ),
    (
        "R20261110005",
        "C1005",
        "card_replacement",
        "补换卡",
        None,
        "2026-11-10",
        {},
        (
            ("申请受理", "done", "2026-11-10"),
            ("制卡", "in_progress", "2026-11-11"),
            ("已寄出", "pending", None),
            ("签收", "pending", None),
        ),
    ),
    (
        "A20261122006",
        "C1006",
        "credit_card_application",
        "信用卡",
        None,
        "2026-11-22",
        {},
        (
            ("提交申请", "done", "2026-11-22"),
            ("资料审核", "in_progress", "2026-11-22"),
            ("审批", "pending", None),
            ("制卡寄送", "pending", None),
        ),
    ),
)

_ACCOUNT_COLUMNS = (
    "account_id, customer_id, type, last4, balance_fen, credit_limit_fen, available_fen, "
    "statement_balance_fen, due_date, frozen"
)


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


class SandboxBank(CoreBanking):
    """The seeded SQLite core system at ``path`` (created and seeded if missing).

    One connection serves all threads, one call at a time; a freeze is a single
    ``BEGIN IMMEDIATE`` transaction, so two processes on one file cannot both freeze a card.
    """

    def __init__(self, path: str | Path = DEFAULT_PATH) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(
                self.path, timeout=10.0, isolation_level=None, check_same_thread=False
            )
            self._conn.row_factory = sqlite3.Row
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            with self._lock, self._transaction():
                if self._schema_version() is None:
                    self._create_and_seed()
        except sqlite3.Error as exc:
            raise BackendUnavailable(f"sandbox bank {self.path}: {exc}") from exc
        version = self._schema_version()
        if version != SCHEMA_VERSION:
            raise BankError(
                f"sandbox bank {self.path} has schema version {version}, expected "
                f"{SCHEMA_VERSION}: run `bot sandbox reset` to recreate it"
            )

    # -- CoreBanking ------------------------------------------------------------------------

    def customer(self, customer_id: str) -> Customer:
        with self._read() as conn:
            row = conn.execute(
                "SELECT id, name, age, vip FROM customers WHERE id = ?", (customer_id,)
            ).fetchone()
        if row is None:
            raise UnknownCustomer(f"no customer {customer_id!r}")
        return Customer(id=row["id"], name=row["name"], age=row["age"], vip=bool(row["vip"]))

    def customers(self) -> list[Customer]:
        """Every customer, by id (sandbox only)."""
        with self._read() as conn:
            rows = conn.execute("SELECT id, name, age, vip FROM customers ORDER BY id").fetchall()
        return [
            Customer(id=r["id"], name=r["name"], age=r["age"], vip=bool(r["vip"])) for r in rows
        ]

    def accounts(self, customer_id: str) -> list[Account]:
        with self._read() as conn:
            self._require_customer(conn, customer_id)
            rows = conn.execute(
                f"SELECT {_ACCOUNT_COLUMNS} FROM accounts WHERE customer_id = ? ORDER BY position",
                (customer_id,),
            ).fetchall()
        return [self._account(row) for row in rows]

    def applications(self, customer_id: str, open_only: bool = False) -> list[Application]:
        with self._read() as conn:
            self._require_customer(conn, customer_id)
            rows = conn.execute(
                "SELECT * FROM applications WHERE customer_id = ? ORDER BY submitted_on, id",
                (customer_id,),
            ).fetchall()
            apps = [self._application(conn, row) for row in rows]
        return [a for a in apps if a.is_open] if open_only else apps

    def application(self, customer_id: str, application_id: str) -> Application | None:
        wanted = str(application_id).strip().upper()
        with self._read() as conn:
            self._require_customer(conn, customer_id)
            row = conn.execute(
                "SELECT * FROM applications WHERE id = ? AND customer_id = ?", (wanted, customer_id)
            ).fetchone()
            return None if row is None else self._application(conn, row)

    def freeze_card(self, customer_id: str, last4: str) -> FreezeResult:
        last4 = str(last4).strip()
        try:
            with self._lock, self._transaction():
                self._require_customer(self._conn, customer_id)
                row = None
                if LAST4.fullmatch(last4):
                    row = self._conn.execute(
                        "SELECT account_id, frozen, frozen_at FROM accounts "
                        "WHERE customer_id = ? AND last4 = ? ORDER BY position",
                        (customer_id, last4),
                    ).fetchone()
                if row is None:
                    raise UnknownCard(f"customer {customer_id} has no card ending {last4}")
                if row["frozen"]:
                    at = row["frozen_at"]
                    return FreezeResult(last4, True, datetime.fromisoformat(at) if at else None)
                now = datetime.now(CHINA_TZ).replace(microsecond=0)
                self._conn.execute(
                    "UPDATE accounts SET frozen = 1, frozen_at = ? WHERE account_id = ?",
                    (now.isoformat(), row["account_id"]),
                )
                return FreezeResult(last4, False, now)
        except sqlite3.Error as exc:
            raise BackendUnavailable(f"sandbox bank {self.path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- sandbox administration -------------------------------------------------------------

    def reset(self) -> dict[str, int]:
        """Drop everything and seed again; the record counts."""
        try:
            with self._lock, self._transaction():
                for table in _TABLES:
                    self._conn.execute(f"DROP TABLE IF EXISTS {table}")
                self._create_and_seed()
        except sqlite3.Error as exc:
            raise BackendUnavailable(f"sandbox bank {self.path}: {exc}") from exc
        return self.counts()

    def counts(self) -> dict[str, int]:
        """How many customers, accounts and applications there are."""
        with self._read() as conn:
            return {
                table: int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
                for table in ("customers", "accounts", "applications")
            }

    # -- internals --------------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        try:
            with self._lock:
                yield self._conn
        except sqlite3.Error as exc:
            raise BackendUnavailable(f"sandbox bank {self.path}: {exc}") from exc

    def _schema_version(self) -> str | None:
        try:
            row = self._conn.execute(
                "SELECT value FROM meta WHERE key = 'schema_version'"
            ).fetchone()
        except sqlite3.OperationalError:  # no meta table yet
            return None
        return None if row is None else str(row[0])

    def _create_and_seed(self) -> None:
        conn = self._conn
        for statement in _SCHEMA:
            conn.execute(statement)
        conn.execute("INSERT INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
        conn.executemany(
            "INSERT INTO customers VALUES (?, ?, ?, ?)",
            [(c, n, a, int(v)) for c, n, a, v in CUSTOMERS],
        )
        positions: dict[str, int] = {}
        for (
            account_id,
            customer,
            kind,
            number,
            balance,
            limit,
            available,
            statement,
            due,
            frozen_at,
        ) in ACCOUNTS:
            positions[customer] = positions.get(customer, 0) + 1
            conn.execute(
                "INSERT INTO accounts (account_id, customer_id, position, type, card_number, "
                "balance_fen, credit_limit_fen, available_fen, statement_balance_fen, "
                "due_date, frozen, frozen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    account_id,
                    customer,
                    positions[customer],
                    kind,
                    number,
                    balance,
                    limit,
                    available,
                    statement,
                    due,
                    int(frozen_at is not None),
                    frozen_at,
                ),
            )
        for app_id, customer, business, product, amount, submitted, details, steps in APPLICATIONS:
            conn.execute(
                "INSERT INTO applications VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    app_id,
                    customer,
                    business,
                    product,
                    amount,
                    submitted,
                    json.dumps(details, ensure_ascii=False),
                ),
            )
            conn.executemany(
                "INSERT INTO application_steps VALUES (?, ?, ?, ?, ?)",
                [
                    (app_id, seq, name, status, day)
                    for seq, (name, status, day) in enumerate(steps, start=1)
                ],
            )

    @staticmethod
    def _require_customer(conn: sqlite3.Connection, customer_id: str) -> None:
        if conn.execute("SELECT 1 FROM customers WHERE id = ?", (customer_id,)).fetchone() is None:
            raise UnknownCustomer(f"no customer {customer_id!r}")

    @staticmethod
    def _account(row: sqlite3.Row) -> Account:
        return Account(
            account_id=row["account_id"],
            customer_id=row["customer_id"],
            type=cast(AccountType, row["type"]),
            last4=row["last4"],
            balance_fen=row["balance_fen"],
            credit_limit_fen=row["credit_limit_fen"],
            available_fen=row["available_fen"],
            statement_balance_fen=row["statement_balance_fen"],
            due_date=_date(row["due_date"]),
            frozen=bool(row["frozen"]),
        )

    @staticmethod
    def _application(conn: sqlite3.Connection, row: sqlite3.Row) -> Application:
        steps = conn.execute(
            "SELECT name, status, date FROM application_steps WHERE application_id = ? "
            "ORDER BY seq",
            (row["id"],),
        ).fetchall()
        return Application(
            id=row["id"],
            customer_id=row["customer_id"],
            business_type=cast(BusinessType, row["business_type"]),
            product=row["product"],
            amount_fen=row["amount_fen"],
            steps=tuple(
                ApplicationStep(s["name"], cast(StepStatus, s["status"]), _date(s["date"]))
                for s in steps
            ),
            details=json.loads(row["details"]),
        )
