"""providers: approval requests name the provider of their model or job; existing rows are OpenAI's

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("approval_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("provider", sa.String(length=32), nullable=False, server_default="openai"))
    with op.batch_alter_table("approval_requests", schema=None) as batch_op:
        batch_op.alter_column("provider", server_default=None)
    # Everything stored before several providers existed was OpenAI's.
    for table in ("jobs", "datasets"):
        op.execute(sa.text(f"UPDATE {table} SET provider = 'openai' WHERE provider IS NULL OR provider = ''"))


def downgrade() -> None:
    with op.batch_alter_table("approval_requests", schema=None) as batch_op:
        batch_op.drop_column("provider")
