"""Engine and schema set-up: a SQLite file by default, any SQLAlchemy async URL by configuration."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Connection, event, inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from plantbridge.store.models import Base

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
    # Every table registers with Base when its module loads. The gateway's tables live in
    # api_keys.py and inbox.py, which import this module; the package's __init__ loads them all, and
    # Python runs it before any `plantbridge.store.*` module, so Base knows every table here.
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
        await conn.run_sync(add_missing_columns)


def add_missing_columns(conn: Connection) -> None:
    """Bring an older store up to date where a release only added nullable columns (e.g. `api_keys.kind`).

    Additive only; anything else is a schema migration."""
    inspector = inspect(conn)
    for table in Base.metadata.sorted_tables:
        have = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name not in have and column.nullable and not column.primary_key:
                ddl = column.type.compile(dialect=conn.dialect)
                conn.execute(text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {ddl}'))


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
