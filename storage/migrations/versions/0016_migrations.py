"""migrations (moving a model to another provider), kept answers (a model's answers saved before it stops), longer event types

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.types

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # Together's event types run past 32 characters ("validation_data_download_complete"): a job
    # with a validation file lost every poll on PostgreSQL.
    with op.batch_alter_table("job_events") as batch:
        batch.alter_column("type", existing_type=sa.String(length=32), type_=sa.String(length=64), existing_nullable=False)
    op.create_table(
        "migrations",
        sa.Column("id", _ID, nullable=False),
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("request_key", sa.String(length=128), nullable=True),
        sa.Column("active_key", sa.String(length=255), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("source_provider", sa.String(length=32), nullable=False),
        sa.Column("source_model", sa.String(length=255), nullable=False),
        sa.Column("source_job_id", sa.String(length=128), nullable=True),
        sa.Column("source_base_model", sa.String(length=255), nullable=True),
        sa.Column("target_provider", sa.String(length=32), nullable=False),
        sa.Column("target_base_model", sa.String(length=255), nullable=True),
        sa.Column("recipe", sa.JSON(), nullable=False),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.Column("estimate_usd", sa.Double(), nullable=True),
        sa.Column("estimate_note", sa.Text(), nullable=True),
        sa.Column("keep_n", sa.Integer(), nullable=False),
        sa.Column("requested_by", sa.String(length=32), nullable=False),
        sa.Column("channel_id", sa.String(length=32), nullable=True),
        sa.Column("confirmed_by", sa.String(length=32), nullable=True),
        sa.Column("job_key", sa.String(length=128), nullable=True),
        sa.Column("target_job_id", sa.String(length=128), nullable=True),
        sa.Column("target_model", sa.String(length=255), nullable=True),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("request_key"),
        sa.UniqueConstraint("active_key"),
        sa.UniqueConstraint("job_key"),
    )
    op.create_index(op.f("ix_migrations_team_id"), "migrations", ["team_id"], unique=False)
    op.create_table(
        "kept_answers",
        sa.Column("id", _ID, nullable=False),
        sa.Column("team_id", sa.String(length=32), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("model", sa.String(length=255), nullable=False),
        sa.Column("prompt_sha256", sa.String(length=64), nullable=False),
        sa.Column("prompt", sa.JSON(), nullable=False),
        sa.Column("reference", sa.JSON(), nullable=True),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("tool_calls", sa.JSON(), nullable=True),
        sa.Column("source_file", sa.String(length=128), nullable=True),
        sa.Column("line", sa.Integer(), nullable=True),
        sa.Column("created_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("provider", "model", "prompt_sha256", name="uq_kept_answers_prompt"),
    )
    op.create_index(op.f("ix_kept_answers_team_id"), "kept_answers", ["team_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("job_events") as batch:
        batch.alter_column("type", existing_type=sa.String(length=64), type_=sa.String(length=32), existing_nullable=False)
    op.drop_index(op.f("ix_kept_answers_team_id"), table_name="kept_answers")
    op.drop_table("kept_answers")
    op.drop_index(op.f("ix_migrations_team_id"), table_name="migrations")
    op.drop_table("migrations")
