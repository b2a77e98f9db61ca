"""pending starts (a job creation whose answer was lost, looked for until found) and block
fallbacks (a workspace whose Slack refused a newer block type gets classic blocks for a while)

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.types

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "pending_starts",
        sa.Column("id", _ID, nullable=False),
        sa.Column("idempotency_key", sa.String(length=128), nullable=False),
        sa.Column("team_id", sa.String(length=32), nullable=True),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("started_by", sa.String(length=32), nullable=True),
        sa.Column("channel_id", sa.String(length=32), nullable=True),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("checks", sa.Integer(), nullable=False),
        sa.Column("next_check_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", storage.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("provider_job_id", sa.String(length=128), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("idempotency_key", name="uq_pending_starts_key"),
    )
    op.create_index("ix_pending_starts_open", "pending_starts", ["resolved_at", "next_check_at"], unique=False)
    op.create_table(
        "block_fallbacks",
        sa.Column("id", _ID, nullable=False),
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("block_type", sa.String(length=32), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("until", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("team_id", "block_type", name="uq_block_fallbacks_team_type"),
    )


def downgrade() -> None:
    op.drop_table("block_fallbacks")
    op.drop_index("ix_pending_starts_open", table_name="pending_starts")
    op.drop_table("pending_starts")
