"""Rasa's WhitespaceTokenizer: words split on whitespace, punctuation outside words removed.

The same regular expression as Rasa 3.x (``10'000.00``, ``me@mail.com`` and URLs stay whole;
``hello!`` gives ``hello``). Text without any word is one token. Chinese has no spaces, so
a Chinese sentence stays one token here as in Rasa: use JiebaTokenizer for Chinese.
``LanguageModelTokenizer`` (deprecated in Rasa 3) is the same tokenizer, as in Rasa.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from bot.nlu.interfaces import Component, Message, Token, ensure_norm
from bot.nlu.tokenization import TOKENIZER_DEFAULTS, apply_token_pattern, note_tokenizer_options

_SPLIT = re.compile(
    # punctuation followed by a space or the end
    r"[^\w#@&]+(?=\s|$)|"
    # punctuation after a space or the start, not followed by a number
    r"(\s|^)[^\w#@&]+(?=[^0-9\s])|"
    # not between numbers, not . @ & - # nor URL characters
    r"(?<=[^0-9\s])[^\w._~:/?#\[\]()@!$&*+,;=-]+(?=[^0-9\s])"
)


def whitespace_words(text: str) -> list[Token]:
    words = _SPLIT.sub(" ", text).split()
    if not words and text.strip():
        words = [text.strip()]
    tokens: list[Token] = []
    pos = 0
    for word in words:
        start = text.find(word, pos)
        if start < 0:  # the substitution changed the word: keep the running offset
            start = pos
        end = start + len(word)
        tokens.append(Token(word, start, end))
        pos = end
    return tokens


class WhitespaceTokenizer(Component):
    name = "WhitespaceTokenizer"
    defaults: ClassVar[dict[str, Any]] = {**TOKENIZER_DEFAULTS}

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        note_tokenizer_options(self)

    def tokenize(self, text: str) -> list[Token]:
        tokens = whitespace_words(text)
        pattern = self.config.get("token_pattern")
        return apply_token_pattern(tokens, pattern) if pattern else tokens

    def process(self, message: Message) -> None:
        message.tokens = self.tokenize(ensure_norm(message))


class LanguageModelTokenizer(WhitespaceTokenizer):
    name = "LanguageModelTokenizer"

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.note(
            "LanguageModelTokenizer: deprecated in Rasa 3; tokenizes as WhitespaceTokenizer "
            "(for Chinese use JiebaTokenizer)"
        )
