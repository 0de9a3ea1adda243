"""Engine and schema set-up: a SQLite file by default, any SQLAlchemy async URL by configuration."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

DEFAULT_URL = "sqlite+aiosqlite:///.plantbridge/plantbridge.db"


def sqlite_url(path: str | Path) -> str:
    return f"sqlite+aiosqlite:///{Path(path).resolve()}"


def make_engine(url: str = DEFAULT_URL) -> AsyncEngine:
    if url.startswith("sqlite"):
        db_path = url.split(":///", 1)[-1]
        if db_path and db_path != ":memory:":
            Path(db_path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine.sync_engine, "connect")
        def _pragmas(dbapi_conn, _record):  # type: ignore[no-untyped-def]
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return create_async_engine(url, pool_pre_ping=True)


async def create_schema(engine: AsyncEngine) -> None:
    """Bring the schema to the newest migration (plantbridge/store/migrations; `plantbridge store upgrade`).

    Every table registers with Base when its module loads (the package's __init__ loads them all);
    tests/store/test_migrations.py checks that the migrations build exactly that metadata.
    """
    from plantbridge.store.migrate import upgrade_engine

    await upgrade_engine(engine)


class Database:
    """One engine and its session factory; repositories take this."""

    def __init__(self, url: str = DEFAULT_URL) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    async def init(self) -> Database:
        await create_schema(self.engine)
        return self

    async def close(self) -> None:
        await self.engine.dispose()
