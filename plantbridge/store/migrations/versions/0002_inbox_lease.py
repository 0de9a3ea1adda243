"""Inbox leases (several gateways on one store) and the event-id index (a resent event is compared with the
earlier one).

A row is leased to the gateway process that drives it (`lease_owner`, until `lease_until`): a re-driver
only claims rows whose lease ran out, so no row is driven by two gateways at once.

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("inbox") as batch:
        batch.add_column(sa.Column("lease_owner", sa.String(64), nullable=True))
        batch.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))
    op.create_index("ix_inbox_event_id", "inbox", ["event_id"])


def downgrade() -> None:
    op.drop_index("ix_inbox_event_id", "inbox")
    with op.batch_alter_table("inbox") as batch:
        batch.drop_column("lease_until")
        batch.drop_column("lease_owner")
