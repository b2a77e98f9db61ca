"""dataset intakes record when they finished (a crashed one can be taken over); jobs record that
their fine-tuned model was deleted through ftbot

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.types

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dataset_intakes") as batch:
        batch.add_column(sa.Column("finished_at", storage.types.UTCDateTime(timezone=True), nullable=True))
    # Intakes from before this column were answered or released; none is left running.
    op.execute("UPDATE dataset_intakes SET finished_at = created_at")
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("model_deleted_at", storage.types.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("model_deleted_at")
    with op.batch_alter_table("dataset_intakes") as batch:
        batch.drop_column("finished_at")
