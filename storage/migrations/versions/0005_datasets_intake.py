"""datasets: verdict, format, tokens, provider; one name per file; dataset_intakes

Revision ID: 0005
Revises: 0001
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.types

revision = "0005"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("provider", sa.String(length=32), nullable=False, server_default="openai"))
        batch_op.add_column(sa.Column("verdict", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("format", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("tokens", sa.BigInteger(), nullable=True))
        batch_op.drop_constraint("uq_datasets_team_file", type_="unique")
        batch_op.create_unique_constraint("uq_datasets_team_name_file", ["team_id", "name", "provider_file_id"])
        batch_op.create_index("ix_datasets_team_sha256", ["team_id", "sha256"], unique=False)
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.alter_column("provider", server_default=None)

    op.create_table(
        "dataset_intakes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("slack_file_id", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=True),
        sa.Column("channel_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("team_id", "slack_file_id", "kind", name="uq_dataset_intakes_file_kind"),
    )


def downgrade() -> None:
    op.drop_table("dataset_intakes")
    with op.batch_alter_table("datasets", schema=None) as batch_op:
        batch_op.drop_index("ix_datasets_team_sha256")
        batch_op.drop_constraint("uq_datasets_team_name_file", type_="unique")
        batch_op.create_unique_constraint("uq_datasets_team_file", ["team_id", "provider_file_id"])
        batch_op.drop_column("tokens")
        batch_op.drop_column("format")
        batch_op.drop_column("verdict")
        batch_op.drop_column("provider")
