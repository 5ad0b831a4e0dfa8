"""What the core-banking backends return and raise, and the interface they implement.

No I/O here. Money is integer fen (1 元 = 100 fen), never float. A card leaves a backend only
as its last four digits (:attr:`Account.last4`); full card numbers never appear in these types.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import date, datetime
from types import TracebackType
from typing import Any, Literal, Self, get_args

from bot.errors import BotError

AccountType = Literal["debit_card", "credit_card"]
StepStatus = Literal["done", "in_progress", "pending"]
BusinessType = Literal[
    "loan", "credit_card_application", "card_replacement", "credit_limit_increase"
]

ACCOUNT_TYPES: frozenset[str] = frozenset(get_args(AccountType))
STEP_STATUSES: frozenset[str] = frozenset(get_args(StepStatus))
BUSINESS_TYPES: frozenset[str] = frozenset(get_args(BusinessType))

LAST4 = re.compile(r"[0-9]{4}")
APPLICATION_ID = re.compile(r"[A-Z][0-9]{11}")


class BankError(BotError):
    """Base class of everything a backend raises."""


class UnknownCustomer(BankError):
    """No customer with this id."""


class UnknownCard(BankError):
    """The customer has no card with these last four digits."""


class BackendUnavailable(BankError):
    """The core system cannot answer now (down, slow, or answering nonsense)."""


def _check_fen(name: str, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise TypeError(f"{name} must be integer fen, got {type(value).__name__}")


@dataclass(frozen=True)
class Customer:
    id: str
    name: str
    age: int
    vip: bool = False


@dataclass(frozen=True)
class Account:
    """A card account. Debit cards have ``balance_fen`` (and ``available_fen`` equal to it
    unless some is on hold); credit cards have the limit, available credit, the statement
    balance and its due date."""

    account_id: str
    customer_id: str
    type: AccountType
    last4: str
    balance_fen: int | None = None
    credit_limit_fen: int | None = None
    available_fen: int | None = None
    statement_balance_fen: int | None = None
    due_date: date | None = None
    frozen: bool = False

    def __post_init__(self) -> None:
        if self.type not in ACCOUNT_TYPES:
            raise ValueError(f"unknown account type {self.type!r}")
        if not isinstance(self.last4, str) or not LAST4.fullmatch(self.last4):
            raise ValueError("last4 must be exactly four digits")
        for name in ("balance_fen", "credit_limit_fen", "available_fen", "statement_balance_fen"):
            _check_fen(name, getattr(self, name))

    @property
    def masked(self) -> str:
        """``尾号1234``: the only way a card is shown."""
        return f"尾号{self.last4}"


@dataclass(frozen=True)
class ApplicationStep:
    """One step of an application. ``date`` is when a done step finished, or since when an
    in-progress step has been running; pending steps have none."""

    name: str
    status: StepStatus
    date: date | None = None

    def __post_init__(self) -> None:
        if self.status not in STEP_STATUSES:
            raise ValueError(f"unknown step status {self.status!r}")


@dataclass(frozen=True)
class Application:
    """A customer's application. ``details`` holds business-specific facts such as
    ``courier`` and ``tracking_number`` (card replacement) or ``new_limit_fen``
    (credit-limit increase)."""

    id: str
    customer_id: str
    business_type: BusinessType
    product: str | None
    amount_fen: int | None
    steps: tuple[ApplicationStep, ...]
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.business_type not in BUSINESS_TYPES:
            raise ValueError(f"unknown business type {self.business_type!r}")
        _check_fen("amount_fen", self.amount_fen)

    @property
    def is_open(self) -> bool:
        """Still being handled: some step is not done yet."""
        return any(step.status != "done" for step in self.steps)

    @property
    def current_step(self) -> ApplicationStep | None:
        return next((s for s in self.steps if s.status == "in_progress"), None)

    @property
    def next_step(self) -> ApplicationStep | None:
        return next((s for s in self.steps if s.status == "pending"), None)


@dataclass(frozen=True)
class FreezeResult:
    """The outcome of a temporary freeze. ``frozen_at`` is when the card was frozen (for an
    already frozen card, the earlier freeze)."""

    last4: str
    already_frozen: bool
    frozen_at: datetime | None


class CoreBanking(ABC):
    """The core system. Every method is synchronous and safe to call from several threads.

    Customer ids are the verified ids from the channel. Methods about a customer raise
    :class:`UnknownCustomer` for an unknown id and :class:`BackendUnavailable` when the
    system cannot answer.
    """

    @abstractmethod
    def customer(self, customer_id: str) -> Customer:
        """The customer."""

    @abstractmethod
    def accounts(self, customer_id: str) -> list[Account]:
        """The customer's card accounts, in a stable order."""

    @abstractmethod
    def applications(self, customer_id: str, open_only: bool = False) -> list[Application]:
        """The customer's applications, oldest first; only unfinished ones if ``open_only``."""

    @abstractmethod
    def application(self, customer_id: str, application_id: str) -> Application | None:
        """One of the customer's own applications, or ``None`` (also for another
        customer's application id)."""

    @abstractmethod
    def freeze_card(self, customer_id: str, last4: str) -> FreezeResult:
        """Freeze the customer's card temporarily. :class:`UnknownCard` if the customer has
        no such card; an already frozen card gives ``already_frozen=True``."""

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release connections."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
