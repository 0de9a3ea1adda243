"""A PostgreSQL database of its own for a test (127.0.0.1:5432, trust auth): created, yielded as an
SQLAlchemy URL, dropped at the end. Skips the test, with the reason, when PostgreSQL does not answer."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator

import pytest

PG_HOST = os.environ.get("PLANTBRIDGE_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("PLANTBRIDGE_TEST_PG_PORT", "5432"))
PG_USER = os.environ.get("PLANTBRIDGE_TEST_PG_USER", "postgres")


async def _admin():  # type: ignore[no-untyped-def]
    try:
        import asyncpg
    except ImportError:  # pragma: no cover - asyncpg is in the dev extra
        pytest.skip("asyncpg is not installed (pip install -e '.[dev]')")
    try:
        return await asyncpg.connect(host=PG_HOST, port=PG_PORT, user=PG_USER, database="postgres", timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError) as err:
        pytest.skip(f"PostgreSQL does not answer on {PG_HOST}:{PG_PORT} ({err})")


def pg_url(name: str) -> str:
    return f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{name}"


@contextlib.asynccontextmanager
async def postgres_database(prefix: str = "pb_test") -> AsyncIterator[str]:
    """`CREATE DATABASE <prefix>_<random>`; yields its URL; drops it (closing leftover sessions) at the end."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = await _admin()
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield pg_url(name)
    finally:
        admin = await _admin()
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
