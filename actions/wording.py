"""The bank actions' words come from ``domain.yml``: a message is a response sent with
``utter_message(response=..., **variables)``; the parts an action puts into it (list items,
button titles, optional clauses, the names of slot values) are ``utter_part_*`` responses
read here. See docs/responses.md."""

from __future__ import annotations

import string
from typing import Any

# The responses naming the values of the slots account_type and business_type.
ACCOUNT_LABELS = {
    "debit_card": "utter_part_account_debit_card",
    "credit_card": "utter_part_account_credit_card",
}
BUSINESS_LABELS = {
    "loan": "utter_part_business_loan",
    "credit_card_application": "utter_part_business_credit_card_application",
    "card_replacement": "utter_part_business_card_replacement",
    "credit_limit_increase": "utter_part_business_credit_limit_increase",
}


class _Keep(dict[str, Any]):
    """Template values where a missing ``{name}`` stays as it is (as in the engine)."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def phrase(domain: dict[str, Any], name: str, **values: Any) -> str:
    """The text of the domain response ``name`` (its first variation) with ``{name}``
    templates filled from ``values``: a part of a message an action assembles (an item of
    a list, an optional clause), so that its words too are in ``domain.yml``."""
    variations = (domain.get("responses") or {}).get(name) or []
    if not variations or not isinstance(variations[0].get("text"), str):
        raise KeyError(f"domain.yml has no response {name} with a text")
    filled = {k: "" if v is None else v for k, v in values.items()}
    return string.Formatter().vformat(variations[0]["text"], (), _Keep(filled))


def label(domain: dict[str, Any], labels: dict[str, str], value: Any) -> str:
    """The words for a slot value (``labels`` maps it to a response), else the value."""
    name = labels.get(str(value))
    return phrase(domain, name) if name else str(value)


def listing(domain: dict[str, Any], items: list[str]) -> str:
    """``items`` joined by the domain's list separator (``utter_part_separator``)."""
    return phrase(domain, "utter_part_separator").join(items)
