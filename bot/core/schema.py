"""Creating tables, columns and indexes when several processes start at once.

``bot run --workers N`` starts its workers side by side; on a new database each of them
finds a table missing and creates it, and all but one get "already exists" (SQLite) or a
duplicate catalogue entry (PostgreSQL). Retried, the check then finds the table there."""

from __future__ import annotations

import time
from collections.abc import Callable


def create_racing(create: Callable[[], None], attempts: int = 5) -> None:
    """Run ``create`` (idempotent DDL: ``create_all``, ``CREATE INDEX`` with checkfirst …),
    again after a database error, up to ``attempts`` times (0.05 s, 0.1 s … apart)."""
    from sqlalchemy.exc import DBAPIError

    for attempt in range(1, attempts + 1):
        try:
            create()
            return
        except DBAPIError:  # another process created it at the same moment
            if attempt == attempts:
                raise
            time.sleep(0.05 * attempt)
