"""FTBOT_NOTIFY_CHANNEL: jobs created outside Slack are found through the job list and announced."""

from __future__ import annotations

import json

from sqlalchemy import select

from bot.jobs.lifecycle import start_job
from bot.outbox.sender import Sender
from bot.provider import JobSpec
from bot.worker.poller import Poller
from storage.models import Job
from tests.helpers import chat_jsonl
from tests.worker.test_job_notifications import MODEL, _drive

NOTIFY = "C0NOTIFY"


def _done_in(slack, channel: str):  # noqa: ANN001, ANN202
    return lambda: any(f.get("name", "").startswith("loss-") for m in slack.channel_messages(channel) for f in (m.get("files") or []))


def test_job_started_outside_slack_is_announced_and_followed(db_url, make_services, slack, sandbox) -> None:  # noqa: ANN001
    svc = make_services(db_url, notify_channel=NOTIFY)
    # An old job that ended long before ftbot looked: recorded, not announced.
    f = svc.provider.upload_file(chat_jsonl(), "train.jsonl")
    old = svc.provider.create_job(JobSpec(model=MODEL, training_file=f.id))
    sandbox.state.jobs[old.id].obj["status"] = "succeeded"
    sandbox.state.jobs[old.id].obj["finished_at"] = 1_600_000_000
    sandbox.state.jobs[old.id].phase = "done"
    # A job someone starts from a notebook, not from Slack.
    outside = svc.provider.create_job(JobSpec(model=MODEL, training_file=f.id, hyperparameters={"n_epochs": 1}))
    poller = Poller(svc, "w1", team_id="T0001")
    sender = Sender(svc, "w1")
    _drive(svc, poller, sender, _done_in(slack, NOTIFY))
    top = [m for m in slack.channel_messages(NOTIFY) if not m.get("thread_ts")]
    assert len(top) == 2 and outside.id in top[0]["text"] and "succeeded" in top[1]["text"]
    assert "started outside Slack" in json.dumps(top[0]["blocks"])
    assert old.id not in json.dumps(slack.channel_messages(NOTIFY))
    with svc.db.session() as s:
        rows = {j.provider_job_id: j for j in s.scalars(select(Job))}
    assert set(rows) == {old.id, outside.id} and rows[outside.id].team_id == "T0001"
    # the next cycles find nothing new
    n = len(slack.calls())
    poller.cycle()
    sender.send_pending()
    assert len(slack.calls()) == n


def test_job_started_in_slack_is_also_announced_in_the_notify_channel(sqlite_url, make_services, slack) -> None:  # noqa: ANN001
    svc = make_services(sqlite_url, notify_channel=NOTIFY)
    f = svc.provider.upload_file(chat_jsonl(), "train.jsonl")
    job = start_job(svc, JobSpec(model=MODEL, training_file=f.id, hyperparameters={"n_epochs": 1}), team_id="T0001", user="U0001", channel="C0TEAM", idempotency_key="k").job
    _drive(svc, Poller(svc, "w1", team_id="T0001"), Sender(svc, "w1"), lambda: _done_in(slack, NOTIFY)() and _done_in(slack, "C0TEAM")())
    for channel in (NOTIFY, "C0TEAM"):
        top = [m for m in slack.channel_messages(channel) if not m.get("thread_ts")]
        assert len(top) == 2 and job.id in top[0]["text"]
    with svc.db.session() as s:
        assert len(s.scalars(select(Job)).all()) == 1  # discovery did not make a second row
