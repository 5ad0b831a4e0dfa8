"""A real core-banking gateway over HTTP (JSON, Bearer token), with the REST shapes of
``docs/bank-backend.md``:

``GET /customers/{id}``, ``GET /customers/{id}/accounts``,
``GET /customers/{id}/applications[?open=true]``, ``GET /customers/{id}/applications/{app_id}``,
``POST /customers/{id}/cards/{last4}/freeze``.

Amounts are integer fen. 404 becomes :class:`UnknownCustomer` / :class:`UnknownCard` / ``None``;
anything else that is not a well-formed answer (5xx, timeout, refused connection, bad JSON, a
field of the wrong type) becomes :class:`BackendUnavailable` with a message saying which.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, TypeVar, cast
from urllib.parse import quote

from bot.bank.interfaces import (
    ACCOUNT_TYPES,
    BUSINESS_TYPES,
    LAST4,
    STEP_STATUSES,
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

if TYPE_CHECKING:
    import httpx

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 2.0
T = TypeVar("T")


class Malformed(ValueError):
    """A gateway answer that does not have the documented shape."""


class _NotFound(Exception):
    def __init__(self, code: str | None) -> None:
        super().__init__(code)
        self.code = code


class HttpCoreBanking(CoreBanking):
    """The gateway at ``base_url`` (e.g. ``https://core.example-bank.cn/api/v1``).

    ``token`` is sent as ``Authorization: Bearer <token>``; ``timeout`` (seconds) bounds
    connecting and each read. One pooled ``httpx.Client`` is shared by all threads. Requests
    are not retried (a freeze must not be sent twice).
    """

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        import httpx

        from bot import __version__

        if not base_url or not base_url.startswith(("http://", "https://")):
            raise ValueError(
                f"the gateway base URL must start with http:// or https://, got {base_url!r}"
            )
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.base_url = base_url.rstrip("/")
        self.timeout = float(timeout)
        headers = {"Accept": "application/json", "User-Agent": f"bankbot/{__version__}"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._httpx = httpx
        self._client = httpx.Client(
            base_url=self.base_url + "/",
            headers=headers,
            timeout=httpx.Timeout(self.timeout),
            follow_redirects=False,
            transport=transport,
        )

    def __repr__(self) -> str:  # never shows the token
        return f"HttpCoreBanking({self.base_url!r}, timeout={self.timeout})"

    # -- CoreBanking ------------------------------------------------------------------------

    def customer(self, customer_id: str) -> Customer:
        data = self._call("GET", _customer_path(customer_id), UnknownCustomer)
        return self._parse(_customer, data, customer_id)

    def accounts(self, customer_id: str) -> list[Account]:
        data = self._call("GET", _customer_path(customer_id, "accounts"), UnknownCustomer)
        return self._parse(_accounts, data, customer_id)

    def applications(self, customer_id: str, open_only: bool = False) -> list[Application]:
        params = {"open": "true"} if open_only else None
        data = self._call(
            "GET", _customer_path(customer_id, "applications"), UnknownCustomer, params=params
        )
        apps = self._parse(_applications, data, customer_id)
        return [a for a in apps if a.is_open] if open_only else apps

    def application(self, customer_id: str, application_id: str) -> Application | None:
        wanted = str(application_id).strip().upper()
        if wanted in _NOT_IDS:
            return None
        try:
            data = self._call("GET", _customer_path(customer_id, "applications", wanted), None)
        except _NotFound as exc:
            if exc.code == "unknown_customer":
                raise UnknownCustomer(f"no customer {customer_id!r}") from None
            return None
        app = self._parse(_application, data, customer_id)
        if app.id != wanted:
            raise self._malformed(f"asked for application {wanted}, got {app.id}")
        return app

    def freeze_card(self, customer_id: str, last4: str) -> FreezeResult:
        last4 = str(last4).strip()
        if not LAST4.fullmatch(last4):
            raise UnknownCard(f"{last4!r} is not the last four digits of a card")
        path = _customer_path(customer_id, "cards", last4, "freeze")
        data = self._call("POST", path, UnknownCard, json={"mode": "temporary"})
        result = self._parse(_freeze_result, data, customer_id)
        if result.last4 != last4:
            raise self._malformed(
                f"asked to freeze the card ending {last4}, the gateway answered for {result.last4}"
            )
        return result

    def close(self) -> None:
        self._client.close()

    # -- internals --------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        not_found: type[BankError] | None,
        params: dict[str, str] | None = None,
        json: Any = None,
    ) -> Any:
        """The decoded JSON answer, or the right exception. ``not_found`` is raised on a 404
        whose error code does not say otherwise; with ``None``, :class:`_NotFound` is."""
        httpx = self._httpx
        where = f"{method} {self.base_url}/{path}"
        try:
            response = self._client.request(
                method, path, params=params, json=json, headers={"X-Request-ID": uuid.uuid4().hex}
            )
        except httpx.TimeoutException as exc:
            hint = " (the freeze may or may not have happened)" if method == "POST" else ""
            raise BackendUnavailable(
                f"core-banking gateway did not answer {where} within {self.timeout:g} s{hint}"
            ) from exc
        except httpx.TransportError as exc:
            raise BackendUnavailable(
                f"cannot reach the core-banking gateway for {where}: {type(exc).__name__}: {exc}"
            ) from exc
        status = response.status_code
        if status == 404:
            code = _error_code(response)
            if code == "unknown_customer":
                raise UnknownCustomer(f"the gateway knows no such customer ({where})")
            if code == "unknown_card":
                raise UnknownCard(f"the gateway knows no such card ({where})")
            if not_found is None:
                raise _NotFound(code)
            raise not_found(f"not found: {where}")
        if status in (401, 403):
            raise BackendUnavailable(
                f"the core-banking gateway refused the credentials (HTTP {status}) for "
                f"{where}: check bank.token / BOT_BANK_TOKEN"
            )
        if status >= 500:
            raise BackendUnavailable(f"core-banking gateway error HTTP {status} for {where}")
        if not 200 <= status < 300:
            raise BackendUnavailable(
                f"unexpected HTTP {status} from the core-banking gateway for {where}"
            )
        try:
            return response.json()
        except ValueError as exc:
            raise BackendUnavailable(
                f"the core-banking gateway answered {where} with malformed JSON"
            ) from exc

    def _parse(self, parser: Callable[[Any, str], T], data: Any, customer_id: str) -> T:
        try:
            return parser(data, customer_id)
        except (Malformed, TypeError, ValueError) as exc:
            raise self._malformed(str(exc)) from exc

    def _malformed(self, why: str) -> BackendUnavailable:
        return BackendUnavailable(
            f"the core-banking gateway at {self.base_url} answered with an unexpected shape: {why}"
        )


_NOT_IDS = ("", ".", "..")


def _customer_path(customer_id: str, *rest: str) -> str:
    """``customers/{id}/...`` with every segment percent-encoded (``/`` too)."""
    if str(customer_id) in _NOT_IDS:
        raise UnknownCustomer(f"{customer_id!r} is not a customer id")
    return "/".join(quote(str(part), safe="") for part in ("customers", customer_id, *rest))


def _error_code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    code = body.get("error") if isinstance(body, dict) else None
    return code if isinstance(code, str) else None


# -- validation of the documented shapes ------------------------------------------------------

_MISSING = object()


def _obj(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Malformed(f"{where} should be an object, got {type(value).__name__}")
    return value


def _get(
    data: dict[str, Any],
    key: str,
    kind: type | tuple[type, ...],
    where: str,
    optional: bool = False,
) -> Any:
    value = data.get(key, _MISSING)
    if value is _MISSING or value is None:
        if optional:
            return None
        raise Malformed(f"{where}.{key} is missing")
    if isinstance(value, bool) and kind is not bool:
        raise Malformed(f"{where}.{key} should be {_kind_name(kind)}, got a boolean")
    if not isinstance(value, kind):
        raise Malformed(f"{where}.{key} should be {_kind_name(kind)}, got {type(value).__name__}")
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    names = {
        str: "text",
        int: "an integer (fen)",
        bool: "true/false",
        list: "a list",
        dict: "an object",
    }
    return names.get(kind, str(kind)) if isinstance(kind, type) else "a value"


def _day(data: dict[str, Any], key: str, where: str) -> date | None:
    text = _get(data, key, str, where, optional=True)
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise Malformed(f"{where}.{key} should be a date like 2026-12-05, got {text!r}") from None


def _owner(data: dict[str, Any], customer_id: str, where: str) -> str:
    owner = _get(data, "customer_id", str, where, optional=True)
    if owner is not None and owner != customer_id:
        raise Malformed(f"{where} belongs to another customer")
    return customer_id


def _customer(data: Any, customer_id: str) -> Customer:
    obj = _obj(data, "customer")
    if _get(obj, "id", str, "customer") != customer_id:
        raise Malformed("customer.id is not the customer asked for")
    return Customer(
        id=customer_id,
        name=_get(obj, "name", str, "customer"),
        age=_get(obj, "age", int, "customer"),
        vip=bool(_get(obj, "vip", bool, "customer", optional=True)),
    )


def _account(data: Any, customer_id: str, where: str) -> Account:
    obj = _obj(data, where)
    kind = _get(obj, "type", str, where)
    if kind not in ACCOUNT_TYPES:
        raise Malformed(f"{where}.type {kind!r} is not one of {sorted(ACCOUNT_TYPES)}")
    last4 = _get(obj, "last4", str, where)
    if not LAST4.fullmatch(last4):
        raise Malformed(f"{where}.last4 should be four digits")
    return Account(
        account_id=_get(obj, "account_id", str, where),
        customer_id=_owner(obj, customer_id, where),
        type=cast(AccountType, kind),
        last4=last4,
        balance_fen=_get(obj, "balance_fen", int, where, optional=True),
        credit_limit_fen=_get(obj, "credit_limit_fen", int, where, optional=True),
        available_fen=_get(obj, "available_fen", int, where, optional=True),
        statement_balance_fen=_get(obj, "statement_balance_fen", int, where, optional=True),
        due_date=_day(obj, "due_date", where),
        frozen=_get(obj, "frozen", bool, where),
    )


def _accounts(data: Any, customer_id: str) -> list[Account]:
    items = _get(_obj(data, "answer"), "accounts", list, "answer")
    return [_account(item, customer_id, f"accounts[{i}]") for i, item in enumerate(items)]


def _step(data: Any, where: str) -> ApplicationStep:
    obj = _obj(data, where)
    status = _get(obj, "status", str, where)
    if status not in STEP_STATUSES:
        raise Malformed(f"{where}.status {status!r} is not one of {sorted(STEP_STATUSES)}")
    return ApplicationStep(
        name=_get(obj, "name", str, where),
        status=cast(StepStatus, status),
        date=_day(obj, "date", where),
    )


def _application(data: Any, customer_id: str, where: str = "application") -> Application:
    obj = _obj(data, where)
    business = _get(obj, "business_type", str, where)
    if business not in BUSINESS_TYPES:
        raise Malformed(
            f"{where}.business_type {business!r} is not one of {sorted(BUSINESS_TYPES)}"
        )
    steps = _get(obj, "steps", list, where)
    details = _get(obj, "details", dict, where, optional=True) or {}
    return Application(
        id=_get(obj, "id", str, where),
        customer_id=_owner(obj, customer_id, where),
        business_type=cast(BusinessType, business),
        product=_get(obj, "product", str, where, optional=True),
        amount_fen=_get(obj, "amount_fen", int, where, optional=True),
        steps=tuple(_step(s, f"{where}.steps[{i}]") for i, s in enumerate(steps)),
        details=details,
    )


def _applications(data: Any, customer_id: str) -> list[Application]:
    items = _get(_obj(data, "answer"), "applications", list, "answer")
    return [_application(item, customer_id, f"applications[{i}]") for i, item in enumerate(items)]


def _freeze_result(data: Any, customer_id: str) -> FreezeResult:
    obj = _obj(data, "freeze")
    last4 = _get(obj, "last4", str, "freeze")
    at = _get(obj, "frozen_at", str, "freeze", optional=True)
    try:
        frozen_at = datetime.fromisoformat(at) if at else None
    except ValueError:
        raise Malformed(f"freeze.frozen_at should be an ISO 8601 time, got {at!r}") from None
    return FreezeResult(
        last4=last4, already_frozen=_get(obj, "already_frozen", bool, "freeze"), frozen_at=frozen_at
    )
