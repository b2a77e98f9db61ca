"""evaluations: runs, their sampled examples, and one answer row per (run, example, model)

Revision ID: 0015
Revises: 0013
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import storage.types

revision = "0015"
down_revision = "0013"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _dt(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, storage.types.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "eval_runs",
        sa.Column("id", BigId, nullable=False),
        sa.Column("request_key", sa.String(length=255), nullable=False),
        sa.Column("team_id", sa.String(length=32), nullable=True),
        sa.Column("channel_id", sa.String(length=32), nullable=True),
        sa.Column("requested_by", sa.String(length=32), nullable=True),
        sa.Column("job_id", BigId, nullable=True),
        sa.Column("subscription_id", BigId, nullable=True),
        sa.Column("model", sa.String(length=255), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("baseline", sa.String(length=255), nullable=False),
        sa.Column("baseline_provider", sa.String(length=32), nullable=False),
        sa.Column("judge", sa.String(length=255), nullable=True),
        sa.Column("judge_provider", sa.String(length=32), nullable=True),
        sa.Column("scores", sa.JSON(), nullable=False),
        sa.Column("source_file", sa.String(length=128), nullable=True),
        sa.Column("source_note", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("examples", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.JSON(), nullable=False),
        sa.Column("estimate", sa.JSON(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("progress_key", sa.String(length=255), nullable=True),
        sa.Column("progress_shown", sa.Integer(), nullable=False),
        sa.Column("cancel_requested_by", sa.String(length=32), nullable=True),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        _dt("lease_until"),
        _dt("created_at", False),
        _dt("finished_at"),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["subscription_id"], ["subscriptions.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("request_key"),
    )
    op.create_index("ix_eval_runs_status_lease", "eval_runs", ["status", "lease_until"], unique=False)
    op.create_index(op.f("ix_eval_runs_job_id"), "eval_runs", ["job_id"], unique=False)
    op.create_table(
        "eval_examples",
        sa.Column("id", BigId, nullable=False),
        sa.Column("run_id", BigId, nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("prompt", sa.JSON(), nullable=False),
        sa.Column("reference", sa.JSON(), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["eval_runs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("run_id", "position", name="uq_eval_examples_run_position"),
    )
    op.create_index(op.f("ix_eval_examples_run_id"), "eval_examples", ["run_id"], unique=False)
    op.create_table(
        "eval_answers",
        sa.Column("id", BigId, nullable=False),
        sa.Column("run_id", BigId, nullable=False),
        sa.Column("example_id", BigId, nullable=False),
        sa.Column("slot", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("content", sa.Text(), nullable=True),
        sa.Column("tool_calls", sa.JSON(), nullable=True),
        sa.Column("prompt_tokens", sa.Integer(), nullable=True),
        sa.Column("completion_tokens", sa.Integer(), nullable=True),
        sa.Column("latency_ms", sa.Integer(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("claimed_by", sa.String(length=64), nullable=True),
        _dt("claimed_until"),
        _dt("answered_at"),
        sa.ForeignKeyConstraint(["example_id"], ["eval_examples.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["run_id"], ["eval_runs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("run_id", "example_id", "slot", name="uq_eval_answers_run_example_slot"),
    )
    op.create_index("ix_eval_answers_run_status", "eval_answers", ["run_id", "status"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_eval_answers_run_status", table_name="eval_answers")
    op.drop_table("eval_answers")
    op.drop_index(op.f("ix_eval_examples_run_id"), table_name="eval_examples")
    op.drop_table("eval_examples")
    op.drop_index(op.f("ix_eval_runs_job_id"), table_name="eval_runs")
    op.drop_index("ix_eval_runs_status_lease", table_name="eval_runs")
    op.drop_table("eval_runs")
