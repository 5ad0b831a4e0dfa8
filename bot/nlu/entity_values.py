"""Normalises entity values: amounts in yuan (``五万`` → 50000 via cn2an), dates to ISO
``YYYY-MM-DD`` (``昨天``, ``11月5号``, ``上周五``), ids to upper case, card digits."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any, ClassVar

from bot.nlu.interfaces import Component, Message

_CN_DIGITS = {
    "零": 0,
    "〇": 0,
    "一": 1,
    "二": 2,
    "两": 2,
    "三": 3,
    "四": 4,
    "五": 5,
    "六": 6,
    "七": 7,
    "八": 8,
    "九": 9,
    "十": 10,
}
_WEEKDAYS = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6, "末": 5}
_RELATIVE = {
    "大前天": -3,
    "前天": -2,
    "昨天": -1,
    "昨日": -1,
    "今天": 0,
    "今日": 0,
    "明天": 1,
    "明日": 1,
    "后天": 2,
}


def amount_value(text: str) -> int | float | None:
    """``五万`` → 50000, ``3千5`` → 3500, ``1.5w`` → 15000, ``2,000`` → 2000."""
    import cn2an

    cleaned = re.sub(r"[\s,，]", "", text).lower()
    cleaned = cleaned.replace("k", "千").replace("w", "万")
    cleaned = re.sub(r"(元|块钱|块|rmb|人民币)$", "", cleaned)
    if not cleaned:
        return None
    try:
        number = cn2an.cn2an(cleaned, "smart")
    except (ValueError, KeyError, IndexError, TypeError):
        return None
    value = float(number)
    return int(value) if value.is_integer() else round(value, 2)


def _small_number(text: str) -> int | None:
    if text.isdigit():
        return int(text)
    if text and all(ch in _CN_DIGITS for ch in text):
        if len(text) == 1:
            return _CN_DIGITS[text]
        if text[0] == "十":  # 十二
            return 10 + (_CN_DIGITS[text[1]] if len(text) > 1 else 0)
        if len(text) >= 2 and text[1] == "十":  # 二十, 二十三
            return _CN_DIGITS[text[0]] * 10 + (_CN_DIGITS[text[2]] if len(text) > 2 else 0)
    return None


def date_value(text: str, today: dt.date | None = None) -> str | None:
    today = today or dt.date.today()
    t = text.strip()
    if t in _RELATIVE:
        return (today + dt.timedelta(days=_RELATIVE[t])).isoformat()
    week = re.fullmatch(r"(上|这|本|下)(?:周|星期|礼拜)([一二三四五六日天末])", t)
    if week:
        monday = today - dt.timedelta(days=today.weekday())
        shift = {"上": -7, "这": 0, "本": 0, "下": 7}[week.group(1)]
        return (monday + dt.timedelta(days=shift + _WEEKDAYS[week.group(2)])).isoformat()
    full = re.fullmatch(r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})[日号]?", t)
    parts: tuple[int | None, int | None, int | None] | None = None
    if full:
        parts = (int(full.group(1)), int(full.group(2)), int(full.group(3)))
    else:
        month_day = re.fullmatch(r"(\w{1,3})月(\w{1,3})[日号]", t)
        day_only = re.fullmatch(r"(\w{1,3})[日号]", t)
        if month_day:
            parts = (
                today.year,
                _small_number(month_day.group(1)),
                _small_number(month_day.group(2)),
            )
        elif day_only:
            parts = (today.year, today.month, _small_number(day_only.group(1)))
    if parts is None or None in parts:
        return None
    try:
        return dt.date(parts[0], parts[1], parts[2]).isoformat()  # type: ignore[arg-type]
    except ValueError:
        return None


NORMALIZERS: dict[str, Callable[[str], Any]] = {
    "amount": amount_value,
    "date": date_value,
    "upper": lambda text: text.upper(),
    "digits": lambda text: re.sub(r"\D", "", text) or None,
}


class EntityValueNormalizer(Component):
    """``normalizers`` maps an entity name to one of: amount, date, upper, digits."""

    name = "EntityValueNormalizer"
    defaults: ClassVar[dict[str, Any]] = {
        "normalizers": {
            "amount": "amount",
            "date": "date",
            "application_id": "upper",
            "card_last4": "digits",
            "phone": "digits",
            "id_number": "upper",
        }
    }

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        unknown = set(self.config["normalizers"].values()) - set(NORMALIZERS)
        if unknown:
            raise ValueError(
                f"EntityValueNormalizer: unknown normalizer {sorted(unknown)}; "
                f"use one of {sorted(NORMALIZERS)}"
            )

    def process(self, message: Message) -> None:
        kinds: dict[str, str] = self.config["normalizers"]
        for entity in message.entities:
            kind = kinds.get(entity["entity"])
            if kind and isinstance(entity.get("value"), str):
                value = NORMALIZERS[kind](entity["value"])
                if value is not None:
                    entity["value"] = value
