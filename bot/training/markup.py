"""Inline entity markup: ``[尾号1234](card_last4)`` and
``[信用卡]{"entity": ..., "value": ...}``."""

from __future__ import annotations

import json
import re

from bot.training.data import EntityAnnotation

_MARKUP = re.compile(
    r"\[(?P<text>[^\[\]]+)\]"
    r"(?:\((?P<entity>[^()]+)\)|(?P<json>\{[^{}]*\}))"
)


class MarkupError(ValueError):
    """Entity markup that cannot be understood."""


def _label(spec: dict[str, object], key: str) -> str | None:
    """A role or group as text (``"group": 1`` is group ``"1"``, as Rasa reads it)."""
    value = spec.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise MarkupError(f'entity {key} {value!r} must be a name such as "from"')
    return str(value)


def parse_markup(line: str) -> tuple[str, tuple[EntityAnnotation, ...]]:
    """Strip markup from ``line``; return the plain text and its entity annotations."""
    parts: list[str] = []
    entities: list[EntityAnnotation] = []
    pos = 0
    length = 0
    for match in _MARKUP.finditer(line):
        before = line[pos : match.start()]
        parts.append(before)
        length += len(before)
        surface = match.group("text")
        if match.group("entity") is not None:
            name = match.group("entity").strip()
            value = surface
            role = group = None
        else:
            try:
                spec = json.loads(match.group("json"))
            except json.JSONDecodeError as exc:
                raise MarkupError(
                    f"entity JSON {match.group('json')!r} is not valid JSON ({exc.msg})"
                ) from exc
            if not isinstance(spec, dict) or not isinstance(spec.get("entity"), str):
                raise MarkupError(f'entity JSON {match.group("json")!r} needs an "entity" key')
            name = spec["entity"]
            value = str(spec.get("value", surface))
            role = _label(spec, "role")
            group = _label(spec, "group")
        if not name or not re.fullmatch(r"[A-Za-z_][\w-]*", name):
            raise MarkupError(f"entity name {name!r} must be an identifier such as card_last4")
        entities.append(
            EntityAnnotation(name, value, length, length + len(surface), surface, role, group)
        )
        parts.append(surface)
        length += len(surface)
        pos = match.end()
    parts.append(line[pos:])
    text = "".join(parts)
    if re.search(r"\]\(|\]\{", text):
        raise MarkupError("entity markup is not closed properly: expected [text](entity)")
    return text, tuple(entities)
