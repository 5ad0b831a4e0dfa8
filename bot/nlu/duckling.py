"""Rasa's DucklingEntityExtractor: asks a running Duckling server (``url``) for times,
numbers, amounts of money … Without a ``url`` (nor ``RASA_DUCKLING_HTTP_URL``) the
pipeline is refused at build time: bankbot does not start Duckling. For Chinese amounts
and dates without a server, EntityValueNormalizer covers ``五万``, ``昨天``.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, ClassVar

from bot.errors import ConfigError
from bot.nlu.entity_merge import add_rule_based
from bot.nlu.interfaces import Component, Message

log = logging.getLogger(__name__)


class DucklingEntityExtractor(Component):
    name = "DucklingEntityExtractor"
    extracts_entities: ClassVar[bool] = True
    defaults: ClassVar[dict[str, Any]] = {
        "url": None,
        "dimensions": None,
        "locale": None,
        "timezone": None,
        "timeout": 3,
        "language": "zh",
    }
    transport: ClassVar[Any] = None  # an httpx transport, for tests

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        url = self.config["url"] or os.environ.get("RASA_DUCKLING_HTTP_URL")
        if not url:
            raise ConfigError(
                "DucklingEntityExtractor: option 'url' is not set; start a Duckling server "
                "and set url: http://localhost:8000 (or remove the component: "
                "EntityValueNormalizer covers Chinese amounts and dates)"
            )
        self.url = str(url).rstrip("/")
        self._client: Any = None

    def _post(self, text: str) -> list[dict[str, Any]]:
        import httpx

        if self._client is None:
            self._client = httpx.Client(
                timeout=float(self.config["timeout"]), transport=self.transport
            )
        language = str(self.config["language"] or "zh")
        locale = self.config["locale"] or (
            "zh_CN" if language.startswith("zh") else f"{language}_{language.upper()}"
        )
        payload = {
            "text": text,
            "locale": locale,
            "tz": self.config["timezone"] or "Asia/Shanghai",
            "reftime": str(int(time.time() * 1000)),
        }
        try:
            response = self._client.post(f"{self.url}/parse", data=payload)
            response.raise_for_status()
            result = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("Duckling at %s failed: %s", self.url, exc)
            return []
        return result if isinstance(result, list) else []

    def process(self, message: Message) -> None:
        if not message.text.strip():
            return
        dims = self.config["dimensions"]
        for match in self._post(message.text):
            if dims and match.get("dim") not in dims:
                continue
            value = match.get("value", {})
            add_rule_based(
                message,
                {
                    "entity": match.get("dim"),
                    "start": match.get("start"),
                    "end": match.get("end"),
                    "value": value.get("value", value) if isinstance(value, dict) else value,
                    "confidence": 1.0,
                    "additional_info": value,
                    "extractor": self.name,
                },
            )
