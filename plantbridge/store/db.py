"""Engine and schema set-up: a SQLite file by default, any SQLAlchemy async URL by configuration."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from plantbridge.store.engine import DEFAULT_URL, make_engine, sqlite_url

__all__ = ["DEFAULT_URL", "Database", "create_schema", "make_engine", "sqlite_url"]


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
