"""Versioned schema migrations (Alembic, in plantbridge/store/migrations/): `plantbridge store upgrade`.

`upgrade(url)` brings a store to the newest revision; `Database.init()` runs it too, so a development
store, a test store and a fresh production store all carry the same versioned schema. Several processes
may start at once: on PostgreSQL the upgrade holds an advisory lock, on SQLite a lock file beside the
database. A store created before migrations existed (tables, no `alembic_version`) is stamped with the
initial revision first, then upgraded.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

INITIAL = "0001"
_LOCK_ID = 0x706C616E  # "plan": the advisory lock key of the store's migrations


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "plantbridge.store:migrations")
    return cfg


def head() -> str:
    rev = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert rev is not None
    return rev


def current(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def _upgrade(conn: Connection, revision: str) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_ID})
    cfg = alembic_config()
    cfg.attributes["connection"] = conn
    tables = set(inspect(conn).get_table_names())
    if "alembic_version" not in tables and "inbox" in tables:  # made by create_all, before migrations
        command.stamp(cfg, INITIAL)
    command.upgrade(cfg, revision)


@contextlib.contextmanager
def _file_lock(url: str) -> Iterator[None]:
    path = url.split(":///", 1)[-1] if url.startswith("sqlite") else ""
    if not path or path == ":memory:":
        yield
        return
    with open(f"{Path(path)}.migrate-lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


async def upgrade_engine(engine: AsyncEngine, revision: str = "head") -> str | None:
    """Upgrade the store behind `engine`; returns the revision it is at afterwards."""
    url = engine.url.render_as_string(hide_password=False)
    lock = _file_lock(url)
    await asyncio.to_thread(lock.__enter__)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_upgrade, revision)
        async with engine.connect() as conn:
            return await conn.run_sync(current)
    finally:
        lock.__exit__(None, None, None)


async def upgrade(url: str, revision: str = "head") -> str | None:
    from plantbridge.store.engine import make_engine

    engine = make_engine(url)
    try:
        return await upgrade_engine(engine, revision)
    finally:
        await engine.dispose()
