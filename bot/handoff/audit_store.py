"""The audit log: the append-only ``handoff_audit`` table (every agent, router and customer
step of a handoff). Blocking calls."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Engine

from bot.handoff.tables import AUDIT
from bot.privacy import PrivacyPolicy, StoredText, mask_value


class AuditStore:
    def __init__(self, engine: Engine, privacy: PrivacyPolicy | None = None) -> None:
        self.engine = engine
        self.privacy = privacy or PrivacyPolicy.from_env(os.environ)

    def record(
        self,
        actor: str,
        action: str,
        conversation_id: str | None,
        handoff_id: str | None = None,
        detail: dict[str, Any] | None = None,
        now: float | None = None,
    ) -> None:
        if conversation_id is not None:
            conversation_id = self.privacy.sender_key(conversation_id)
        if detail and self.privacy.stored_text is not StoredText.KEEP:
            detail = mask_value(detail)
        with self.engine.begin() as conn:
            conn.execute(
                insert(AUDIT).values(
                    at=time.time() if now is None else now,
                    actor=actor,
                    action=action,
                    conversation_id=conversation_id,
                    handoff_id=handoff_id,
                    detail=json.dumps(detail or {}, ensure_ascii=False),
                )
            )

    def forget(
        self, conversation_ids: Iterable[str], keep: Iterable[str] = (), stored_keys: bool = False
    ) -> int:
        """Delete the audit rows of these conversations, but of the ``keep`` actions.
        ``stored_keys``: the ids are keys as stored (deleted exactly, not keyed again)."""
        ids = set(conversation_ids)
        keys = sorted(ids if stored_keys else {self.privacy.sender_key(c) for c in ids})
        a = AUDIT.c
        kept = list(keep)
        deleted = 0
        with self.engine.begin() as conn:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                query = delete(AUDIT).where(a.conversation_id.in_(chunk), a.action.not_in(kept))
                deleted += int(conn.execute(query).rowcount or 0)
        return deleted

    def purge_before(self, cutoff: float, keep: Iterable[str] = ()) -> int:
        """Delete the audit rows older than ``cutoff``, but of the ``keep`` actions."""
        query = delete(AUDIT).where(AUDIT.c.at < cutoff, AUDIT.c.action.not_in(list(keep)))
        with self.engine.begin() as conn:
            return int(conn.execute(query).rowcount or 0)

    def log(
        self,
        conversation_id: str | None = None,
        actions: Iterable[str] | None = None,
        limit: int = 1000,
    ) -> list[dict[str, Any]]:
        query = select(AUDIT).order_by(AUDIT.c.id)
        if conversation_id is not None:
            key = self.privacy.sender_key(conversation_id)
            query = query.where(AUDIT.c.conversation_id == key)
        if actions is not None:
            query = query.where(AUDIT.c.action.in_(list(actions)))
        with self.engine.connect() as conn:
            rows = conn.execute(query.limit(limit)).all()
        return [
            {
                "id": r.id,
                "at": r.at,
                "actor": r.actor,
                "action": r.action,
                "conversation_id": r.conversation_id,
                "handoff_id": r.handoff_id,
                "detail": json.loads(r.detail or "{}"),
            }
            for r in rows
        ]
