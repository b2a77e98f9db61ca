"""The real poller and sender with TogetherProvider against the Together sandbox, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
import time

from matplotlib.image import imread
from sqlalchemy import func, select

from bot.jobs.lifecycle import start_job, steer_job
from bot.outbox.sender import Sender
from bot.provider import JobSpec
from bot.services import build_services
from bot.worker.poller import Poller
from storage.models import Job, JobEvent, MetricPoint
from tests.conftest import make_settings
from tests.helpers import chat_jsonl, thread_lines
from tests.together_sandbox import LLAMA_8B, _together_server, make_provider, together_sandbox  # noqa: F401

CH = "C0TOGETHER"


def _services(db_url, sandbox, slack, together_sandbox):  # noqa: ANN001, ANN202, F811
    return build_services(make_settings(db_url, sandbox, slack), provider=make_provider(together_sandbox))


def _drive(poller: Poller, sender: Sender, until, timeout: float = 30.0) -> None:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        poller.cycle()
        sender.send_pending()
        if until():
            return
        time.sleep(0.05)
    raise AssertionError("the job did not reach the expected state in time")



def _chart_posted(slack):  # noqa: ANN001, ANN202
    return lambda: any(f.get("name", "").startswith("loss-") for m in slack.channel_messages(CH) for f in (m.get("files") or []))


def test_a_together_job_reaches_its_card_thread_alert_and_chart_once_across_a_restart(db_url, sandbox, slack, together_sandbox) -> None:  # noqa: ANN001, F811
    together_sandbox.state.timing.step_seconds = 0.05
    together_sandbox.state.timing.queued_seconds = 0.2
    svc = _services(db_url, sandbox, slack, together_sandbox)
    f = svc.provider.upload_file(chat_jsonl(20), "train.jsonl")
    spec = JobSpec(model=LLAMA_8B, training_file=f.id, hyperparameters={"n_epochs": 2, "batch_size": 2}, suffix="e2e")
    started = start_job(svc, spec, team_id="T0001", user="U0001", channel=CH, idempotency_key="tg-1")
    job_id = started.job.id
    poller, sender = Poller(svc, "w1"), Sender(svc, "w1")
    _drive(poller, sender, lambda: svc.provider.get_job(job_id).status == "running" and bool(svc.provider.new_events(job_id, None)))
    poller.cycle()
    sender.send_pending()
    svc.close()

    # The worker restarts: new services, a new adapter that remembers nothing but the database.
    svc = _services(db_url, sandbox, slack, together_sandbox)
    try:
        poller, sender = Poller(svc, "w2"), Sender(svc, "w2")
        _drive(poller, sender, _chart_posted(slack))
        n = len(slack.calls())
        poller.cycle()
        sender.send_pending()
        assert len(slack.calls()) == n  # nothing more to say

        top = [m for m in slack.channel_messages(CH) if not m.get("thread_ts")]
        assert len(top) == 2  # the card and the alert
        card, alert = top
        lines = thread_lines(slack, CH, card["ts"])
        expected = [e.message for e in svc.provider.new_events(job_id, None) if e.type != "metrics"]
        assert lines == expected  # every Together event, once, oldest first
        assert lines[0].startswith("Fine tune request created") and lines[-1].startswith("Fine-tuning job completed")
        assert not any(ln.startswith("Step ") for ln in lines)  # metrics go to the card, not the thread
        final_card = slack.calls("chat.update")[-1].args
        blocks = json.dumps(final_card["blocks"])
        model = svc.provider.get_job(job_id).fine_tuned_model
        assert "succeeded" in final_card["text"] and "step 20/20" in blocks and "100%" in blocks and model in blocks
        assert "succeeded" in alert["text"] and model in json.dumps(alert["blocks"])
        complete = slack.calls("files.completeUploadExternal")
        assert len(complete) == 1 and complete[0].args["thread_ts"] == card["ts"]
        png = slack.uploaded_file(complete[0].args["files"][0]["id"])
        assert png.startswith(b"\x89PNG")
        # Together reports no token accuracy: the loss panel alone (420 px high), no empty panel under it.
        assert imread(io.BytesIO(png)).shape[:2] == (420, 800)
        with svc.db.session() as s:
            row = s.scalars(select(Job)).one()
            assert row.status == "succeeded" and row.is_final and row.fine_tuned_model == model
            assert s.scalar(select(func.count()).select_from(MetricPoint)) == 20
            stored = s.scalars(select(JobEvent.provider_event_id)).all()
            assert len(stored) == len(set(stored)) == len(svc.provider.new_events(job_id, None))
    finally:
        svc.close()


def test_cancelling_a_together_job_from_slack_ends_in_one_alert(db_url, sandbox, slack, together_sandbox) -> None:  # noqa: ANN001, F811
    together_sandbox.state.timing.step_seconds = 0.5
    together_sandbox.state.timing.queued_seconds = 0.2
    svc = _services(db_url, sandbox, slack, together_sandbox)
    try:
        f = svc.provider.upload_file(chat_jsonl(20), "train.jsonl")
        job_id = start_job(svc, JobSpec(model=LLAMA_8B, training_file=f.id), team_id="T0001", user="U0001", channel=CH, idempotency_key="tg-2").job.id
        poller, sender = Poller(svc, "w1"), Sender(svc, "w1")
        _drive(poller, sender, lambda: svc.provider.get_job(job_id).status == "running")
        steer_job(svc, team_id="T0001", user="U0001", ref=job_id[:12], action="cancel")
        _drive(poller, sender, lambda: len([m for m in slack.channel_messages(CH) if not m.get("thread_ts")]) >= 2)
        top = [m for m in slack.channel_messages(CH) if not m.get("thread_ts")]
        assert len(top) == 2 and "cancelled" in top[1]["text"]
        lines = thread_lines(slack, CH, top[0]["ts"])
        assert lines.count("Cancel requested by user") == 1 and lines.count("Job stopped by user") == 1
    finally:
        svc.close()
