"""Retirement warnings end to end: a model made through `/ft start`, the worker's check, the Slack post.

Each threshold (30, 7, 1 days) is posted once, however often the check runs and across worker restarts,
on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

from sqlalchemy import select

from bot.messages.table import table_texts
from bot.worker.runner import Worker
from storage.models import Job
from storage.types import utcnow
from tests.conftest import wait_for
from tests.helpers import chat_jsonl

CH = "C0001"
BASE = "gpt-4o-mini-2024-07-18"


def _made_model(bot, sandbox) -> tuple[str, str]:  # noqa: ANN001
    fid = sandbox.state.add_file("train.jsonl", chat_jsonl(12), "fine-tune")["id"]
    assert bot.slack.command(f"start {fid} epochs=1 batch=4", user="U0001", channel=CH).status == 200

    def done():  # noqa: ANN202
        with bot.services.db.session() as s:
            job = s.scalar(select(Job).where(Job.fine_tuned_model.is_not(None)))
            return job and (job.provider_job_id, job.fine_tuned_model)

    return wait_for(done, timeout=20)


def _warnings(slack) -> list[str]:  # noqa: ANN001
    return [m["text"] for m in slack.channel_messages(CH) if "stops serving" in (m.get("text") or "")]


def test_each_threshold_is_posted_once(db_url, start_bot, slack, sandbox, tmp_path) -> None:  # noqa: ANN001
    bot = start_bot(db_url, worker=True)
    job_id, model = _made_model(bot, sandbox)
    bot.services.extras.pop("worker").stop()
    today = utcnow().date()
    settings = bot.services.settings
    seen: list[str] = []
    for days_left, threshold_text in ((20, "in 20 days"), (5, "in 5 days"), (1, "tomorrow")):
        f = tmp_path / f"retire-{days_left}.json"
        f.write_text(json.dumps({BASE: {"training_ends": str(today), "serving_ends": str(today + timedelta(days=days_left))}}))
        bot.services.settings = replace(settings, retirements_file=str(f))
        for _restart in range(2):  # a second worker (a restart) must not post it again
            w = Worker(bot.services, lease_seconds=5, team_id="T0001")
            w.warn_retirements()
            w.sender.send_pending()
        seen = _warnings(slack)
        assert len([t for t in seen if threshold_text in t]) == 1, seen
    assert len(seen) == 3
    assert all(model in t for t in seen)
    post = next(m for m in slack.channel_messages(CH) if "tomorrow" in (m.get("text") or ""))
    blocks = json.dumps(post["blocks"])
    assert "What to do" in blocks and job_id in blocks and "<@U0001>" in blocks
    # An `alert` block leads each warning (the stand-in checks it as Slack does): an error within a week.
    levels = {t: m["blocks"][0]["level"] for m in slack.channel_messages(CH) for t in ("in 20 days", "in 5 days", "tomorrow") if t in (m.get("text") or "")}
    assert levels == {"in 20 days": "warning", "in 5 days": "error", "tomorrow": "error"}
    assert post["blocks"][0]["type"] == "alert" and model in post["blocks"][0]["text"]["text"]

    # `/ft models` shows the end-of-serving date of each model.
    before = len(slack.responses())
    bot.slack.command("models", user="U0001", channel=CH)
    answer = wait_for(lambda: slack.responses()[before:] and slack.responses()[before])
    rows = table_texts(next(b for b in answer["blocks"] if b["type"] == "table"))
    assert [model, job_id, "<@U0001>", f"{today + timedelta(days=1):%Y-%m-%d} (1 day left, FTBOT_RETIREMENTS)"] in rows


def test_models_without_an_announced_end_are_left_alone_and_notify_channel_wins(db_url, start_bot, slack, sandbox, tmp_path) -> None:  # noqa: ANN001
    bot = start_bot(db_url, worker=True, notify_channel="C0NOTIFY")
    _made_model(bot, sandbox)
    bot.services.extras.pop("worker").stop()
    # The provider says the end is far off (the live date beats the table's 2027-01-14, so this
    # holds whatever today is): nobody is warned.
    sandbox.state.set_shutdown_date(BASE, str(utcnow().date() + timedelta(days=400)))
    w = Worker(bot.services, lease_seconds=5, team_id="T0001")
    w.warn_retirements()
    w.sender.send_pending()
    assert _warnings(slack) == [] and not [m for m in slack.channel_messages("C0NOTIFY") if "stops serving" in (m.get("text") or "")]
    f = tmp_path / "r.json"
    f.write_text(json.dumps({BASE: {"serving_ends": str(utcnow().date() + timedelta(days=6))}}))
    bot.services.settings = replace(bot.services.settings, retirements_file=str(f))
    w.warn_retirements()
    w.sender.send_pending()
    notified = [m["text"] for m in slack.channel_messages("C0NOTIFY") if "stops serving" in (m.get("text") or "")]
    assert len(notified) == 1 and "in 6 days" in notified[0] and _warnings(slack) == []
