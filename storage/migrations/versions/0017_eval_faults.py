"""kept answers: an explicit claim (who asks the prompt, until when) instead of a marker in the prompt

A `/ft keep` inserts a prompt's row before asking it. The row is a claim until its answer is stored:
`claimed_by` (host:pid:…) and `claimed_until` say which process asks it and until when, so a keep
that died (a deploy, a kill) leaves a claim another keep takes over at once on the same host, or
after `claimed_until` elsewhere; and the parity report compares only rows with a saved answer.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.types

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("kept_answers") as batch:
        batch.add_column(sa.Column("claimed_by", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("claimed_until", storage.types.UTCDateTime(timezone=True), nullable=True))
    # Rows a keep left pending before this revision (the marker was {"pending": true} in the prompt):
    # claims that ran out, so the next keep asks them and the parity report leaves them out.
    kept = sa.table("kept_answers", sa.column("id", sa.BigInteger), sa.column("prompt", sa.JSON), sa.column("created_at", storage.types.UTCDateTime(timezone=True)), sa.column("claimed_until", storage.types.UTCDateTime(timezone=True)), sa.column("claimed_by", sa.String))
    bind = op.get_bind()
    for row_id, prompt, created in bind.execute(sa.select(kept.c.id, kept.c.prompt, kept.c.created_at)).all():
        if isinstance(prompt, dict) and prompt.get("pending"):
            bind.execute(sa.update(kept).where(kept.c.id == row_id).values(claimed_until=created, claimed_by=""))


def downgrade() -> None:
    with op.batch_alter_table("kept_answers") as batch:
        batch.drop_column("claimed_until")
        batch.drop_column("claimed_by")
