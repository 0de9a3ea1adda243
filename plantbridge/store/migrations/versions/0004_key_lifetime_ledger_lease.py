"""Key lifetime and rotation (`expires_at`, `last_used_at`, the old secret's hash valid until
`previous_until`), and the ledger's lease (`lease_owner` until `lease_until`): a posting attempt in flight
holds it, so an overlapping attempt waits instead of posting a second document.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("previous_hash", sa.String(64), nullable=True))
        batch.add_column(sa.Column("previous_until", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("ledger") as batch:
        batch.add_column(sa.Column("lease_owner", sa.String(250), nullable=True))
        batch.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ledger") as batch:
        batch.drop_column("lease_until")
        batch.drop_column("lease_owner")
    with op.batch_alter_table("api_keys") as batch:
        for name in ("previous_until", "previous_hash", "last_used_at", "expires_at"):
            batch.drop_column(name)
