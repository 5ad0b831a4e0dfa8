"""The Redis and PostgreSQL servers the tests use, and whether they answer.

``$BOT_TEST_REDIS_URL`` (default redis://127.0.0.1:6379/0) and ``$BOT_TEST_PG_URL`` (default
postgres@127.0.0.1:5432/test; without the variable, root@ is tried when postgres@ is refused).
Each server is probed once per session (short timeouts); a test skips with the reason:

    problem = redis_problem()
    if problem:
        pytest.skip(problem)
"""

from __future__ import annotations

import os

REDIS_URL = os.environ.get("BOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
PG_URL = os.environ.get("BOT_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
_PG_FALLBACK = "postgresql+psycopg://root@127.0.0.1:5432/test"  # only without BOT_TEST_PG_URL

_probed: dict[str, str | None] = {}
_pg_answered: list[str] = []


def redis_problem() -> str | None:
    """None when Redis answers at REDIS_URL, else why not."""
    if "redis" not in _probed:
        import redis

        try:
            client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=2)
            client.ping()
            client.close()
            _probed["redis"] = None
        except Exception as exc:
            _probed["redis"] = f"Redis not reachable at {REDIS_URL}: {exc}"
    return _probed["redis"]


def pg_problem() -> str | None:
    """None when PostgreSQL answers (at PG_URL, or the root@ fallback), else why not."""
    if "pg" not in _probed:
        import sqlalchemy as sa

        candidates = [PG_URL] if "BOT_TEST_PG_URL" in os.environ else [PG_URL, _PG_FALLBACK]
        problems = []
        for url in candidates:
            try:
                engine = sa.create_engine(url, connect_args={"connect_timeout": 2})
                with engine.connect() as conn:
                    conn.execute(sa.text("SELECT 1"))
                engine.dispose()
            except Exception as exc:
                problems.append(f"{url}: {(str(exc) or repr(exc)).splitlines()[0]}")
                continue
            _pg_answered.append(url)
            break
        _probed["pg"] = (
            None if _pg_answered else ("PostgreSQL not reachable at " + "; at ".join(problems))
        )
    return _probed["pg"]


def pg_url() -> str:
    """The PostgreSQL URL that answered (PG_URL unless the root@ fallback did); call it after
    pg_problem() returned None."""
    assert pg_problem() is None, "PostgreSQL is not reachable: check pg_problem() first"
    return _pg_answered[0]
