"""A real Ray head (CPU, one core), the real `ray` job client, the tiny trainer really training, the
bot over signed Slack requests and the Slack stand-in: start, card, events, metrics, chart,
checkpoints, a worker restart, cancel and a crash."""

from __future__ import annotations

import json
import re

from sqlalchemy import func, select

from bot.jobs.launch import idempotency_key
from bot.provider.base import JobSpec
from storage.models import Checkpoint, Job, JobEvent, MetricPoint
from tests.conftest import wait_for
from tests.helpers import chat_jsonl, thread_lines
from tests.ray.conftest import CHANNEL

TEAM = "T0001"


def _started(answer: dict) -> str:
    assert "Started" in answer["text"], answer
    return answer["text"].split("`")[1]


def _top(slack) -> list[dict]:  # noqa: ANN001
    return sorted((m for m in slack.channel_messages(CHANNEL) if not m.get("thread_ts")), key=lambda m: float(m["ts"]))


def _card(slack, job_id: str) -> dict | None:  # noqa: ANN001
    return next((m for m in _top(slack) if job_id in (m.get("text") or "") and "Base model" in json.dumps(m.get("blocks"))), None)


def _alerts(slack, job_id: str) -> list[dict]:  # noqa: ANN001
    card = _card(slack, job_id)
    return [m for m in _top(slack) if card is not None and m["ts"] != card["ts"] and job_id in json.dumps(m)]


def test_a_ray_job_from_slack_to_alert_and_chart_once_across_a_worker_restart(ray_team) -> None:  # noqa: ANN001
    # Polled twice a second: each read holds several steps of chatter, folded into one line.
    team = ray_team("--step-seconds", "0.1", "--chatter", "12", "--save-steps", "10", poll_interval=0.5)
    ray = team.provider
    train = ray.upload_file(chat_jsonl(12), "train.jsonl")
    # The same bytes again: the stored dataset is reused (its id is its content's hash).
    assert ray.upload_file(chat_jsonl(12), "again.jsonl").id == train.id
    valid = ray.upload_file(chat_jsonl(5), "valid.jsonl")
    assert {f.id for f in ray.list_files()} == {train.id, valid.id}
    assert (team.storage / "datasets" / f"{train.id}.jsonl").read_bytes() == chat_jsonl(12)

    # The first delivery of this start reached Ray but its answer was lost (no row in ftbot's
    # database): the redelivered request gets that very job, Ray refusing a second submission.
    text = f"start {train.id} validation={valid.id} epochs=2 batch=4 lr=0.0002 suffix=ray-e2e"
    trigger = "111.222.ray-e2e"
    key = idempotency_key(TEAM, "U0001", CHANNEL, trigger, text.partition(" ")[2])
    spec = JobSpec(model="Qwen/Qwen2.5-0.5B-Instruct", training_file=train.id, validation_file=valid.id, hyperparameters={"n_epochs": 2, "batch_size": 4, "learning_rate": 0.0002}, suffix="ray-e2e")
    first = ray.create_job(spec, idempotency_key=key)
    answer = team.ask(text, trigger_id=trigger)
    job_id = _started(answer)
    assert job_id == key == first.id
    assert "batch_size=4" in answer["text"] and "learning_rate=0.0002" in answer["text"] and "n_epochs=2" in answer["text"]
    assert [j.id for j in ray.list_jobs(limit=100).jobs].count(job_id) == 1
    # Slack delivering the same command once more: the database's key answers, nothing new.
    again = team.ask(text, trigger_id=trigger)
    assert "Already started" in again["text"] and job_id in again["text"]
    assert sum(1 for j in ray.list_jobs(limit=100).jobs if j.suffix == "ray-e2e") == 1

    # Running: the card shows progress, the thread gets the trainer's lines, grouped.
    slack = team.slack
    wait_for(lambda: (c := _card(slack, job_id)) and "running" in c["text"], timeout=60)
    card_ts = _card(slack, job_id)["ts"]
    wait_for(lambda: any("[rank0]" in ln for ln in thread_lines(slack, CHANNEL, card_ts)), timeout=30)
    blocks = json.dumps(_card(slack, job_id)["blocks"])
    assert "job_cancel" in blocks and "job_pause" not in blocks  # Ray cannot pause: no button

    # The worker process dies; a new one (new adapter, nothing in memory) takes over from the database.
    services = team.services
    services.extras.pop("worker").stop()
    assert ray.get_job(job_id).status == "running"
    from bot.provider.factory import make_providers
    from bot.services import build_services
    from bot.worker.runner import Worker

    providers, _ = make_providers(services.settings, max_retries=0, timeout=10)
    fresh = build_services(services.settings, providers=providers)
    worker = Worker(fresh, lease_seconds=5, send_interval=0.05, team_id=TEAM).start()
    try:
        wait_for(lambda: _alerts(slack, job_id), timeout=90)
        chart = lambda: [f for m in slack.channel_messages(CHANNEL) for f in (m.get("files") or []) if f.get("name", "").startswith("loss-")]  # noqa: E731
        wait_for(chart, timeout=30)
        wait_for(lambda: "succeeded" in (slack.calls("chat.update")[-1].args.get("text") or ""), timeout=10)
        n = len(slack.calls())
        worker.poller.cycle()
        worker.sender.send_pending()
        assert len(slack.calls()) == n  # nothing left to say
    finally:
        worker.stop()
        fresh.close()

    output = str(team.storage / "outputs" / job_id)
    alerts = _alerts(slack, job_id)
    assert len(alerts) == 1 and "succeeded" in alerts[0]["text"], [a["text"] for a in alerts]
    assert output in json.dumps(alerts[0]["blocks"])
    assert len(chart()) == 1
    final_card = json.dumps(slack.calls("chat.update")[-1].args["blocks"])
    with services.db.session() as s:
        row = s.scalars(select(Job)).one()
        total = row.total_steps
        assert row.status == "succeeded" and row.fine_tuned_model == output and row.step == total and total >= 20
        # Every step a point, and the two evaluations (one per epoch) joined to their steps.
        points = s.scalars(select(MetricPoint).order_by(MetricPoint.step)).all()
        assert [p.step for p in points] == list(range(1, total + 1))
        assert all(p.train_loss is not None for p in points)
        assert [p.step for p in points if p.valid_loss is not None] == [total // 2, total]
        assert points[-1].train_loss < points[0].train_loss  # it did learn
        ckpts = sorted(s.scalars(select(Checkpoint.step_number)).all())
        stored_ids = s.scalars(select(JobEvent.provider_event_id)).all()
        assert len(stored_ids) == len(set(stored_ids))
        # One metric event per step, plus an evaluation read apart from its step's training loss.
        assert total <= s.scalar(select(func.count()).select_from(JobEvent).where(JobEvent.type == "metrics")) <= total + 2
    assert f"step {total}/{total}" in final_card and "100%" in final_card and output in final_card
    on_disk = sorted(int(p.name.split("-")[1]) for p in (team.storage / "outputs" / job_id).glob("checkpoint-*"))
    assert ckpts == on_disk == list(range(10, total, 10))

    # The thread: each line once across the restart, chatter folded, metrics kept to the card.
    lines = thread_lines(slack, CHANNEL, card_ts)
    log_text = team.provider._client().get_job_logs(job_id)
    chatter = log_text.count("[rank0]")
    assert chatter == 12 * total
    assert len(lines) == len(set(lines)), [ln for ln in lines if lines.count(ln) > 1][:5]
    assert 0 < sum("[rank0]" in ln for ln in lines) < chatter / 2
    assert any(re.search(r"… \d+ more log lines \(lines \d+–\d+ of the job's log", ln) for ln in lines)
    with services.db.session() as s:
        shown = s.scalar(select(func.count()).select_from(JobEvent).where(JobEvent.type != "metrics"))
    assert len(lines) == shown  # each stored line event in the thread exactly once
    assert any("checkpoint-10" in ln for ln in lines) and any("Total optimization steps" in ln for ln in lines)
    assert not any(ln.startswith("Step ") or "'loss'" in ln for ln in lines)

    # Commands read the same state.
    events = json.dumps(team.ask(f"events {job_id}"))
    assert "Saving model checkpoint to" in events and "{'train_runtime'" in events
    listed = json.dumps(team.ask(f"checkpoints {job_id}"))
    assert "checkpoint-10" in listed
    assert output in json.dumps(team.ask("models"))


def test_cancel_from_slack_stops_the_ray_job_and_pause_is_refused(ray_team) -> None:  # noqa: ANN001
    team = ray_team("--step-seconds", "0.5", "--save-steps", "1000")
    ray = team.provider
    train = ray.upload_file(chat_jsonl(12), "train.jsonl")
    job_id = _started(team.ask(f"start {train.id} epochs=3"))
    slack = team.slack
    wait_for(lambda: (c := _card(slack, job_id)) and "running" in c["text"], timeout=60)

    def step() -> int | None:
        with team.services.db.session() as s:
            return s.scalars(select(Job.step)).one()

    wait_for(lambda: (step() or 0) >= 2, timeout=30)

    paused = team.ask(f"pause {job_id}")
    assert "Ray cannot pause a job" in paused["text"], paused
    assert ray.get_job(job_id).status == "running"

    answer = team.ask(f"cancel {job_id}")
    assert job_id in json.dumps(answer), answer
    wait_for(lambda: ray.get_job(job_id).metadata["ray_status"] == "STOPPED", timeout=30)
    alert = wait_for(lambda: _alerts(slack, job_id), timeout=30)
    assert len(alert) == 1 and "cancelled" in alert[0]["text"]
    with team.services.db.session() as s:
        row = s.scalars(select(Job)).one()
        assert row.status == "cancelled" and row.is_final and row.fine_tuned_model is None
        assert row.step is not None and row.step < row.total_steps  # stopped mid-training


def test_a_crashed_trainer_shows_its_last_log_lines_in_the_alert(ray_team) -> None:  # noqa: ANN001
    team = ray_team("--fail-at-step", "3")
    ray = team.provider
    train = ray.upload_file(chat_jsonl(12), "train.jsonl")
    job_id = _started(team.ask(f"start {train.id}"))
    slack = team.slack
    alerts = wait_for(lambda: _alerts(slack, job_id), timeout=60)
    assert len(alerts) == 1
    alert = json.dumps(alerts[0])
    assert "failed" in alerts[0]["text"]
    assert "The trainer stopped with exit code 1" in alert and "CUDA out of memory" in alert and "Traceback" in alert
    with team.services.db.session() as s:
        row = s.scalars(select(Job)).one()
        assert row.status == "failed" and row.error["message"].endswith("(stand-in crash)")
        assert row.step == 2  # two steps logged before the crash
