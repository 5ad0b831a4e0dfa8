"""Personal data: masking of ID, phone and card numbers in free text (logs, exports, agent
views, stored text), and the policy for text at rest (:class:`PrivacyPolicy`).

Numbers are found however they are typed: with separators between the digits (spaces of any
width, dots, dashes, slashes, …), invisible characters inside, full-width or other Unicode
digits (``𝟏𝟑𝟖``, ``١٣٨``), Chinese numerals read digit by digit (``一三八``, ``幺``, ``〇``).
The characters are those of :mod:`bot.folding`.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from bot.errors import ConfigError
from bot.folding import (
    CHINESE_DIGITS,
    DIGIT_INVISIBLES,
    DIGIT_SEPARATORS,
    char_class,
    digit_value,
    digits_class,
    fold_width_char,
)

if TYPE_CHECKING:
    from cryptography.fernet import MultiFernet

logger = logging.getLogger(__name__)

PERSONAL_ENTITIES = frozenset({"phone", "id_number"})

_D = digits_class()
_S = char_class(DIGIT_SEPARATORS)
_I = char_class(DIGIT_INVISIBLES)
_X = "[XxＸｘ]"
_PLUS = "[+＋]"
_DIGIT_LIKE = re.compile(_D)
# A run of digits that may hold a number: digits, separators, invisible characters, and X
# (the check character of an ID number); split further where more than
# :data:`_MAX_SEPARATORS` separators follow each other (:func:`_mask_run`).
_RUN_CHARS = _D[:-1] + _S[1:-1] + _I[1:-1] + "XxＸｘ]"
_RUN = re.compile(rf"{_PLUS}?{_D}(?:{_RUN_CHARS}*[{_D[1:-1]}XxＸｘ])?")
_MAX_SEPARATORS = 3
_MIN_DIGITS = 11  # the shortest number masked (a mobile phone number)
_MAX_DIGITS = 19  # the longest (a card number)
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)


def id_check_char(first17: str) -> str:
    """The check character of a resident ID number (GB 11643) from its first 17 digits."""
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True))
    return "10X98765432"[total % 11]


def luhn_valid(digits: str) -> bool:
    """Whether ``digits`` passes the Luhn check (bank card numbers)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2:
            n = n * 2 - 9 if n > 4 else n * 2
        total += n
    return total % 10 == 0


def _plausible_id(s: str) -> bool:
    year, month, day = int(s[6:10]), int(s[10:12]), int(s[12:14])
    return 1900 <= year <= 2099 and 1 <= month <= 12 and 1 <= day <= 31


def _kept(s: str, groups: list[int]) -> tuple[int, int] | None:
    """For the digits ``s`` (made of ``groups``, their lengths), how many digits to keep at
    the start and at the end when ``s`` is an ID, phone or card number; None when it is none.
    A number written in one piece is recognised by its length and prefix; one whose pieces
    were separated must also look like one (an ID's area and birth date; a card's first
    digit and its Luhn digit or layout in fours), so dates, amounts and codes that happen to
    sit side by side are left alone. A check character that does not match still masks (a
    typo does not make the number less personal)."""
    n = len(s)
    # one piece: the X of an ID number is a group of its own
    one_piece = len(groups) == 1 or (len(groups) == 2 and groups[1] == 1 and s[-1] == "X")
    if "X" in s[:-1]:
        return None
    if n == 18 and s[:17].isdigit() and (one_piece or (s[0] in "12345678" and _plausible_id(s))):
        return (6, 4)
    if s[-1] == "X":
        return None
    # a card number in pieces: a card's first digit (3 Amex/JCB, 4 Visa, 5 Mastercard,
    # 6 UnionPay, 8 and 9 domestic; never 1 or 2, as years start) and its Luhn digit or
    # the printed layout in fours
    if 16 <= n <= _MAX_DIGITS and (
        one_piece
        or (
            s[0] in "345689"
            and (luhn_valid(s) or (all(g == 4 for g in groups[:-1]) and groups[-1] <= 4))
        )
    ):
        return (0, 4)
    for prefix in ("", "86", "0086"):
        if n == 11 + len(prefix) and s.startswith(prefix + "1") and s[len(prefix) + 1] in "3456789":
            return (len(prefix) + 3, 4)
    return None


def mask_text(text: str) -> str:
    """``110101199003077758`` → ``110101********7758``; ``13812345678`` → ``138****5678``;
    a 16-19 digit card number → ``************1234``, however the number is typed (see the
    module). Separators between the digits stay (``138 **** 5678``), invisible characters
    inside the number go, and the digits shown are ASCII; text that holds no such number is
    returned as it is."""
    if len(text) < _MIN_DIGITS or len(_DIGIT_LIKE.findall(text)) < _MIN_DIGITS:
        return text
    parts: list[str] = []
    done = 0
    for run in _RUN.finditer(text):
        masked = _mask_run(run.group())
        if masked is not None:
            parts.append(text[done : run.start()])
            parts.append(masked)
            done = run.end()
    if not parts:
        return text
    parts.append(text[done:])
    return "".join(parts)


@lru_cache(maxsize=4096)  # a conversation repeats its numbers (text, parse_data, slots)
def _mask_run(run: str) -> str | None:
    """The run with the numbers in it masked; None when it holds none."""
    if run.isascii() and run.isdigit():  # the common case: digits typed in one piece
        kept = _kept(run, [len(run)]) if _MIN_DIGITS <= len(run) <= _MAX_DIGITS + 4 else None
        if kept is None:
            return None
        head, tail = kept
        return run[:head] + "*" * (len(run) - head - tail) + run[len(run) - tail :]
    values: list[str] = []  # the digits (and X) of the run, ASCII
    where: list[int] = []  # their offsets in the run
    groups: list[list[int]] = []  # indexes into values, split where the writer split them
    segment: list[int] = []  # per group: groups of different segments are never joined
    broken = True
    separators = 0
    script = ""
    for k, ch in enumerate(run):
        value = digit_value(ch)
        if value is None and ch in "XxＸｘ":
            value = "X"
        if value is not None:
            kind = "x" if value == "X" else "zh" if ch in CHINESE_DIGITS else "d"
            if broken or kind != script:
                groups.append([])
                hard = separators > _MAX_SEPARATORS
                segment.append(segment[-1] + hard if segment else 0)
            groups[-1].append(len(values))
            values.append(value)
            where.append(k)
            broken, script, separators = False, kind, 0
        elif ch in DIGIT_SEPARATORS:
            broken = True
            separators += 1
    if len(values) < _MIN_DIGITS:
        return None
    keep: list[tuple[int, int, int, int]] = []  # (first, last, kept at start, kept at end)
    i = 0
    while i < len(groups):
        best: tuple[int, int, int] | None = None  # (last group, kept at start, at end)
        first = groups[i][0]
        for j in range(i, len(groups)):
            size = groups[j][-1] - first + 1
            if size > _MAX_DIGITS + 4 or segment[j] != segment[i]:
                break
            if size >= _MIN_DIGITS:
                lengths = [len(g) for g in groups[i : j + 1]]
                kept = _kept("".join(values[first : first + size]), lengths)
                if kept is not None:
                    best = (j, *kept)
        if best is None:
            i += 1
            continue
        keep.append((first, groups[best[0]][-1], best[1], best[2]))
        i = best[0] + 1
    if not keep:
        return None
    out: list[str] = []
    done = 0
    for first, last, head, tail in keep:
        start, end = where[first], where[last] + 1
        if first == 0 and run[0] in "+＋":
            start = 0
        out.append(run[done:start])
        position = {offset: n for n, offset in enumerate(where[first : last + 1])}
        size = last - first + 1
        for k in range(start, end):
            ch = run[k]
            n = position.get(k)
            if n is not None:
                shown = n < head or n >= size - tail
                value = values[first + n]
                out.append("*" if not shown else fold_width_char(ch) if value == "X" else value)
            elif ch not in DIGIT_INVISIBLES:
                out.append(fold_width_char(ch))
        done = end
    out.append(run[done:])
    return "".join(out)


def mask_entity_value(entity: str, value: Any) -> Any:
    if entity in PERSONAL_ENTITIES and isinstance(value, str):
        return mask_text(value)
    return value


def mask_value(value: Any) -> Any:
    """``value`` (JSON-like: dicts, lists, strings, numbers) with every string masked; the
    same object when nothing changed (keys are left as they are)."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        changed = False
        out: dict[Any, Any] = {}
        for k, v in value.items():
            m = mask_value(v)
            changed = changed or m is not v
            out[k] = m
        return out if changed else value
    if isinstance(value, list):
        items = [mask_value(v) for v in value]
        return items if any(a is not b for a, b in zip(items, value, strict=True)) else value
    return value


class MaskingFilter(logging.Filter):
    """A logging filter masking personal numbers in every record's message and its
    exception text (a handler's last line of defence: :func:`install_masking` puts it on
    the root handlers and sanic's in every process)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a broken format: logging reports it itself
            return True
        masked = mask_text(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:  # formatted once, here, then masked
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_text(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_text(record.stack_info)
        return True


_LOGGERS = ("", "sanic.root", "sanic.error", "sanic.access", "sanic.server", "sanic.websockets")


def install_masking() -> None:
    """Put a :class:`MaskingFilter` on every handler of the root logger and of sanic's
    loggers (once each); called at start in every process that logs."""
    for name in _LOGGERS:
        for handler in logging.getLogger(name).handlers:
            if not any(isinstance(f, MaskingFilter) for f in handler.filters):
                handler.addFilter(MaskingFilter())


# --- personal data at rest ----------------------------------------------------------------

DATA_KEY_ENV = "BOT_DATA_KEY"  # Fernet key(s), newest first, comma-separated
PSEUDONYM_KEY_ENV = "BOT_PSEUDONYM_KEY"  # secret of the sender-id pseudonyms (never rotated)
ENCRYPTED = "_enc"  # the key of an event's encrypted original (policy encrypt)
_PSEUDONYM_LETTERS = "abcdefghjkmnpqrstuvw"  # no digits and no x: a pseudonym masks to itself
MAX_SENDER_LENGTH = 255
# what a stored key looks like: a pseudonym's suffix, or the stars of a masked number
_STORED_FORM = re.compile(rf"~[{_PSEUDONYM_LETTERS}]{{20}}$|\*\*")


def looks_stored(sender_id: str) -> bool:
    """Whether ``sender_id`` has the form of a stored key (a pseudonym, ``138****5678~…``,
    or a masked number): a sender typing one would reach the conversation stored under it."""
    return _STORED_FORM.search(sender_id) is not None


class StoredText(enum.StrEnum):
    """What the stores keep of personal numbers in customer text."""

    MASK = "mask"  # masked before they are written (the default)
    ENCRYPT = "encrypt"  # masked, and the original event kept encrypted beside it
    KEEP = "keep"  # as typed (only where another control protects the database)


@dataclass(frozen=True)
class PrivacyPolicy:
    """``privacy:`` of ``endpoints.yml`` and the keys from the environment; applied by the
    tracker store and the handoff stores when they write."""

    stored_text: StoredText = StoredText.MASK
    data_keys: tuple[str, ...] = ()
    pseudonym_key: bytes = b""
    _fernet: Any = field(default=None, compare=False, repr=False)

    @classmethod
    def from_section(
        cls, section: Mapping[str, Any] | None, env: Mapping[str, str]
    ) -> PrivacyPolicy:
        """The policy of ``endpoints.yml``'s ``privacy:`` section (None: the defaults)."""
        if section is not None and not isinstance(section, Mapping):
            raise ConfigError(
                f"endpoints.yml: privacy must be a mapping, got {type(section).__name__}. "
                "Fix: write 'privacy:' with 'stored_text: mask' indented below it"
            )
        section = dict(section or {})
        unknown = set(section) - {"stored_text"}
        if unknown:
            raise ConfigError(
                f"endpoints.yml: privacy: unknown option(s) {sorted(unknown)}. "
                "Fix: the only option is stored_text: mask | encrypt | keep"
            )
        raw = section.get("stored_text", StoredText.MASK.value)
        try:
            stored = StoredText(str(raw).strip().lower())
        except ValueError:
            raise ConfigError(
                f"endpoints.yml: privacy.stored_text is {raw!r}. "
                "Fix: write one of mask, encrypt, keep"
            ) from None
        keys = tuple(k.strip() for k in env.get(DATA_KEY_ENV, "").split(",") if k.strip())
        if stored is StoredText.ENCRYPT and not keys:
            raise ConfigError(
                f"endpoints.yml: privacy.stored_text is encrypt but ${DATA_KEY_ENV} is not set. "
                f"Fix: export {DATA_KEY_ENV}=<key from 'bot privacy new-key'> "
                "(or set stored_text: mask)"
            )
        fernet = _fernet(keys) if keys else None
        pepper = env.get(PSEUDONYM_KEY_ENV, "").encode("utf-8")
        return cls(stored, keys, pepper, fernet)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> PrivacyPolicy:
        """The default policy (mask) with the keys of ``env``."""
        return cls.from_section(None, env)

    @property
    def encrypting(self) -> bool:
        return self.stored_text is StoredText.ENCRYPT

    # --- sender ids --------------------------------------------------------------------

    def sender_key(self, sender_id: str) -> str:
        """The id a conversation is stored under: the sender id itself, or, when it holds a
        personal number (a phone number as a REST sender id), its masked form plus a keyed
        hash (``138****5678~kqbe…``), the same for the same sender; a stored key maps to
        itself."""
        if self.stored_text is StoredText.KEEP:
            return sender_id
        return _pseudonym(sender_id, self.pseudonym_key)

    # --- events ------------------------------------------------------------------------

    def store_event(self, event: dict[str, Any]) -> dict[str, Any]:
        """The event as it is written: as it is (keep), its strings masked (mask), or
        masked with the original encrypted under :data:`ENCRYPTED` (encrypt)."""
        if self.stored_text is StoredText.KEEP:
            return event
        masked = mask_value(event)
        if masked is event or self._fernet is None or not self.encrypting:
            return masked  # type: ignore[no-any-return]
        original = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
        token = self._fernet.encrypt(original.encode("utf-8")).decode("ascii")
        return {**masked, ENCRYPTED: token}

    def load_event(self, event: dict[str, Any]) -> dict[str, Any]:
        """The event as read: the decrypted original when the store keeps one and the key
        is here, else the stored (masked) event."""
        token = event.pop(ENCRYPTED, None)
        if token is None or self._fernet is None:
            return event
        try:
            original = json.loads(self._fernet.decrypt(str(token).encode("ascii")))
        except Exception as exc:  # a wrong key, a damaged token: the masked event serves
            logger.warning("an encrypted event could not be decrypted (%s)", type(exc).__name__)
            return event
        return original if isinstance(original, dict) else event

    def rotate(self, token: str) -> str:
        """``token`` re-encrypted under the newest key (for ``bot privacy rotate-key``)."""
        if self._fernet is None:
            raise ConfigError(f"rotating needs the keys in ${DATA_KEY_ENV}")
        return str(self._fernet.rotate(token.encode("ascii")).decode("ascii"))

    def store_text(self, text: str) -> str:
        """A text column of the handoff tables: masked unless the policy is keep (the
        original, when kept, is in the tracker store)."""
        return text if self.stored_text is StoredText.KEEP else mask_text(text)


def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    try:
        from cryptography.fernet import Fernet, MultiFernet
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise ImportError("encrypt needs cryptography: pip install cryptography") from exc
    try:
        return MultiFernet([Fernet(k.encode("ascii")) for k in keys])
    except (ValueError, UnicodeEncodeError) as exc:
        raise ConfigError(
            f"${DATA_KEY_ENV} holds a key that is not a Fernet key ({exc}). "
            "Fix: make one with 'bot privacy new-key' (32 url-safe base64-encoded bytes)"
        ) from None


def new_data_key() -> str:
    """A new random key for :data:`DATA_KEY_ENV`."""
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode("ascii")


@lru_cache(maxsize=8192)
def _pseudonym(sender_id: str, pepper: bytes) -> str:
    masked = mask_text(sender_id)
    if masked == sender_id:
        return sender_id
    digest = hmac.new(pepper or b"bankbot-sender", sender_id.encode("utf-8"), hashlib.sha256)
    number = int.from_bytes(digest.digest()[:13], "big")
    letters = []
    for _ in range(20):
        number, r = divmod(number, len(_PSEUDONYM_LETTERS))
        letters.append(_PSEUDONYM_LETTERS[r])
    suffix = "~" + "".join(letters)
    return masked[: MAX_SENDER_LENGTH - len(suffix)] + suffix


def encoded_key(raw: bytes) -> str:
    """``raw`` (32 bytes) as a Fernet key (tests and tools)."""
    return base64.urlsafe_b64encode(raw).decode("ascii")
