"""The store's engine: a SQLite file by default (WAL, synchronous=FULL), any SQLAlchemy async URL by configuration.

Apart from db.py so that the migrations (migrate.py) and the schema set-up (db.py) share it without
importing each other."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import PoolResetState

DEFAULT_URL = "sqlite+aiosqlite:///.plantbridge/plantbridge.db"


def sqlite_url(path: str | Path) -> str:
    return f"sqlite+aiosqlite:///{Path(path).resolve()}"


def make_engine(url: str = DEFAULT_URL) -> AsyncEngine:
    if url.startswith("sqlite"):
        db_path = url.split(":///", 1)[-1]
        if db_path and db_path != ":memory:":
            Path(db_path).parent.mkdir(parents=True, exist_ok=True)
        # The pool's reset on check-in is `_reset_if_open`: a ROLLBACK only when a transaction is open.
        engine = create_async_engine(url, connect_args={"timeout": 30}, pool_reset_on_return=None)
        event.listen(engine.sync_engine, "reset", reset_if_open)

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            apply_sqlite_pragmas(cur)
            cur.close()

        return engine
    return create_async_engine(url, pool_pre_ping=True)


def apply_sqlite_pragmas(cursor: Any) -> None:
    """The store's settings on a new SQLite connection (the engine's pool and the group writer's own)."""
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")  # a row answered 202 must survive a power loss
    cursor.execute("PRAGMA busy_timeout=30000")


def reset_if_open(dbapi_conn: Any, _record: Any, state: PoolResetState) -> None:
    """The pool's reset of a SQLite connection on check-in: a ROLLBACK only when the connection still holds a
    transaction. After a commit (every write's case) it holds none, and the pool's default ROLLBACK would be
    a round trip to aiosqlite's thread that does nothing."""
    if state.asyncio_safe and not state.transaction_was_reset and dbapi_conn.driver_connection.in_transaction:
        dbapi_conn.rollback()


def upsert(engine: AsyncEngine, table: Any) -> Any:
    """An INSERT into `table` (a Table or mapped class) in the engine's dialect, which knows `ON CONFLICT`
    (`on_conflict_do_nothing`): SQLite or PostgreSQL."""
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)
