"""The migrations build exactly the models' schema (alembic's autogenerate compare: no differences), on an
empty SQLite file and an empty PostgreSQL database; a store made before migrations is adopted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine

import plantbridge.store  # noqa: F401  # every table registers with Base
from plantbridge.store.db import make_engine, sqlite_url
from plantbridge.store.migrate import INITIAL, current, head, upgrade
from plantbridge.store.models import Base
from tests.support.postgres import postgres_database


def _diff(conn: Connection) -> list[Any]:
    ctx = MigrationContext.configure(conn, opts={"compare_type": True})
    return list(compare_metadata(ctx, Base.metadata))


async def _check(url: str) -> None:
    assert await upgrade(url) == head()
    assert await upgrade(url) == head()  # a second run changes nothing
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            assert await conn.run_sync(_diff) == []
            assert await conn.run_sync(current) == head()
    finally:
        await engine.dispose()


async def test_sqlite_file_upgrades_to_the_models(tmp_path: Path) -> None:
    await _check(sqlite_url(tmp_path / "empty.db"))


async def test_postgresql_upgrades_to_the_models() -> None:
    async with postgres_database("pb_migr") as url:
        await _check(url)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_a_store_made_by_create_all_is_adopted(backend: str, tmp_path: Path) -> None:
    """Stores created before migrations (create_all, no alembic_version) are stamped, then upgraded."""
    async def adopt(url: str) -> None:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as conn:
                await conn.run_sync(_initial_tables)
        finally:
            await engine.dispose()
        await _check(url)

    if backend == "sqlite":
        await adopt(sqlite_url(tmp_path / "old.db"))
    else:
        async with postgres_database("pb_migr") as url:
            await adopt(url)


def _initial_tables(conn: Connection) -> None:
    """The schema as create_all made it before migrations: the initial revision's DDL, unversioned."""
    import importlib

    from alembic.operations import Operations

    initial = importlib.import_module("plantbridge.store.migrations.versions.0001_initial")

    with Operations.context(MigrationContext.configure(conn)):
        initial.upgrade()
    assert INITIAL == initial.revision
