"""delivery outcomes: ended subscriptions, given-up and uncertain outbox rows, sending paused

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.types

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subscriptions") as batch:
        batch.add_column(sa.Column("ended_at", storage.types.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("ended_reason", sa.String(length=64), nullable=True))
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("uncertain_since", storage.types.UTCDateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("gave_up_at", storage.types.UTCDateTime(timezone=True), nullable=True))
        batch.create_index("ix_outbox_gave_up_at", ["gave_up_at"], unique=False)
    # Rows the old sender gave up on (attempts at its limit of 12) stay given up, visibly.
    op.execute("UPDATE outbox SET gave_up_at = created_at WHERE delivered_at IS NULL AND attempts >= 12")
    op.create_table(
        "delivery_pauses",
        sa.Column("scope", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("since", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("scope"),
    )


def downgrade() -> None:
    op.drop_table("delivery_pauses")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_index("ix_outbox_gave_up_at")
        batch.drop_column("gave_up_at")
        batch.drop_column("uncertain_since")
    with op.batch_alter_table("subscriptions") as batch:
        batch.drop_column("ended_reason")
        batch.drop_column("ended_at")
