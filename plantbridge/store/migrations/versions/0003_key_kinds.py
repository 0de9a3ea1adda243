"""API keys bound to one source kind (`mes`, `qms`, `wms`, `edge`) and the `source` prefixes they may
speak for (ownership per event type). Keys from before stay NULL: a plant-system key then counts as
`mes`, an edge key as `edge`, and its `source` is not checked.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("kind", sa.String(8), nullable=True))
        batch.add_column(sa.Column("sources", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("sources")
        batch.drop_column("kind")
