"""Options every Rasa tokenizer accepts, and what bankbot does with them."""

from __future__ import annotations

import re
from typing import Any

from bot.nlu.interfaces import Component, Token

# Rasa 3.x's common tokenizer options with Rasa's defaults.
TOKENIZER_DEFAULTS: dict[str, Any] = {
    "intent_tokenization_flag": False,
    "intent_split_symbol": "_",
    "token_pattern": None,
    "prefix_separator_symbol": None,
}


def note_tokenizer_options(component: Component) -> None:
    """Rasa splits intent labels into tokens for DIET's label embedding (multi-intents such
    as ``greet+ask``); bankbot classifies whole labels, so the flag changes nothing."""
    if component.config.get("intent_tokenization_flag"):
        component.note(
            f"{component.name}: intent_tokenization_flag is accepted but intents are "
            "classified as whole labels (multi-intents such as greet+ask are one label)"
        )
    if component.config.get("token_pattern"):
        component.note(
            f"{component.name}: token_pattern is applied to each token (only its matches "
            "are kept as tokens)"
        )


def apply_token_pattern(tokens: list[Token], pattern: str) -> list[Token]:
    """Rasa's ``token_pattern``: each token is replaced by the pattern's matches in it."""
    regex = re.compile(pattern)
    out: list[Token] = []
    for token in tokens:
        for match in regex.finditer(token.text):
            if match.group():
                out.append(
                    Token(match.group(), token.start + match.start(), token.start + match.end())
                )
    return out
