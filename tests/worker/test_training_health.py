"""Training-health alerts end to end: crafted metric streams in the sandbox (set over its HTTP control
routes), read by the real openai client, judged by the poller, delivered by the outbox sender to the
Slack stand-in; each said once, also when a second worker takes over the same database.
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

from sqlalchemy import select

from bot.datasets.register import register
from bot.datasets.validate import validate_file
from bot.jobs.lifecycle import start_job
from bot.outbox.sender import Sender
from bot.provider import JobSpec
from bot.worker.poller import Poller
from storage.models import Job, JobEvent, MetricPoint
from storage.types import utcnow
from tests.conftest import wait_for
from tests.helpers import chat_jsonl

MODEL = "gpt-4o-mini-2024-07-18"
CH = "C0HEALTH"


def _control(sandbox, path: str, body: dict | None = None) -> dict:  # noqa: ANN001
    """A sandbox control route over HTTP; json.dumps writes NaN as the bare token a Python-backed API sends."""
    req = urllib.request.Request(f"{sandbox.base}{path}", data=json.dumps(body or {}).encode(), method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read())


def _start(svc, sandbox, *, examples: int = 10, epochs: int = 3, training_file: str | None = None, curve: dict | None = None) -> str:  # noqa: ANN001
    """A job of examples x epochs steps (batch 1) whose metrics follow `curve` from its first step."""
    sandbox.state.timing.validating_seconds = 0.5  # time to set the curve before step 1
    fid = training_file or svc.provider.upload_file(chat_jsonl(examples), "train.jsonl").id
    spec = JobSpec(model=MODEL, training_file=fid, hyperparameters={"n_epochs": epochs, "batch_size": 1}, suffix="h")
    job_id = start_job(svc, spec, team_id="T0001", user="U0001", channel=CH, idempotency_key=f"k-{time.monotonic_ns()}").job.id
    if curve is not None:
        _control(sandbox, f"/_sandbox/jobs/{job_id}/curve", curve)
    return job_id


def _pump(poller: Poller, sender: Sender, until, timeout: float = 20.0):  # noqa: ANN001, ANN202
    def step():  # noqa: ANN202
        poller.cycle()
        sender.send_pending()
        return until()

    return wait_for(step, timeout=timeout, interval=0.05)


def _card_ts(slack) -> str:  # noqa: ANN001
    return slack.channel_messages(CH)[0]["ts"]


def _thread(slack, needle: str) -> list[dict]:  # noqa: ANN001
    card = _card_ts(slack)
    return [m for m in slack.channel_messages(CH) if m.get("thread_ts") == card and needle in m.get("text", "")]


def _channel_level(slack, needle: str) -> list[dict]:  # noqa: ANN001
    return [m for m in slack.channel_messages(CH) if not m.get("thread_ts") and needle in m.get("text", "")]


def _final(svc, job_id: str):  # noqa: ANN001, ANN202
    def done() -> bool:
        with svc.db.session() as s:
            return bool(s.scalar(select(Job.is_final).where(Job.provider_job_id == job_id)))

    return done


def _second_worker_posts_nothing(make_services, db_url: str, slack, job_id: str, *, reopen: bool, **settings) -> None:  # noqa: ANN001, ANN003
    """A fresh worker on the same database polls the job again; with `reopen` the job is made due
    once more and the job's own record of what it said is wiped, so only the outbox keys stand
    between a restart and a second post."""
    before = len(slack.channel_messages(CH))
    svc2 = make_services(db_url, **settings)
    with svc2.db.session() as s:
        row = s.scalars(select(Job).where(Job.provider_job_id == job_id)).one()
        assert row.health and row.health.get("said")
        row.health = {**row.health, "said": []}
        if reopen:
            row.is_final = False
        row.next_poll_at = utcnow()
    poller2, sender2 = Poller(svc2, "w2"), Sender(svc2, "w2")
    wait_for(lambda: poller2.cycle().polled, interval=0.05)
    sender2.send_pending()
    assert len(slack.channel_messages(CH)) == before
    with svc2.db.session() as s:
        assert s.scalars(select(Job).where(Job.provider_job_id == job_id)).one().health["said"]  # re-judged, refused by the outbox


def test_overfitting_names_the_best_step_and_checkpoint_then_the_best_checkpoint_on_success(db_url, make_services, slack, sandbox) -> None:  # noqa: ANN001
    sandbox.state.timing.step_seconds = 0.05
    svc = make_services(db_url)
    train = [2.0 - 0.05 * k for k in range(30)]  # keeps falling
    valid = [1.5 - 0.09 * k for k in range(10)] + [0.6 + 0.1 * k for k in range(1, 21)]  # best at step 10, then climbs
    job_id = _start(svc, sandbox, curve={"train_loss": train, "valid_loss": valid})
    poller, sender = Poller(svc, "w1"), Sender(svc, "w1")
    _pump(poller, sender, lambda: _final(svc, job_id)() and _thread(slack, "An earlier checkpoint did better"))
    over = _thread(slack, "Overfitting")
    assert len(over) == 1 and not _channel_level(slack, "Overfitting")  # not severe: the thread only
    body = json.dumps(over[0]["blocks"])
    # The smoothed validation loss is best a little after the raw minimum; the checkpoint at or
    # before it (the sandbox checkpoints each epoch, every 10 steps) is the one to try.
    assert "Validation loss was best at step 1" in body and "has not improved" in body
    assert over[0]["blocks"][0]["type"] == "alert" and over[0]["blocks"][0]["level"] == "warning"
    assert f"{MODEL}:sandbox:h:{job_id[-8:]}:ckpt-step-10" in body
    best = _thread(slack, "An earlier checkpoint did better")
    assert len(best) == 1
    best_body = json.dumps(best[0]["blocks"])
    assert "step 10" in best_body and ":ckpt-step-10" in best_body and "than the final model" in best_body
    _second_worker_posts_nothing(make_services, db_url, slack, job_id, reopen=True)


def test_nan_loss_is_severe_in_the_thread_and_the_channel_once(db_url, make_services, slack, sandbox) -> None:  # noqa: ANN001
    sandbox.state.timing.step_seconds = 0.05
    svc = make_services(db_url)
    train = [2.0, 1.9, 1.8, 1.7, float("nan"), 1.6, 1.5]
    job_id = _start(svc, sandbox, curve={"train_loss": train})
    poller, sender = Poller(svc, "w1"), Sender(svc, "w1")
    _pump(poller, sender, lambda: _final(svc, job_id)() and _channel_level(slack, "Training diverged"))
    assert len(_thread(slack, "Training diverged")) == 1
    alert = _channel_level(slack, "Training diverged")
    assert len(alert) == 1 and job_id in alert[0]["text"]
    assert "The training loss is nan at step 5" in json.dumps(alert[0]["blocks"])
    # Posted through the stand-in, which refuses a malformed alert block as Slack does.
    assert alert[0]["blocks"][0]["type"] == "alert" and alert[0]["blocks"][0]["level"] == "error"
    _second_worker_posts_nothing(make_services, db_url, slack, job_id, reopen=True)


def test_training_loss_climbing_past_a_fifth_of_the_steps_is_divergence(db_url, make_services, slack, sandbox) -> None:  # noqa: ANN001
    sandbox.state.timing.step_seconds = 0.05
    svc = make_services(db_url)
    train = [1.0] * 5 + [1.0 + 0.15 * k for k in range(1, 26)]
    job_id = _start(svc, sandbox, curve={"train_loss": train})
    poller, sender = Poller(svc, "w1"), Sender(svc, "w1")
    _pump(poller, sender, lambda: _final(svc, job_id)() and _channel_level(slack, "Training loss is climbing"))
    assert len(_thread(slack, "Training loss is climbing")) == 1
    assert len(_channel_level(slack, "Training loss is climbing")) == 1
    assert "its early level (1.0000)" in json.dumps(_thread(slack, "Training loss is climbing")[0]["blocks"])
    _second_worker_posts_nothing(make_services, db_url, slack, job_id, reopen=True)


def test_a_running_job_that_stops_reporting_is_stalled(db_url, make_services, slack, sandbox) -> None:  # noqa: ANN001
    sandbox.state.timing.step_seconds = 0.1
    svc = make_services(db_url, health_stall_minutes=0.02)  # a 1.2 s floor instead of 5 minutes
    job_id = _start(svc, sandbox, examples=50)  # 150 steps: it keeps running
    poller, sender = Poller(svc, "w1"), Sender(svc, "w1")

    def steps() -> int:
        with svc.db.session() as s:
            return s.scalar(select(Job.step).where(Job.provider_job_id == job_id)) or 0

    _pump(poller, sender, lambda: steps() >= 5)
    assert not _thread(slack, "stalled")  # steps arriving: no alarm
    assert _control(sandbox, f"/_sandbox/jobs/{job_id}/stall")["status"] == "running"
    _pump(poller, sender, lambda: _channel_level(slack, "Training seems stalled"))
    assert svc.provider.get_job(job_id).status == "running"
    assert len(_thread(slack, "Training seems stalled")) == 1
    assert "No new metrics for" in json.dumps(_thread(slack, "Training seems stalled")[0]["blocks"])
    # More polls of the silent job, by this worker and then by a new one: nothing more.
    for _ in range(5):
        poller.cycle()
        sender.send_pending()
    assert len(_channel_level(slack, "Training seems stalled")) == 1
    _second_worker_posts_nothing(make_services, db_url, slack, job_id, reopen=False, health_stall_minutes=0.02)


def test_a_job_queued_past_the_threshold_is_reported_once(db_url, make_services, slack, sandbox) -> None:  # noqa: ANN001
    sandbox.state.timing.queued_seconds = 60  # the provider is busy
    svc = make_services(db_url, health_queued_minutes=0.02)
    job_id = _start(svc, sandbox)
    poller, sender = Poller(svc, "w1"), Sender(svc, "w1")
    _pump(poller, sender, lambda: _thread(slack, "Still queued"))
    assert svc.provider.get_job(job_id).status == "queued"
    assert "has been queued for" in json.dumps(_thread(slack, "Still queued")[0]["blocks"])
    assert not _channel_level(slack, "Still queued")  # a long queue is not an emergency
    for _ in range(5):
        poller.cycle()
        sender.send_pending()
    assert len(_thread(slack, "Still queued")) == 1
    _second_worker_posts_nothing(make_services, db_url, slack, job_id, reopen=False, health_queued_minutes=0.02)


def test_billed_tokens_against_the_registered_datasets_estimate(db_url, make_services, slack, sandbox, tmp_path: Path) -> None:  # noqa: ANN001
    svc = make_services(db_url)
    path = tmp_path / "train.jsonl"
    path.write_bytes(chat_jsonl(10))
    report = validate_file(path, model=MODEL)
    reg = register(svc, team_id="T0001", name="train.jsonl", path=path, size=path.stat().st_size, sha256="ab" * 32, report=report, user_id="U0001")
    # The dataset check assumed its auto epoch count; the job asks for 2: the estimate scales per epoch.
    estimate = round(report.tokens.billed_total / report.tokens.epochs * 2)
    billed = round(estimate * 1.25)
    job_id = _start(svc, sandbox, epochs=2, training_file=reg.provider_file_id, curve={"trained_tokens": billed})
    poller, sender = Poller(svc, "w1"), Sender(svc, "w1")
    _pump(poller, sender, lambda: _final(svc, job_id)() and _thread(slack, "Billed tokens differ"))
    msg = json.dumps(_thread(slack, "Billed tokens differ")[0]["blocks"])
    assert f"{billed:,}" in msg and f"{estimate:,}" in msg and "+25%" in msg
    assert not _thread(slack, "An earlier checkpoint did better")
    _second_worker_posts_nothing(make_services, db_url, slack, job_id, reopen=True)


def test_billed_tokens_within_ten_percent_and_a_healthy_run_say_nothing(db_url, make_services, slack, sandbox, tmp_path: Path) -> None:  # noqa: ANN001
    svc = make_services(db_url)
    path = tmp_path / "train.jsonl"
    path.write_bytes(chat_jsonl(10))
    report = validate_file(path, model=MODEL)
    reg = register(svc, team_id="T0001", name="train.jsonl", path=path, size=path.stat().st_size, sha256="cd" * 32, report=report, user_id="U0001")
    estimate = round(report.tokens.billed_total / report.tokens.epochs * 2)
    job_id = _start(svc, sandbox, epochs=2, training_file=reg.provider_file_id, curve={"trained_tokens": round(estimate * 1.05)})
    poller, sender = Poller(svc, "w1"), Sender(svc, "w1")
    alerts = lambda: [m for m in _channel_level(slack, "succeeded") if m["ts"] != _card_ts(slack)]  # noqa: E731
    _pump(poller, sender, lambda: _final(svc, job_id)() and alerts())
    assert len(alerts()) == 1
    with svc.db.session() as s:
        health = s.scalars(select(Job).where(Job.provider_job_id == job_id)).one().health
    assert health["summary"]["points"] == 20 and not health.get("said")
    texts = [m.get("text", "") for m in slack.channel_messages(CH)]
    for title in ("Billed tokens", "Overfitting", "diverged", "climbing", "stalled", "checkpoint did better", "Still"):
        assert not any(title in t for t in texts), title


def test_health_alerts_off_says_nothing_even_about_a_nan_loss(db_url, make_services, slack, sandbox) -> None:  # noqa: ANN001
    sandbox.state.timing.step_seconds = 0.05
    svc = make_services(db_url, health_alerts=False)
    job_id = _start(svc, sandbox, curve={"train_loss": [2.0, float("nan")]})
    poller, sender = Poller(svc, "w1"), Sender(svc, "w1")
    alerts = lambda: [m for m in _channel_level(slack, "succeeded") if m["ts"] != _card_ts(slack)]  # noqa: E731
    _pump(poller, sender, lambda: _final(svc, job_id)() and alerts())
    assert not any("diverged" in m.get("text", "") for m in slack.channel_messages(CH))
    with svc.db.session() as s:
        row = s.scalars(select(Job).where(Job.provider_job_id == job_id)).one()
        # The summary is still kept (turning alerts on later judges the whole run), nothing was said.
        assert row.health["summary"]["nonfinite"] == [2, "training", "nan"] and not row.health.get("said")
        # The NaN step is stored without its loss; the event keeps it as the string JSON allows.
        assert s.scalar(select(MetricPoint.train_loss).where(MetricPoint.job_id == row.id, MetricPoint.step == 2)) is None
        data = s.scalars(select(JobEvent.data).where(JobEvent.job_id == row.id, JobEvent.type == "metrics")).all()
        assert {"step": 2, "train_loss": "NaN"}.items() <= next(d for d in data if d["step"] == 2).items()


def test_the_sandbox_bills_the_training_files_tokens_times_epochs_and_no_alert_follows(db_url, make_services, slack, sandbox, tmp_path: Path) -> None:  # noqa: ANN001
    """No crafted count: the sandbox bills what OpenAI bills, so a plain run matches the check."""
    svc = make_services(db_url)
    path = tmp_path / "train.jsonl"
    path.write_bytes((Path(__file__).parents[1] / "data" / "toy_chat_fine_tuning.jsonl").read_bytes() * 2)
    report = validate_file(path, model=MODEL)
    reg = register(svc, team_id="T0001", name="train.jsonl", path=path, size=path.stat().st_size, sha256="ef" * 32, report=report, user_id="U0001")
    job_id = _start(svc, sandbox, epochs=2, training_file=reg.provider_file_id)
    poller, sender = Poller(svc, "w1"), Sender(svc, "w1")
    alerts = lambda: [m for m in _channel_level(slack, "succeeded") if m["ts"] != _card_ts(slack)]  # noqa: E731
    _pump(poller, sender, lambda: _final(svc, job_id)() and alerts())
    with svc.db.session() as s:
        row = s.scalars(select(Job).where(Job.provider_job_id == job_id)).one()
        assert row.status == "succeeded"
        assert row.trained_tokens == report.tokens.billed_per_epoch * 2 == round(report.tokens.billed_total / report.tokens.epochs * 2)
        assert "billed_tokens" not in (row.health or {}).get("said", [])
    assert not any("Billed tokens" in m.get("text", "") + json.dumps(m.get("blocks", [])) for m in slack.channel_messages(CH))
