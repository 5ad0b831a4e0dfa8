"""The knowledge-gap log: questions the knowledge base could not answer, one JSON object per
line in ``KB_DIR/gaps.jsonl`` (append-only). Personal data is masked before writing."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bot.privacy import mask_text

GAPS_FILE = "gaps.jsonl"
_LOCK = threading.Lock()


class GapLog:
    def __init__(self, path: Path):
        self.path = path

    @classmethod
    def in_dir(cls, kb_dir: Path) -> GapLog:
        return cls(kb_dir / GAPS_FILE)

    def record(
        self,
        query: str,
        candidates: Sequence[tuple[str, str, float]],
        channel: str | None = None,
        when: datetime | None = None,
    ) -> dict[str, Any]:
        """Append one gap; ``candidates`` are ``(id, question, score)``, best first."""
        item = {
            "timestamp": (when or datetime.now(UTC)).isoformat(timespec="seconds"),
            "query": mask_text(query),
            "channel": channel,
            "candidates": [
                {"id": i, "question": q, "score": round(float(s), 4)} for i, q, s in candidates
            ],
        }
        line = json.dumps(item, ensure_ascii=False) + "\n"
        with _LOCK:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as out:
                out.write(line)
        return item

    def purge_before(self, cutoff: datetime) -> int:
        """Drop the gaps logged before ``cutoff`` (and unreadable lines), rewriting the file
        in place atomically; how many lines were dropped."""
        if not self.path.is_file():
            return 0
        with _LOCK:
            kept: list[str] = []
            dropped = 0
            with self.path.open(encoding="utf-8") as lines:
                for line in lines:
                    try:
                        when = datetime.fromisoformat(json.loads(line)["timestamp"])
                    except (ValueError, KeyError, TypeError):
                        dropped += 1
                        continue
                    if when.tzinfo is None:
                        when = when.replace(tzinfo=UTC)
                    if when < cutoff:
                        dropped += 1
                    else:
                        kept.append(line)
            if dropped:
                temporary = self.path.with_suffix(".jsonl.tmp")
                temporary.write_text("".join(kept), encoding="utf-8")
                temporary.replace(self.path)
        return dropped

    def read(self) -> Iterator[dict[str, Any]]:
        """Logged gaps, oldest first (unreadable lines are skipped)."""
        if not self.path.is_file():
            return
        with self.path.open(encoding="utf-8") as lines:
            for line in lines:
                try:
                    item = json.loads(line)
                except ValueError:
                    continue
                if isinstance(item, dict):
                    yield item
