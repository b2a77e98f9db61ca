"""The poller takes an IntegrityError for a race only on constraints it names: those names must be the
ones each database reports, on SQLite (which names columns, not constraints) and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from bot.worker.poller import DISCOVERY_RACE, RACE_CONSTRAINTS
from storage.db import make_engine
from storage.errors import is_race_on, short_reason, violated_constraint
from storage.models import Checkpoint, Job, JobEvent, MetricPoint, OutboxMessage, Subscription

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def _unique_names(engine) -> set[str]:  # noqa: ANN001
    insp = inspect(engine)
    names: set[str] = set()
    for table in insp.get_table_names():
        names |= {c["name"] for c in insp.get_unique_constraints(table) if c.get("name")}
        names |= {i["name"] for i in insp.get_indexes(table) if i.get("unique")}
    return names


def _job(**kw) -> Job:  # noqa: ANN003
    base = {"provider": "together", "provider_job_id": "ft-1", "status": "running", "base_model": "m", "created_at": NOW, "latest_metrics": {}, "hyperparameters": {}, "health": {}}
    return Job(**{**base, **kw})


def test_each_named_race_is_what_the_database_reports(db_url: str) -> None:
    from sqlalchemy.orm import Session

    engine = make_engine(db_url)
    try:
        if engine.dialect.name == "postgresql":  # SQLite keeps no names for its unique constraints
            assert (RACE_CONSTRAINTS | DISCOVERY_RACE) <= _unique_names(engine)
        with Session(engine) as s:
            job = _job(idempotency_key="key-1")
            s.add(job)
            s.flush()
            sub = Subscription(job_id=job.id, team_id="T1", channel_id="C1")
            s.add_all([
                JobEvent(job_id=job.id, provider_event_id="e1", created_at=NOW),
                MetricPoint(job_id=job.id, step=1),
                Checkpoint(job_id=job.id, provider_checkpoint_id="ft-1:6", step_number=6, model_name="m", metrics={}, created_at=NOW),
                sub,
            ])
            s.flush()
            s.add(OutboxMessage(idempotency_key="k", kind="reply", channel_id="C1", payload={}))
            s.commit()
            job_id = job.id
        doubles = {
            "uq_job_events_job_event": lambda: JobEvent(job_id=job_id, provider_event_id="e1", created_at=NOW),
            "uq_metric_points_job_step": lambda: MetricPoint(job_id=job_id, step=1),
            "uq_checkpoints_job_checkpoint": lambda: Checkpoint(job_id=job_id, provider_checkpoint_id="ft-1:6", step_number=6, model_name="m", metrics={}, created_at=NOW),
            "outbox_idempotency_key_key": lambda: OutboxMessage(idempotency_key="k", kind="reply", channel_id="C1", payload={}),
            "uq_jobs_provider_job": lambda: _job(),
            "jobs_idempotency_key_key": lambda: _job(provider_job_id="ft-2", idempotency_key="key-1"),
            "uq_subscriptions_job_channel": lambda: Subscription(job_id=job_id, team_id="T1", channel_id="C1"),
        }
        assert set(doubles) == RACE_CONSTRAINTS | DISCOVERY_RACE
        for name, make in doubles.items():
            with Session(engine) as s, pytest.raises(IntegrityError) as caught:
                s.add(make())
                s.flush()
            assert violated_constraint(caught.value) == name
            assert is_race_on(caught.value, {name}) and not is_race_on(caught.value, {"uq_other"})
            assert name in short_reason(caught.value) and "ft-1" not in short_reason(caught.value)  # no values

        # A refusal that names no unique key (here a NOT NULL column) is never a race.
        with Session(engine) as s, pytest.raises(IntegrityError) as caught:
            s.execute(text("INSERT INTO job_events (job_id, provider_event_id, created_at, level, type, message) VALUES (:j, NULL, :t, 'info', 'message', '')"), {"j": job_id, "t": NOW})
        assert violated_constraint(caught.value) is None
        assert not is_race_on(caught.value, RACE_CONSTRAINTS)
    finally:
        engine.dispose()


def test_the_races_a_start_a_webhook_and_an_approval_expect_are_what_the_database_reports(db_url: str) -> None:
    """A start (lifecycle), a webhook's receipt and an approval request each treat an IntegrityError
    as their race only on the constraints they name: a real violation must carry one of those names."""
    from sqlalchemy.orm import Session

    from bot.approvals.requests import SAME_REQUEST
    from bot.jobs.lifecycle import START_RACE
    from bot.jobs.webhooks import REDELIVERY
    from storage.models import ApprovalRequest, WebhookDelivery

    assert START_RACE <= RACE_CONSTRAINTS | DISCOVERY_RACE  # each checked against the database above
    engine = make_engine(db_url)

    def approval() -> ApprovalRequest:
        return ApprovalRequest(request_key="rk-1", team_id="T1", kind="delete_model", target="m", requested_by="U1", status="pending", required_approvals=2, created_at=NOW, expires_at=NOW)

    def delivery() -> WebhookDelivery:
        return WebhookDelivery(provider="openai", webhook_id="wh-1", event_type="fine_tuning.job.succeeded", provider_job_id="ft-1", received_at=NOW, attempts=0)

    try:
        for make, expected in ((approval, SAME_REQUEST), (delivery, REDELIVERY)):
            with Session(engine) as s:
                s.add(make())
                s.commit()
            with Session(engine) as s, pytest.raises(IntegrityError) as caught:
                s.add(make())
                s.flush()
            assert is_race_on(caught.value, expected), violated_constraint(caught.value)
    finally:
        engine.dispose()


def test_the_retirement_warnings_race_is_what_the_database_reports(db_url: str) -> None:
    from datetime import date

    from sqlalchemy.orm import Session

    from bot.retirements.warnings import WARNING_RACE
    from storage.models import RetirementNotice

    engine = make_engine(db_url)
    try:
        if engine.dialect.name == "postgresql":
            assert WARNING_RACE <= _unique_names(engine)

        def notice() -> RetirementNotice:
            return RetirementNotice(team_id="T1", provider="openai", model="ft:m", serving_ends=date(2027, 1, 14), threshold=7)

        with Session(engine) as s:
            s.add(notice())
            s.commit()
        with Session(engine) as s, pytest.raises(IntegrityError) as caught:
            s.add(notice())
            s.flush()
        assert violated_constraint(caught.value) == "uq_retirement_notices_date_threshold" and is_race_on(caught.value, WARNING_RACE)
        # The same model warned for another date is another notice.
        with Session(engine) as s:
            s.add(RetirementNotice(team_id="T1", provider="openai", model="ft:m", serving_ends=date(2027, 1, 2), threshold=7))
            s.commit()
    finally:
        engine.dispose()
