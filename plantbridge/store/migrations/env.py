"""Alembic environment: runs on the connection `plantbridge.store.migrate` hands over (async engines run
migrations through `run_sync`, so there is no URL handling here)."""

from __future__ import annotations

from alembic import context

import plantbridge.store  # noqa: F401  # loads every table module, so the metadata is complete
from plantbridge.store.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - the `alembic` command line is not the way in
    raise RuntimeError("run migrations with `plantbridge store upgrade` (plantbridge.store.migrate)")

context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True,
                  compare_type=True)
with context.begin_transaction():
    context.run_migrations()
