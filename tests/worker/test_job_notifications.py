"""Poller + outbox sender against the sandbox and the Slack stand-in, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time

from sqlalchemy import func, select

from bot.jobs.lifecycle import start_job, steer_job
from bot.outbox.sender import Sender
from bot.provider import JobSpec
from bot.worker.poller import Poller
from storage.models import JobEvent, MetricPoint, OutboxMessage
from tests.conftest import wait_for
from tests.helpers import chat_jsonl, thread_lines

MODEL = "gpt-4o-mini-2024-07-18"
CH = "C0JOBS"


def _start(svc, *, examples: int = 12, epochs: int = 2, batch: int = 4, key: str = "k1", content: bytes | None = None):  # noqa: ANN001, ANN202
    f = svc.provider.upload_file(content or chat_jsonl(examples), "train.jsonl")
    spec = JobSpec(model=MODEL, training_file=f.id, hyperparameters={"n_epochs": epochs, "batch_size": batch}, suffix="t")
    return start_job(svc, spec, team_id="T0001", user="U0001", channel=CH, idempotency_key=key)


def _drive(svc, poller: Poller, sender: Sender, until, timeout: float = 20.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        poller.cycle()
        sender.send_pending()
        if until():
            return
        time.sleep(0.05)
    raise AssertionError("the job did not reach the expected state in time")



def _finished(slack):  # noqa: ANN001, ANN202
    return lambda: any(f.get("name", "").startswith("loss-") for m in slack.channel_messages(CH) for f in (m.get("files") or []))


def test_job_to_success_posts_exactly_the_expected_messages(db_url, make_services, slack, sandbox) -> None:  # noqa: ANN001
    svc = make_services(db_url)
    started = _start(svc)
    assert started.created
    job_id = started.job.id
    # Let the job finish at the provider first so that one poll sees its whole life: the Slack
    # traffic is then fully determined.
    wait_for(lambda: svc.provider.get_job(job_id).status == "succeeded")
    poller, sender = Poller(svc, "w1"), Sender(svc, "w1")
    sender.send_pending()  # the card
    poller.cycle()
    sender.send_pending()
    calls = [c.method for c in slack.calls() if c.method != "auth.test"]
    assert calls == [
        "chat.postMessage",  # the job card
        "chat.postMessage",  # the events, one threaded reply
        "chat.update",  # the card, now succeeded
        "chat.postMessage",  # the alert in the channel
        "files.getUploadURLExternal",  # the loss chart into the thread
        "upload",
        "files.completeUploadExternal",
    ]
    card, reply, update, alert = [c.args for c in slack.calls() if c.method in {"chat.postMessage", "chat.update"}]
    assert "validating files" in card["text"] and job_id in card["text"]
    card_ts = slack.channel_messages(CH)[0]["ts"]
    assert reply["thread_ts"] == card_ts
    assert reply["text"].split("\n")[0].endswith(f"Created fine-tuning job: {job_id}")
    assert "The job has successfully completed" in reply["text"] and "Step 1/6" not in reply["text"]  # metrics stay on the card
    assert update["ts"] == card_ts and "succeeded" in update["text"]
    blocks = json.dumps(update["blocks"])
    assert "step 6/6" in blocks and "100%" in blocks and "ft:gpt-4o-mini-2024-07-18:sandbox:t:" in blocks
    assert alert.get("thread_ts") is None and "succeeded" in alert["text"]
    assert "ft:gpt-4o-mini-2024-07-18:sandbox:t:" in json.dumps(alert["blocks"])
    complete = slack.calls("files.completeUploadExternal")[0].args
    assert complete["channel_id"] == CH and complete["thread_ts"] == card_ts
    png = slack.uploaded_file(complete["files"][0]["id"])
    assert png.startswith(b"\x89PNG")
    # A further poll changes nothing.
    n = len(slack.calls())
    poller.cycle()
    sender.send_pending()
    assert len(slack.calls()) == n
    with svc.db.session() as s:
        assert s.scalar(select(func.count()).select_from(MetricPoint)) == 6
        assert s.scalar(select(func.count()).select_from(OutboxMessage).where(OutboxMessage.delivered_at.is_(None))) == 0


def test_live_polling_posts_each_event_once_in_order(db_url, make_services, slack, sandbox) -> None:  # noqa: ANN001
    sandbox.state.timing.step_seconds = 0.03
    svc = make_services(db_url)
    job_id = _start(svc, examples=30, epochs=3, batch=1).job.id  # 90 steps
    poller, sender = Poller(svc, "w1"), Sender(svc, "w1")
    _drive(svc, poller, sender, _finished(slack))
    card_ts = slack.channel_messages(CH)[0]["ts"]
    lines = thread_lines(slack, CH, card_ts)
    provider_events = [e.message for e in svc.provider.new_events(job_id, None) if e.type != "metrics"]
    assert lines == provider_events  # each once, oldest first
    alerts = [m for m in slack.channel_messages(CH) if not m.get("thread_ts") and "succeeded" in m.get("text", "") and m["ts"] != card_ts]
    assert len(alerts) == 1
    # Card edits are throttled: status changes and progress milestones, not one per step.
    assert len(slack.calls("chat.update")) <= 4 + 4
    with svc.db.session() as s:
        assert s.scalar(select(func.count()).select_from(MetricPoint)) == 90


def test_failed_job_alerts_with_the_error(db_url, make_services, slack) -> None:  # noqa: ANN001
    svc = make_services(db_url)
    _start(svc, content=b'{"messages": [{"role": "user", "content": "no answer"}]}\n' * 12)
    poller, sender = Poller(svc, "w1"), Sender(svc, "w1")
    _drive(svc, poller, sender, _finished(slack))
    top = [m for m in slack.channel_messages(CH) if not m.get("thread_ts")]
    assert len(top) == 2  # the card and the alert
    alert = json.dumps(top[1]["blocks"])
    assert "failed" in alert and "has no assistant message" in alert
    card = json.dumps(top[0]["blocks"])
    assert "failed" in card and "has no assistant message" in card


def test_cancel_posts_one_alert(db_url, make_services, slack, sandbox) -> None:  # noqa: ANN001
    sandbox.state.timing.step_seconds = 0.2
    svc = make_services(db_url)
    job_id = _start(svc, examples=50, epochs=3, batch=1).job.id
    poller, sender = Poller(svc, "w1"), Sender(svc, "w1")
    _drive(svc, poller, sender, lambda: svc.provider.get_job(job_id).status == "running")
    steer_job(svc, team_id="T0001", user="U0001", ref=job_id[:12], action="cancel")
    _drive(svc, poller, sender, _finished(slack))
    top = [m for m in slack.channel_messages(CH) if not m.get("thread_ts")]
    assert len(top) == 2 and "cancelled" in top[1]["text"]
    lines = thread_lines(slack, CH, top[0]["ts"])
    assert lines.count("Fine-tuning job cancelled") == 1


def test_three_hundred_events_between_two_polls_all_land_in_order(db_url, make_services, slack, sandbox) -> None:  # noqa: ANN001
    sandbox.state.timing.step_seconds = 5  # stays running while we burst
    svc = make_services(db_url)
    job_id = _start(svc).job.id
    poller, sender = Poller(svc, "w1"), Sender(svc, "w1")
    _drive(svc, poller, sender, lambda: svc.provider.get_job(job_id).status == "running")
    poller.cycle()
    sender.send_pending()
    sandbox.state.add_events(job_id, 300)
    wait_for(lambda: poller.cycle().polled)  # once the job is due again, one poll reads 300 new events through newest-first pages of 100
    sender.send_pending()
    with svc.db.session() as s:
        stored = s.scalars(select(JobEvent.message).where(JobEvent.message.startswith("Burst event")).order_by(JobEvent.id)).all()
        assert stored == [f"Burst event {i}/300" for i in range(1, 301)]
    lines = thread_lines(slack, CH, slack.channel_messages(CH)[0]["ts"])
    burst = [ln for ln in lines if ln.startswith("Burst event")]
    assert burst == [f"Burst event {i}/300" for i in range(1, 301)]
