"""approvals: request key, outcome columns, indexes for the expiry sweep and the audit query

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.types

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("approval_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("request_key", sa.String(length=128), nullable=True))
        batch_op.add_column(sa.Column("decided_by", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("executing_since", storage.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("error", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("result", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("message_key", sa.String(length=255), nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_approval_requests_request_key"), ["request_key"])
        batch_op.create_index("ix_approval_requests_status_expires", ["status", "expires_at"], unique=False)
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index("ix_audit_log_team_created", ["team_id", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_log_team_created")
    with op.batch_alter_table("approval_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_approval_requests_status_expires")
        batch_op.drop_constraint(batch_op.f("uq_approval_requests_request_key"), type_="unique")
        batch_op.drop_column("message_key")
        batch_op.drop_column("result")
        batch_op.drop_column("error")
        batch_op.drop_column("executing_since")
        batch_op.drop_column("decided_by")
        batch_op.drop_column("request_key")
