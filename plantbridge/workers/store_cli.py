"""`plantbridge store upgrade [--url] [--revision]` and `plantbridge store current`: the store's versioned schema
(Alembic migrations in plantbridge/store/migrations/). docker-compose runs `upgrade` before a service starts."""

from __future__ import annotations

import asyncio

import typer

from plantbridge.workers.settings import Settings

store_app = typer.Typer(no_args_is_help=True, help="The store's schema: upgrade to the newest migration.")

URL = typer.Option(None, "--url", help="SQLAlchemy URL of the store (PLANTBRIDGE_STORE_URL)")


@store_app.command("upgrade")
def upgrade(url: str = URL, revision: str = typer.Option("head", "--revision", help="target revision")) -> None:
    """Bring the store's schema to the newest (or the given) revision; safe to run from several processes."""
    from plantbridge.store.migrate import upgrade as run

    target = Settings.from_env(store_url=url).store_url
    now = asyncio.run(run(target, revision))
    typer.echo(f"store at revision {now}")


@store_app.command("current")
def current(url: str = URL) -> None:
    """The store's current revision and the newest one this release knows."""
    from plantbridge.store.db import make_engine
    from plantbridge.store.migrate import current as current_of
    from plantbridge.store.migrate import head

    async def run() -> str | None:
        engine = make_engine(Settings.from_env(store_url=url).store_url)
        try:
            async with engine.connect() as conn:
                return await conn.run_sync(current_of)
        finally:
            await engine.dispose()

    typer.echo(f"current {asyncio.run(run()) or 'none'}; head {head()}")
