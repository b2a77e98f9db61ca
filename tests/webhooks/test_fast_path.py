"""The worker's webhook check when things are not simple: the job is held by another worker, the
provider still shows it running (its API lagging the webhook), old rows pruned."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from bot.jobs import webhooks
from bot.provider.base import WebhookEvent
from bot.sandbox.webhooks import new_secret
from bot.worker.runner import Worker
from storage.models import Job, WebhookDelivery
from storage.types import utcnow
from tests.conftest import wait_for
from tests.helpers import chat_jsonl


def _start(bot, sandbox, slack) -> str:  # noqa: ANN001
    fid = sandbox.state.add_file("train.jsonl", chat_jsonl(12), "fine-tune")["id"]
    assert bot.slack.command(f"start {fid} epochs=2 batch=4").status == 200
    return wait_for(lambda: [r for r in slack.responses() if "Started" in r.get("text", "")])[0]["text"].split("`")[1]


def _row(bot) -> WebhookDelivery:  # noqa: ANN001
    with bot.services.db.session() as s:
        return s.scalars(select(WebhookDelivery)).one()


def test_a_job_held_by_another_worker_waits_and_a_lagging_provider_is_retried_then_left_to_polling(db_url, start_bot, sandbox, slack) -> None:  # noqa: ANN001
    sandbox.state.timing.queued_seconds = 3600  # the provider shows the job queued throughout
    bot = start_bot(db_url, poll_interval=60, openai_webhook_secret=new_secret())
    job_id = _start(bot, sandbox, slack)
    db = bot.services.db
    assert webhooks.record(db, WebhookEvent(id="wh_lag", type="fine_tuning.job.succeeded", job_id=job_id))
    with db.session() as s:
        s.execute(update(Job).values(lease_owner="other-worker", lease_until=utcnow() + timedelta(seconds=30)))
    worker = Worker(bot.services, lease_seconds=5, team_id="T0001")
    try:
        sandbox.state.requests.clear()
        worker.react_to_webhooks()
        row = _row(bot)
        assert (row.processed_at, row.attempts) == (None, 0) and not sandbox.state.requests  # not ours to poll: waits
        with db.session() as s:
            s.execute(update(Job).values(lease_owner=None, lease_until=None))
        for attempt in range(1, webhooks.MAX_ATTEMPTS + 1):
            worker.react_to_webhooks()
            row = _row(bot)
            assert row.attempts == attempt
        assert row.outcome == "gave_up" and row.processed_at is not None
        with db.session() as s:
            job = s.scalar(select(Job).where(Job.provider_job_id == job_id))
            assert not job.is_final and job.status == "queued" and job.lease_owner is None
            assert job.next_poll_at > utcnow() + timedelta(seconds=30)  # back to the regular (idle) cadence
        polls = sandbox.state.requests.get("list_events", 0)
        worker.react_to_webhooks()  # nothing pending any more
        assert sandbox.state.requests.get("list_events", 0) == polls
    finally:
        worker.stop()


def test_rows_are_kept_past_the_retry_window_then_pruned(db_url, start_bot) -> None:  # noqa: ANN001
    bot = start_bot(db_url, openai_webhook_secret=new_secret())
    db = bot.services.db
    assert webhooks.record(db, WebhookEvent(id="wh_old", type="fine_tuning.job.failed", job_id="ftjob-1"))
    assert webhooks.record(db, WebhookEvent(id="wh_new", type="fine_tuning.job.failed", job_id="ftjob-2"))
    with db.session() as s:
        s.execute(update(WebhookDelivery).where(WebhookDelivery.webhook_id == "wh_old").values(received_at=utcnow() - timedelta(days=8)))
        s.execute(update(WebhookDelivery).where(WebhookDelivery.webhook_id == "wh_new").values(received_at=utcnow() - timedelta(hours=73)))
    assert webhooks.prune(db) == 1
    with db.session() as s:
        assert list(s.scalars(select(WebhookDelivery.webhook_id))) == ["wh_new"]
    assert not webhooks.record(db, WebhookEvent(id="wh_new", type="fine_tuning.job.failed", job_id="ftjob-2"))


def test_an_unknown_job_while_the_provider_is_down_is_tried_again(sqlite_url, start_bot, sandbox, slack) -> None:  # noqa: ANN001
    from bot.provider import JobSpec
    from bot.sandbox.state import Faults

    bot = start_bot(sqlite_url, poll_interval=60, openai_webhook_secret=new_secret(), notify_channel="C0NOTIFY")
    f = bot.services.provider.upload_file(chat_jsonl(), "train.jsonl")
    outside = bot.services.provider.create_job(JobSpec(model="gpt-4o-mini-2024-07-18", training_file=f.id))
    assert webhooks.record(bot.services.db, WebhookEvent(id="wh_down", type="fine_tuning.job.cancelled", job_id=outside.id))
    sandbox.state.faults = Faults(rate=1.0, kinds=("503",), path_contains=outside.id)
    worker = Worker(bot.services, lease_seconds=5, team_id="T0001")
    try:
        worker.react_to_webhooks()
        row = _row(bot)
        assert (row.processed_at, row.attempts) == (None, 1)
        sandbox.state.faults = Faults()
        sandbox.state.cancel_job(outside.id)
        worker.react_to_webhooks()  # adopted (and announced: it has already ended)
        worker.react_to_webhooks()  # now a known, final job: done
        assert _row(bot).outcome == "polled"
        wait_for(lambda: [m for m in slack.channel_messages("C0NOTIFY") if m.get("text", "").startswith(f"Fine-tuning {outside.id} cancelled")])
    finally:
        worker.stop()
