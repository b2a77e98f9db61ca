"""A subscriber that raises never loses the change it reacts to (SQLite and PostgreSQL), one test per
event, each through the path that really announces it: a job's poll (JobChanged, JobEnded,
ModelAppeared), a rejecting vote (ApprovalClosed), an approved start the provider refuses
(ApprovalClosed, failed), a lost start never made (StartNotMade), an evaluation's end
(EvaluationFinished).

The failing subscriber writes a row, then raises. Its row is undone; the change it reacts to is
stored, and so is everything else the announcer and the other subscribers wrote; an in-transaction
subscriber is called once more after the commit, in a transaction of its own."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.approvals.requests import open_request
from bot.approvals.votes import cast_vote
from bot.evals import publish, store
from bot.events import (
    AFTER_COMMIT,
    IN_TRANSACTION,
    ApprovalClosed,
    EvaluationFinished,
    JobChanged,
    JobEnded,
    ModelAppeared,
    StartNotMade,
    subscribe,
    unsubscribe,
)
from bot.jobs.lifecycle import start_job
from bot.jobs.lost_starts import check_lost_starts
from bot.jobs.pending_starts import LOOK_FOR
from bot.outbox.sender import Sender
from bot.provider import JobSpec
from bot.worker.poller import Poller
from storage.models import ApprovalRequest, EvalRun, Job, Migration, OutboxMessage, PendingStart, Subscription
from storage.types import utcnow
from tests.conftest import wait_for
from tests.helpers import chat_jsonl

MODEL = "gpt-4o-mini-2024-07-18"
CH = "C0SUBS"
BOOM = "C0BOOM"  # the channel of the failing subscriber's own (undone) writes


class Failing:
    """Writes an outbox row (to be undone), then raises; records each call and whether it ran
    inside the announcer's SAVEPOINT."""

    def __init__(self) -> None:
        self.calls: list[tuple[bool, Any]] = []

    def __call__(self, ctx, event_or_events) -> None:  # noqa: ANN001
        self.calls.append((ctx.session.in_nested_transaction(), event_or_events))
        ctx.session.add(OutboxMessage(idempotency_key=f"boom:{id(self)}:{len(self.calls)}", kind="post", channel_id=BOOM, payload={"text": "never"}))
        ctx.session.flush()
        raise RuntimeError("a subscriber's bug")


@pytest.fixture
def failing() -> Iterator[Any]:
    added: list[tuple[type, str]] = []

    def _add(event_type: type, phase: str) -> Failing:
        f = Failing()
        added.append((event_type, subscribe(event_type, f, phase=phase, name=f"test-failing-{event_type.__name__}-{phase}")))
        return f

    yield _add
    for event_type, name in added:
        unsubscribe(event_type, name)


def _boom_rows(svc) -> int:  # noqa: ANN001
    with svc.db.session() as s:
        return s.scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.channel_id == BOOM)) or 0


def _assert_retried_once_after_commit(f: Failing) -> None:
    assert [inside for inside, _ in f.calls] == [True, False], f.calls


@pytest.mark.parametrize(
    ("event_type", "phase"),
    [(JobChanged, IN_TRANSACTION), (JobEnded, IN_TRANSACTION), (ModelAppeared, IN_TRANSACTION), (ModelAppeared, AFTER_COMMIT), (JobEnded, AFTER_COMMIT)],
)
def test_a_failing_subscriber_of_a_jobs_poll_loses_nothing_of_the_poll(db_url, make_services, slack, sandbox, failing, event_type, phase) -> None:  # noqa: ANN001
    svc = make_services(db_url, eval_on_completion=True)
    f = failing(event_type, phase)
    file = svc.provider.upload_file(chat_jsonl(12), "train.jsonl")
    spec = JobSpec(model=MODEL, training_file=file.id, hyperparameters={"n_epochs": 1, "batch_size": 4}, suffix="t")
    job_id = start_job(svc, spec, team_id="T0001", user="U0001", channel=CH, idempotency_key=f"subs-{event_type.__name__}-{phase}").job.id
    wait_for(lambda: svc.provider.get_job(job_id).status == "succeeded", timeout=30)
    poller = Poller(svc, "w1")

    def ended() -> bool:
        poller.cycle()
        with svc.db.session() as s:
            return bool(s.scalar(select(Job.is_final).where(Job.provider_job_id == job_id)))

    wait_for(ended, timeout=30)
    with svc.db.session() as s:
        job = s.scalar(select(Job).where(Job.provider_job_id == job_id))
        assert job.status == "succeeded" and job.fine_tuned_model and job.poll_failures == 0 and job.last_poll_error is None
        sub = s.scalar(select(Subscription).where(Subscription.job_id == job.id))
        keys = set(s.scalars(select(OutboxMessage.idempotency_key).where(OutboxMessage.subscription_id == sub.id)))
        # the job's own messages of its ending, and the other subscribers' work: its evaluation
        assert {f"s{sub.id}:final", f"s{sub.id}:chart"} <= keys
        assert s.scalar(select(EvalRun.status).where(EvalRun.request_key == f"job:{job.id}")) == "preparing"
    assert _boom_rows(svc) == 0
    if phase == IN_TRANSACTION:
        _assert_retried_once_after_commit(f)
    else:
        assert len(f.calls) == 1 and f.calls[0][0] is False and [e.job_id for e in f.calls[0][1]] == [job.id]
    # and Slack hears the ending
    sender = Sender(svc, "w1")

    def alerted() -> bool:
        sender.send_pending()
        return any("succeeded" in (m.get("text") or "") and job_id in (m.get("text") or "") for m in slack.channel_messages(CH))

    wait_for(alerted, timeout=30)


def test_a_failing_subscriber_of_a_closed_approval_loses_nothing_of_the_vote(db_url, make_services, failing) -> None:  # noqa: ANN001
    svc = make_services(db_url)
    f = failing(ApprovalClosed, IN_TRANSACTION)
    opened = open_request(svc, kind="delete_model", team_id="T0001", target="ft:gpt-4o-mini:acme:x:1", requested_by="U0001", channel="C0APPR", detail={}, request_key="subs-approval")
    result = cast_vote(svc, request_id=opened.view.id, team_id="T0001", user="U0002", decision="reject")
    assert result.accepted and result.status == "rejected"
    with svc.db.session() as s:
        req = s.get(ApprovalRequest, opened.view.id)
        assert req.status == "rejected" and req.decided_by == "U0002"
    assert _boom_rows(svc) == 0
    _assert_retried_once_after_commit(f)
    assert f.calls[0][1] == ApprovalClosed(opened.view.id, "delete_model", "rejected")


def test_a_failing_subscriber_of_a_finished_evaluation_loses_nothing_of_its_end(db_url, make_services, failing) -> None:  # noqa: ANN001
    svc = make_services(db_url)
    f = failing(EvaluationFinished, IN_TRANSACTION)
    with svc.db.session() as s:
        run = EvalRun(
            request_key="subs-eval", team_id="T0001", channel_id="C0EVAL", model="ft:gpt-4o-mini:acme:x:1", provider="openai", baseline=MODEL, baseline_provider="openai",
            scores=["exact"], source_note="", status="running", examples=0, skipped={}, estimate={}, progress_shown=0, lease_owner="w1",
        )
        s.add(run)
        s.flush()
        run_id = run.id
    assert store.finish(svc.db, run_id, "w1", {"scored": 0, "examples": 0}, status="cancelled", plan=lambda s, r: publish.queue_end(s, r, "cancelled"))
    assert store.get_run(svc.db, run_id).status == "cancelled"
    assert _boom_rows(svc) == 0
    _assert_retried_once_after_commit(f)
    assert f.calls[0][1] == EvaluationFinished(run_id, "subs-eval", "cancelled")


def _waiting_migration(svc, job_key: str) -> int:  # noqa: ANN001
    """A migration starting its target job under `job_key` (a held budget approval, a lost start)."""
    with svc.db.session() as s:
        m = Migration(
            team_id="T0001", state="starting", source_provider="openai", source_model="ft:gpt-4o-mini:acme:x:1", target_provider="openai",
            requested_by="U0001", channel_id=CH, job_key=job_key, active_key=f"active:{job_key}",
        )
        s.add(m)
        s.flush()
        return m.id


def test_a_failing_subscriber_of_a_failed_approved_start_loses_nothing_of_the_failure(db_url, make_services, slack, failing) -> None:  # noqa: ANN001
    # Approved, the start is refused by the provider (a training file it does not have): the request
    # fails with the provider's words, announced as ApprovalClosed(failed); the held migration is
    # still freed by its subscriber however another subscriber fails.
    svc = make_services(db_url, job_budget_usd=0.000001, approvals_required=1)
    f = failing(ApprovalClosed, IN_TRANSACTION)
    spec = {"model": MODEL, "training_file": "file-nowhere", "hyperparameters": {"n_epochs": 1}, "suffix": "t"}
    opened = open_request(svc, kind="job_budget", team_id="T0001", target=MODEL, requested_by="U0001", channel=CH, detail={"spec": spec, "channel": CH}, request_key="subs-start")
    mid = _waiting_migration(svc, f"approval-{opened.view.id}")
    result = cast_vote(svc, request_id=opened.view.id, team_id="T0001", user="U0002", decision="approve")
    assert result.accepted and result.status == "failed", result
    with svc.db.session() as s:
        req = s.get(ApprovalRequest, opened.view.id)
        assert req.status == "failed" and "file-nowhere" in (req.error or ""), req.error
        mig = s.get(Migration, mid)
        assert mig.state == "failed" and mig.active_key is None and f"request #{req.id}" in (mig.error or "") and "file-nowhere" in mig.error, mig.error
        assert s.scalar(select(func.count()).select_from(Job)) == 0
    assert _boom_rows(svc) == 0
    _assert_retried_once_after_commit(f)
    assert f.calls[0][1] == ApprovalClosed(opened.view.id, "job_budget", "failed")


def test_a_failing_subscriber_of_a_start_never_made_loses_nothing_of_the_close(db_url, make_services, slack, failing) -> None:  # noqa: ANN001
    # A start whose answer was lost, no job under its key at the provider after LOOK_FOR: the lost
    # start is closed and the starter told (StartNotMade); the migration waiting on it still fails.
    svc = make_services(db_url)
    f = failing(StartNotMade, IN_TRANSACTION)
    now = utcnow()
    with svc.db.session() as s:
        s.add(PendingStart(
            idempotency_key="subs-lost", team_id="T0001", provider="openai", started_by="U0001", channel_id=CH,
            spec={"model": MODEL, "training_file": "file-abc"}, reason="timed out", next_check_at=now - timedelta(seconds=1), created_at=now - LOOK_FOR - timedelta(minutes=1),
        ))
    mid = _waiting_migration(svc, "subs-lost")
    resolved = check_lost_starts(svc, now=now)
    assert [(r.key, r.outcome) for r in resolved] == [("subs-lost", "not_made")]
    with svc.db.session() as s:
        assert s.scalar(select(PendingStart.outcome).where(PendingStart.idempotency_key == "subs-lost")) == "not_made"
        assert s.scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.idempotency_key == "lost-start:subs-lost")) == 1
        mig = s.get(Migration, mid)
        assert mig.state == "failed" and mig.active_key is None and "never made the job" in (mig.error or "") and "timed out" in mig.error, mig.error
    assert _boom_rows(svc) == 0
    _assert_retried_once_after_commit(f)
    assert f.calls[0][1] == StartNotMade("subs-lost", "openai", "timed out")
    wait_for(lambda: any("never made the job" in (m.get("text") or "") for m in slack.channel_messages(CH)), timeout=20)
