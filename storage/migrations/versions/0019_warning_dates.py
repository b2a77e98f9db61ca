"""retirement notices: each retirement warning keyed by the date it announced, so a moved date is told

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.types

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "retirement_notices",
        sa.Column("id", _ID, nullable=False),
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("model", sa.String(length=255), nullable=False),
        sa.Column("serving_ends", sa.Date(), nullable=False),
        sa.Column("threshold", sa.Integer(), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("team_id", "provider", "model", "serving_ends", "threshold", name="uq_retirement_notices_date_threshold"),
    )
    op.create_index("ix_retirement_notices_model", "retirement_notices", ["team_id", "provider", "model"])


def downgrade() -> None:
    op.drop_index("ix_retirement_notices_model", table_name="retirement_notices")
    op.drop_table("retirement_notices")
