"""The events: plain, immutable facts (ids and values, never a session's rows), so a subscriber
running after the commit reads what it needs in its own transaction."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class JobChanged:
    """A job's status or model changed (a poll stored it). Announced by bot/jobs/notify.py in the
    poll's transaction."""

    job_id: int
    status: str
    fine_tuned_model: str | None = None


@dataclass(frozen=True)
class JobEnded:
    """A job reached a final status (succeeded, failed, cancelled, not_found). Announced by
    bot/jobs/notify.py in the poll's transaction, after its JobChanged."""

    job_id: int
    status: str
    fine_tuned_model: str | None = None


@dataclass(frozen=True)
class ModelAppeared:
    """A job made a new fine-tuned model. Announced by bot/jobs/notify.py in the poll's transaction."""

    job_id: int
    provider: str
    model: str
    base_model: str | None = None


@dataclass(frozen=True)
class ApprovalClosed:
    """An approval request closed without its action done: `rejected` or `expired` (announced by
    bot/approvals/votes.py, expiry.py), or `failed` once approved because its action failed — a start
    the provider refused, the provider's words in the request's `error` (announced by
    bot/approvals/execution.py). In the transaction that closes it."""

    request_id: int
    kind: str  # delete_model | job_budget | eval_budget
    outcome: str  # rejected | expired | failed


@dataclass(frozen=True)
class StartNotMade:
    """A start whose answer was lost (bot/jobs/pending_starts.py) turned out never made: no job under
    its key showed at the provider in time, and the starter is told so. Announced by
    bot/jobs/lost_starts.py in the transaction that closes the lost start."""

    idempotency_key: str
    provider: str
    reason: str


@dataclass(frozen=True)
class EvaluationFinished:
    """An evaluation run ended (`done`, `failed`, `cancelled`). Announced by bot/evals/publish.py in
    the transaction that ends the run."""

    run_id: int
    request_key: str
    status: str
