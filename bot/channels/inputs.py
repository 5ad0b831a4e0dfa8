"""Reading request bodies: JSON objects with typed fields, or a 400 naming the problem.

Strings are made safe to store and send: lone UTF-16 surrogates (valid in JSON, not in
UTF-8) become U+FFFD and NUL characters are dropped. Everything else, emoji and all, is kept.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sanic import Request

from bot.channels.base import ChannelError
from bot.core import strict_json
from bot.folding import FORMAT_MARKS, IDEOGRAPHIC_SPACE, nfkc
from bot.privacy import looks_stored

MAX_SENDER_CHARS = 255
RESERVED_PREFIX = "customer:"  # conversation ids of verified customers
# Conversation ids a channel makes itself: an anonymous sender must not pose as one.
RESERVED_PREFIXES = (RESERVED_PREFIX, "wechat:", "wecom_kf:")


def clean(text: str) -> str:
    if text.isascii():
        return text.replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return text.replace("\x00", "")


def clean_any(value: Any) -> Any:
    """:func:`clean` applied to every string (and key) of a JSON value."""
    return _clean_any(value)


def _clean_any(value: Any) -> Any:
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, dict):
        return {clean(str(k)): _clean_any(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean_any(v) for v in value]
    return value


def json_object(request: Request) -> dict[str, Any]:
    data = json_body(request)
    if not isinstance(data, dict):
        raise ChannelError(400, f"request body must be a JSON object, got {type(data).__name__}")
    return data


def json_body(request: Request) -> Any:
    """The body as strict JSON (any value), or a 400 naming the problem."""
    body = request.body
    if not body:
        raise ChannelError(400, "request body is empty; send a JSON object")
    try:  # NaN, Infinity and 1e999 parse in Python but cannot be stored or sent as JSON
        data = strict_json.loads(body)
    except UnicodeDecodeError:
        raise ChannelError(400, "request body is not valid UTF-8") from None
    except json.JSONDecodeError as exc:
        raise ChannelError(400, f"request body is not valid JSON: {exc}") from None
    except strict_json.TooManyDigits as exc:
        raise ChannelError(400, f"request body has {exc}") from None
    except strict_json.TooDeep:
        raise ChannelError(
            400,
            f"request body is nested too deeply (at most {strict_json.MAX_DEPTH} levels of "
            "objects and lists)",
        ) from None
    except strict_json.NotJSON as exc:
        raise ChannelError(400, f"request body is not valid JSON: {exc}") from None
    return data


def string_field(
    data: dict[str, Any], name: str, *, required: bool = True, max_chars: int | None = None
) -> str | None:
    value = data.get(name)
    if value is None:
        if required:
            raise ChannelError(400, f"missing field '{name}'")
        return None
    if not isinstance(value, str):
        raise ChannelError(400, f"field '{name}' must be a string, got {_kind(value)}")
    value = clean(value)
    if not value.strip():
        raise ChannelError(400, f"field '{name}' is empty")
    if max_chars is not None and len(value) > max_chars:
        raise ChannelError(400, f"field '{name}' is longer than {max_chars} characters")
    return value


def _kind(value: Any) -> str:
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        list: "a list",
        dict: "an object",
    }.get(type(value), type(value).__name__)


@dataclass
class IncomingMessage:
    """A customer message as a channel received it (not yet identified)."""

    sender: str | None
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


def incoming_message(data: dict[str, Any], *, sender_required: bool = True) -> IncomingMessage:
    """Rasa's REST body ``{"sender", "message", "metadata"}``."""
    sender = string_field(data, "sender", required=sender_required, max_chars=MAX_SENDER_CHARS)
    text = string_field(data, "message")
    assert text is not None
    metadata = data.get("metadata")
    if metadata is None:
        metadata = {}
    elif not isinstance(metadata, dict):
        raise ChannelError(400, f"field 'metadata' must be an object, got {_kind(metadata)}")
    return IncomingMessage(sender, text, _clean_any(metadata))


def anonymous_sender(message: IncomingMessage) -> str:
    """The conversation id of an anonymous message: its ``sender``, which must not pose as a
    verified customer's conversation."""
    if message.sender is None:
        raise ChannelError(400, "missing field 'sender'")
    return check_anonymous(message.sender)


# C0 controls and the space, DEL, no-break space, soft hyphen, ideographic space, format marks
_INVISIBLE = dict.fromkeys([*range(0x00, 0x21), 0x7F, 0xA0, 0xAD, IDEOGRAPHIC_SPACE, *FORMAT_MARKS])


def check_anonymous(sender: str) -> str:
    # as a person would read it: no spaces or invisible marks, any case, full width folded
    seen = nfkc(sender).translate(_INVISIBLE).casefold()
    for prefix in RESERVED_PREFIXES:
        if seen.startswith(prefix):
            raise ChannelError(
                400,
                f"sender ids starting with '{prefix}' are reserved (verified "
                "customers and WeChat users)",
            )
    if looks_stored(seen):
        raise ChannelError(
            400, "sender ids with '**' or a '~' pseudonym suffix are reserved (stored keys)"
        )
    return sender
