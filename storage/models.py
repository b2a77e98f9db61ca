"""The SQLAlchemy 2.0 models. Every change here needs an Alembic migration in storage/migrations."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from storage.types import UTCDateTime, utcnow

# BIGINT on PostgreSQL, INTEGER on SQLite (where only INTEGER PRIMARY KEY autoincrements).
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    type_annotation_map = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
        list[Any]: JSON(),
    }


class Workspace(Base):
    """A Slack team that talked to the bot."""

    __tablename__ = "workspaces"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Dataset(Base):
    """A training or validation file uploaded through the bot, with its validation report."""

    __tablename__ = "datasets"
    # The same bytes registered under two names are two rows sharing one provider file.
    __table_args__ = (
        UniqueConstraint("team_id", "name", "provider_file_id", name="uq_datasets_team_name_file"),
        Index("ix_datasets_team_sha256", "team_id", "sha256"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32), index=True)
    provider_file_id: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(255))
    bytes: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    example_count: Mapped[int] = mapped_column(Integer, default=0)
    validation: Mapped[dict[str, Any]] = mapped_column(default=dict)
    uploaded_by: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    provider: Mapped[str] = mapped_column(String(32), default="openai")
    verdict: Mapped[str | None] = mapped_column(String(16))  # clean | warnings | errors (uploaded anyway)
    format: Mapped[str | None] = mapped_column(String(32))
    tokens: Mapped[int | None] = mapped_column(BigInteger)  # tokens in one epoch, as counted for the model


class DatasetIntake(Base):
    """A Slack file the bot took in: one row per file (and per "upload anyway"), so each is handled once
    however often Slack delivers it (a `message` and a `file_shared` event, retries)."""

    __tablename__ = "dataset_intakes"
    __table_args__ = (UniqueConstraint("team_id", "slack_file_id", "kind", name="uq_dataset_intakes_file_kind"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))
    slack_file_id: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))  # validate | force
    user_id: Mapped[str | None] = mapped_column(String(32))
    channel_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # None while being handled: a claim left unfinished by a crash is taken over after a while.
    finished_at: Mapped[datetime | None]


class Job(Base):
    """A fine-tuning job as ftbot last saw it at the provider."""

    __tablename__ = "jobs"
    __table_args__ = (
        UniqueConstraint("provider", "provider_job_id", name="uq_jobs_provider_job"),
        Index("ix_jobs_active_next_poll", "is_final", "next_poll_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    team_id: Mapped[str | None] = mapped_column(String(32), index=True)
    provider: Mapped[str] = mapped_column(String(32), default="openai")
    provider_job_id: Mapped[str] = mapped_column(String(128))
    # Makes "create this job" idempotent across duplicate Slack deliveries and crashes.
    idempotency_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    status: Mapped[str] = mapped_column(String(64))
    # When the job entered its current status, as ftbot saw it: how long it has been queued.
    status_since: Mapped[datetime | None]
    is_final: Mapped[bool] = mapped_column(Boolean, default=False)
    base_model: Mapped[str] = mapped_column(String(255))
    fine_tuned_model: Mapped[str | None] = mapped_column(String(255))
    # Deleted through an approved /ft delete-model: no longer offered, no retirement warnings.
    model_deleted_at: Mapped[datetime | None]
    training_file: Mapped[str | None] = mapped_column(String(128))
    validation_file: Mapped[str | None] = mapped_column(String(128))
    method: Mapped[str] = mapped_column(String(32), default="supervised")
    hyperparameters: Mapped[dict[str, Any]] = mapped_column(default=dict)
    suffix: Mapped[str | None] = mapped_column(String(64))
    seed: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    trained_tokens: Mapped[int | None] = mapped_column(BigInteger)
    step: Mapped[int | None] = mapped_column(Integer)
    total_steps: Mapped[int | None] = mapped_column(Integer)
    latest_metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    estimated_finish: Mapped[datetime | None]
    started_by: Mapped[str | None] = mapped_column(String(32))
    origin_channel: Mapped[str | None] = mapped_column(String(32))
    # Poller bookkeeping: newest provider event id stored, backoff and the lease of the worker polling it.
    last_event_id: Mapped[str | None] = mapped_column(String(128))
    next_poll_at: Mapped[datetime] = mapped_column(default=utcnow)
    poll_failures: Mapped[int] = mapped_column(Integer, default=0)
    last_poll_error: Mapped[str | None] = mapped_column(Text)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    # Training health: the metric series folded to a few numbers (bot.jobs.health.Summary) and the
    # findings already said, so each poll judges the job without reloading its history.
    health: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    events: Mapped[list[JobEvent]] = relationship(back_populates="job", cascade="all, delete-orphan")
    subscriptions: Mapped[list[Subscription]] = relationship(
        back_populates="job", cascade="all, delete-orphan"
    )


class JobEvent(Base):
    """One provider event. The unique constraint is what keeps an event from being stored twice."""

    __tablename__ = "job_events"
    __table_args__ = (UniqueConstraint("job_id", "provider_event_id", name="uq_job_events_job_event"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    provider_event_id: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime]
    level: Mapped[str] = mapped_column(String(16), default="info")
    # 64: Together's event types run past 32 ("validation_data_download_complete" is 33).
    type: Mapped[str] = mapped_column(String(64), default="message")
    message: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    job: Mapped[Job] = relationship(back_populates="events")


class Checkpoint(Base):
    __tablename__ = "checkpoints"
    __table_args__ = (
        UniqueConstraint("job_id", "provider_checkpoint_id", name="uq_checkpoints_job_checkpoint"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    provider_checkpoint_id: Mapped[str] = mapped_column(String(128))
    step_number: Mapped[int] = mapped_column(Integer)
    model_name: Mapped[str] = mapped_column(String(255))
    metrics: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]


class MetricPoint(Base):
    """One training step's metrics, the series behind the loss chart."""

    __tablename__ = "metric_points"
    __table_args__ = (UniqueConstraint("job_id", "step", name="uq_metric_points_job_step"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    step: Mapped[int] = mapped_column(Integer)
    total_steps: Mapped[int | None] = mapped_column(Integer)
    train_loss: Mapped[float | None]
    train_accuracy: Mapped[float | None]
    valid_loss: Mapped[float | None]
    valid_accuracy: Mapped[float | None]
    full_valid_loss: Mapped[float | None]
    full_valid_accuracy: Mapped[float | None]
    created_at: Mapped[datetime | None]


class Subscription(Base):
    """A channel following a job; card_ts is the job card message edited in place."""

    __tablename__ = "subscriptions"
    __table_args__ = (UniqueConstraint("job_id", "channel_id", name="uq_subscriptions_job_channel"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    team_id: Mapped[str | None] = mapped_column(String(32))
    channel_id: Mapped[str] = mapped_column(String(32))
    card_ts: Mapped[str | None] = mapped_column(String(32))
    card_step: Mapped[int | None] = mapped_column(Integer)
    card_status: Mapped[str | None] = mapped_column(String(64))
    card_updated_at: Mapped[datetime | None]
    created_by: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Set when the channel can no longer be posted to (archived, deleted, the bot removed): no more
    # messages are planned for it.
    ended_at: Mapped[datetime | None]
    ended_reason: Mapped[str | None] = mapped_column(String(64))

    job: Mapped[Job] = relationship(back_populates="subscriptions")


class OutboxMessage(Base):
    """A Slack call to make. Written in the same transaction as the state change that causes it."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_pending", "delivered_at", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(255), unique=True)
    team_id: Mapped[str | None] = mapped_column(String(32))
    channel_id: Mapped[str] = mapped_column(String(32))
    # post | update_card | reply | upload
    kind: Mapped[str] = mapped_column(String(32))
    subscription_id: Mapped[int | None] = mapped_column(
        ForeignKey("subscriptions.id", ondelete="CASCADE"), index=True
    )
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    delivered_ts: Mapped[str | None] = mapped_column(String(32))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Start of the earliest attempt whose outcome is unknown (no answer from Slack): before posting
    # again the sender looks for the message in the channel from this moment on.
    uncertain_since: Mapped[datetime | None]
    # Given up for a reason a person can act on (last_error says which); never retried by itself.
    gave_up_at: Mapped[datetime | None] = mapped_column(index=True)


class DeliveryPause(Base):
    """Sending to Slack is paused for the whole workspace (the token was refused): nothing is
    discarded, the sender probes auth.test and resumes. A row, so every process (and /healthz) sees it."""

    __tablename__ = "delivery_pauses"

    scope: Mapped[str] = mapped_column(String(32), primary_key=True)
    reason: Mapped[str] = mapped_column(String(64))
    since: Mapped[datetime] = mapped_column(default=utcnow)


class ApprovalRequest(Base):
    """A decision the team takes together. `status` moves pending -> executing -> done | failed, or
    pending -> rejected | expired; only the conditional update pending -> executing starts the action,
    so it runs once however many processes see the quorum."""

    __tablename__ = "approval_requests"
    __table_args__ = (Index("ix_approval_requests_status_expires", "status", "expires_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # The Slack delivery that asked (trigger id): a redelivered command opens no second request.
    request_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    team_id: Mapped[str] = mapped_column(String(32), index=True)
    # delete_model | job_budget
    kind: Mapped[str] = mapped_column(String(32))
    target: Mapped[str] = mapped_column(String(255))
    # The provider the target (a model to delete, a job to start) belongs to.
    provider: Mapped[str] = mapped_column(String(32), default="openai")
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    requested_by: Mapped[str] = mapped_column(String(32))
    channel_id: Mapped[str | None] = mapped_column(String(32))
    message_ts: Mapped[str | None] = mapped_column(String(32))
    # pending | executing | done | failed | rejected | expired
    status: Mapped[str] = mapped_column(String(16), default="pending")
    required_approvals: Mapped[int] = mapped_column(Integer, default=2)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[str | None] = mapped_column(String(32))
    # When the action started (status executing): a worker resolves one left there by a crash.
    executing_since: Mapped[datetime | None]
    # Why it failed, as the message shows it; `result` is what the action reported.
    error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Outbox key of the request's message; its edits point at it.
    message_key: Mapped[str | None] = mapped_column(String(255))

    votes: Mapped[list[ApprovalVote]] = relationship(back_populates="request", cascade="all, delete-orphan")


class ApprovalVote(Base):
    __tablename__ = "approval_votes"
    __table_args__ = (UniqueConstraint("request_id", "user_id", name="uq_approval_votes_request_user"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("approval_requests.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[str] = mapped_column(String(32))
    # approve | reject
    decision: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    request: Mapped[ApprovalRequest] = relationship(back_populates="votes")


class AuditLog(Base):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_team_created", "team_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    team_id: Mapped[str | None] = mapped_column(String(32), index=True)
    actor: Mapped[str | None] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str | None] = mapped_column(String(255))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Lease(Base):
    """A named lease, so that only one worker process does a singleton task (discovery) at a time."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime]


class WebhookDelivery(Base):
    """A verified provider webhook, one row per webhook-id: the unique id is what makes a redelivery
    (providers retry for up to 72 hours) do nothing, and a row not yet processed asks the worker to
    poll its job at once. Rows are kept a week, longer than any retry."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (Index("ix_webhook_deliveries_pending", "processed_at", "received_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    provider: Mapped[str] = mapped_column(String(32), default="openai")
    webhook_id: Mapped[str] = mapped_column(String(255), unique=True)
    event_type: Mapped[str] = mapped_column(String(64))
    provider_job_id: Mapped[str] = mapped_column(String(128))
    received_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    processed_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(32))  # polled | adopted | ignored | gave_up


class Migration(Base):
    """Moving a fine-tuned model's work to another provider (`/ft migrate`): its source, the copied
    files, the translated recipe and the job it starts.

    `state` moves copying -> checking -> ready (the preview, waiting for Confirm) -> starting ->
    training -> evaluating -> done, or to failed (with `error`) / cancelled from any of them.
    `active_key` is set while a migration of the model is under way and cleared when it ends: its
    unique constraint is what makes a second `/ft migrate` of the same model answer with the first.
    `job_key` is the idempotency key of the job Confirm starts (one job however often it is clicked).
    """

    __tablename__ = "migrations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32), index=True)
    request_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    active_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    state: Mapped[str] = mapped_column(String(16), default="copying")
    error: Mapped[str | None] = mapped_column(Text)
    source_provider: Mapped[str] = mapped_column(String(32))
    source_model: Mapped[str] = mapped_column(String(255))
    source_job_id: Mapped[str | None] = mapped_column(String(128))
    source_base_model: Mapped[str | None] = mapped_column(String(255))
    target_provider: Mapped[str] = mapped_column(String(32))
    target_base_model: Mapped[str | None] = mapped_column(String(255))
    # {"method", "hyperparameters", "notes"}: what the target job is started with, and why.
    recipe: Mapped[dict[str, Any]] = mapped_column(default=dict)
    # {"training": {...}, "validation": {...}}: source id, target id, bytes, sha256, reused, report.
    files: Mapped[dict[str, Any]] = mapped_column(default=dict)
    estimate_usd: Mapped[float | None]
    estimate_note: Mapped[str | None] = mapped_column(Text)
    keep_n: Mapped[int] = mapped_column(Integer, default=100)
    requested_by: Mapped[str] = mapped_column(String(32))
    channel_id: Mapped[str | None] = mapped_column(String(32))
    confirmed_by: Mapped[str | None] = mapped_column(String(32))
    job_key: Mapped[str | None] = mapped_column(String(128), unique=True)
    target_job_id: Mapped[str | None] = mapped_column(String(128))
    target_model: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class KeptAnswer(Base):
    """A model's answer to one held-out prompt, saved while it still serves (`/ft keep`), so a
    replacement can be compared with it after it stops. Once per (provider, model, prompt)."""

    __tablename__ = "kept_answers"
    __table_args__ = (UniqueConstraint("provider", "model", "prompt_sha256", name="uq_kept_answers_prompt"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32), index=True)
    provider: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(String(255))
    prompt_sha256: Mapped[str] = mapped_column(String(64))
    # The messages (and tools) as sent, and the dataset's own answer for them (the reference).
    prompt: Mapped[dict[str, Any]] = mapped_column(default=dict)
    reference: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    answer: Mapped[str | None] = mapped_column(Text)
    tool_calls: Mapped[list[Any] | None] = mapped_column(JSON)
    source_file: Mapped[str | None] = mapped_column(String(128))
    line: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Set while a keep asks the prompt (the row is its claim), cleared when the answer is stored:
    # who asks it (host:pid:…) and until when the claim holds.
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None] = mapped_column()


class EvalRun(Base):
    """One evaluation: a model against another on sampled examples. `request_key` makes asking again
    (a redelivered command, a job's automatic evaluation) find the same run; `status` moves
    pending -> running -> done | cancelled | failed, and the lease says which worker drives it."""

    __tablename__ = "eval_runs"
    __table_args__ = (Index("ix_eval_runs_status_lease", "status", "lease_until"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    request_key: Mapped[str] = mapped_column(String(255), unique=True)
    team_id: Mapped[str | None] = mapped_column(String(32))
    channel_id: Mapped[str | None] = mapped_column(String(32))
    requested_by: Mapped[str | None] = mapped_column(String(32))
    # The job whose model is evaluated (its card's thread gets the report), when there is one.
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), index=True)
    subscription_id: Mapped[int | None] = mapped_column(ForeignKey("subscriptions.id", ondelete="SET NULL"))
    model: Mapped[str] = mapped_column(String(255))
    provider: Mapped[str] = mapped_column(String(32))
    baseline: Mapped[str] = mapped_column(String(255))
    baseline_provider: Mapped[str] = mapped_column(String(32))
    judge: Mapped[str | None] = mapped_column(String(255))
    judge_provider: Mapped[str | None] = mapped_column(String(32))
    scores: Mapped[list[Any]] = mapped_column(default=list)
    source_file: Mapped[str | None] = mapped_column(String(128))
    # Where the examples came from and why (shown in the report).
    source_note: Mapped[str] = mapped_column(Text, default="")
    # pending | running | done | cancelled | failed
    status: Mapped[str] = mapped_column(String(16), default="pending")
    examples: Mapped[int] = mapped_column(Integer, default=0)
    # What sampling left out and why: {"too_long": n, "no_reference": n, ...}
    skipped: Mapped[dict[str, Any]] = mapped_column(default=dict)
    estimate: Mapped[dict[str, Any]] = mapped_column(default=dict)
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    # Outbox key of the progress message edited in place (None: no progress message, e.g. from the CLI).
    progress_key: Mapped[str | None] = mapped_column(String(255))
    progress_shown: Mapped[int] = mapped_column(Integer, default=0)
    cancel_requested_by: Mapped[str | None] = mapped_column(String(32))
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


class EvalExample(Base):
    """One sampled example: the prompt as it will be sent and the reference answer."""

    __tablename__ = "eval_examples"
    __table_args__ = (UniqueConstraint("run_id", "position", name="uq_eval_examples_run_position"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("eval_runs.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    line: Mapped[int] = mapped_column(Integer)  # line number in the source file
    prompt: Mapped[dict[str, Any]] = mapped_column()  # {"messages": [...], "tools": [...] | None}
    reference: Mapped[dict[str, Any]] = mapped_column()  # {"content": str | None, "tool_calls": [...]}
    prompt_tokens: Mapped[int] = mapped_column(Integer, default=0)


class EvalAnswer(Base):
    """One model's answer to one example. The unique (run, example, slot) row is what makes each
    question asked once: it is claimed with a conditional update before the request and holds the
    answer after it, so a restarted or second worker never asks it again."""

    __tablename__ = "eval_answers"
    __table_args__ = (
        UniqueConstraint("run_id", "example_id", "slot", name="uq_eval_answers_run_example_slot"),
        Index("ix_eval_answers_run_status", "run_id", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("eval_runs.id", ondelete="CASCADE"))
    example_id: Mapped[int] = mapped_column(ForeignKey("eval_examples.id", ondelete="CASCADE"))
    # model | baseline | judge
    slot: Mapped[str] = mapped_column(String(16))
    # pending | claimed | done | failed | refused (the provider refused this example: a content filter, …)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    content: Mapped[str | None] = mapped_column(Text)
    tool_calls: Mapped[list[Any] | None] = mapped_column(JSON)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    completion_tokens: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None]
    answered_at: Mapped[datetime | None]


class PendingStart(Base):
    """A job creation whose answer was lost (a timeout, a dropped connection) and whose job the
    provider did not list yet. The worker looks its key up until the job shows (then it is stored,
    watched and its card posted, as if the start had answered) or a while has passed (then the
    starter is told nothing was made). The unique key is what keeps it recorded once."""

    __tablename__ = "pending_starts"
    __table_args__ = (
        UniqueConstraint("idempotency_key", name="uq_pending_starts_key"),
        Index("ix_pending_starts_open", "resolved_at", "next_check_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(128))
    team_id: Mapped[str | None] = mapped_column(String(32))
    provider: Mapped[str] = mapped_column(String(32))
    started_by: Mapped[str | None] = mapped_column(String(32))
    channel_id: Mapped[str | None] = mapped_column(String(32))
    # dataclasses.asdict(JobSpec): what was asked for, shown when nothing was made.
    spec: Mapped[dict[str, Any]] = mapped_column(default=dict)
    reason: Mapped[str | None] = mapped_column(Text)
    checks: Mapped[int] = mapped_column(Integer, default=0)
    next_check_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    resolved_at: Mapped[datetime | None]
    # found | not_made
    outcome: Mapped[str | None] = mapped_column(String(16))
    provider_job_id: Mapped[str | None] = mapped_column(String(128))


class BlockFallback(Base):
    """Slack refused a message's newer block (`table`, `alert`, …) in this workspace: until `until`,
    messages with that block go straight to their classic rendering. In the database because
    several senders (processes) share what they learned."""

    __tablename__ = "block_fallbacks"
    __table_args__ = (UniqueConstraint("team_id", "block_type", name="uq_block_fallbacks_team_type"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32))
    block_type: Mapped[str] = mapped_column(String(32))
    # Slack's words when it refused (its `error` and the first of `errors`).
    error: Mapped[str | None] = mapped_column(Text)
    until: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class RetirementNotice(Base):
    """A retirement warning the team was sent, keyed by the date it announced: when a provider moves
    a model's end of serving, the next check sees the newest notice's date differ and says so once."""

    __tablename__ = "retirement_notices"
    __table_args__ = (
        UniqueConstraint("team_id", "provider", "model", "serving_ends", "threshold", name="uq_retirement_notices_date_threshold"),
        Index("ix_retirement_notices_model", "team_id", "provider", "model"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # "" when the job has no team (started outside Slack before a team was known): NULLs never collide.
    team_id: Mapped[str] = mapped_column(String(32))
    provider: Mapped[str] = mapped_column(String(32))
    model: Mapped[str] = mapped_column(String(255))
    serving_ends: Mapped[date] = mapped_column()
    # The warning's threshold in days (30, 7, 1); 0 for a date-moved notice when no threshold is due.
    threshold: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
