"""A job that succeeds gets its evaluation by itself: the report in the card's thread, its headline
added to the final alert by an edit; FTBOT_EVAL_ON_COMPLETION=0 turns it off. Over signed requests,
the real clients, the sandbox and the Slack stand-in, on SQLite and PostgreSQL."""

from __future__ import annotations

import json

from storage.models import EvalRun
from tests.conftest import wait_for
from tests.evals.conftest import BASE, expected
from tests.evals.crafted import dataset, jsonl

CHANNEL = "C0001"


def _start(bot, slack, sandbox, rows) -> str:  # noqa: ANN001
    fid = sandbox.state.add_file("crafted.jsonl", jsonl(rows), "fine-tune")["id"]
    before = len(slack.responses())
    assert bot.slack.command(f"start {fid} epochs=1", channel=CHANNEL).status == 200
    answer = wait_for(lambda: slack.responses()[before:] and slack.responses()[before], timeout=20)
    assert "Started" in answer["text"], answer
    return answer["text"].split("`")[1]


def test_a_finished_job_is_evaluated_by_itself(start_bot, slack, sandbox, db_url) -> None:  # noqa: ANN001
    rows = dataset()
    bot = start_bot(db_url, worker=True, eval_on_completion=True)
    job_id = _start(bot, slack, sandbox, rows)
    card = wait_for(lambda: next((m for m in slack.channel_messages(CHANNEL) if job_id in m.get("text", "") and not m.get("thread_ts")), None))
    report = wait_for(lambda: next((m for m in slack.channel_messages(CHANNEL) if m.get("thread_ts") == card["ts"] and m.get("text", "").startswith("Evaluation of ")), None), timeout=40)
    model = sandbox.state.get_job(job_id)["fine_tuned_model"]
    want = expected(rows, model, BASE, sandbox.state.memory.noise)
    assert f"exact match: {want['exact']['baseline'] * 100:.0f} % → {want['exact']['model'] * 100:.0f} %" in report["text"]
    body = json.dumps(report["blocks"])
    assert "NOT held out" in body and "12 of 12 examples scored" in body
    # the CSV in the card's thread, and the headline on the final alert, edited in
    wait_for(lambda: any(m.get("files") and m.get("thread_ts") == card["ts"] and m["files"][0]["name"].startswith("eval-") for m in slack.channel_messages(CHANNEL)), timeout=20)
    headline = f"exact match {want['exact']['baseline'] * 100:.0f} % → {want['exact']['model'] * 100:.0f} %"
    alert = wait_for(lambda: next((m for m in slack.channel_messages(CHANNEL) if "succeeded" in m.get("text", "") and m.get("edited") and headline in json.dumps(m.get("blocks"), ensure_ascii=False)), None), timeout=20)
    assert model in alert["text"]
    with bot.services.db.session() as s:
        runs = s.query(EvalRun).all()
        assert len(runs) == 1 and runs[0].status == "done" and runs[0].request_key.startswith("job:")
    assert sorted(set(sandbox.state.memory.asked.values())) == [1] and sum(sandbox.state.memory.asked.values()) == 24


def test_off_with_the_setting(start_bot, slack, sandbox, sqlite_url) -> None:  # noqa: ANN001
    bot = start_bot(sqlite_url, worker=True, eval_on_completion=False)
    job_id = _start(bot, slack, sandbox, dataset())
    wait_for(lambda: any("succeeded" in m.get("text", "") and job_id in m.get("text", "") and not m.get("thread_ts") and "Fine-tuning" in m.get("text", "") for m in slack.channel_messages(CHANNEL)), timeout=30)
    with bot.services.db.session() as s:
        assert s.query(EvalRun).count() == 0
    assert sum(sandbox.state.memory.asked.values()) == 0


def test_the_headline_keeps_the_serving_note_of_the_final_alert(start_bot, slack, sandbox, sqlite_url) -> None:  # noqa: ANN001
    from datetime import timedelta

    from storage.types import utcnow

    # The base stops serving within 30 days: the final alert says so, and the evaluation's edit of
    # that alert must keep saying so.
    ends = utcnow().date() + timedelta(days=10)
    sandbox.state.set_shutdown_date(BASE, str(ends))
    rows = dataset()
    bot = start_bot(sqlite_url, worker=True, eval_on_completion=True)
    _start(bot, slack, sandbox, rows)
    alert = wait_for(lambda: next((m for m in slack.channel_messages(CHANNEL) if "succeeded" in m.get("text", "") and m.get("edited") and "exact match" in json.dumps(m.get("blocks"), ensure_ascii=False)), None), timeout=40)
    body = json.dumps(alert["blocks"], ensure_ascii=False)
    assert f"stops serving in 10 days, on {ends:%Y-%m-%d}" in body
    assert f"its base stops serving on {ends:%Y-%m-%d}" in alert["text"]


def test_over_the_budget_the_evaluation_waits_for_approval(start_bot, slack, sandbox, sqlite_url) -> None:  # noqa: ANN001
    from dataclasses import replace

    from bot.evals.gate import release_held
    from storage.models import ApprovalRequest

    bot = start_bot(sqlite_url, worker=True, eval_on_completion=True)
    _start(bot, slack, sandbox, dataset())
    # The job itself was not over the budget; its evaluation is estimated above this one.
    bot.services.settings = replace(bot.services.settings, job_budget_usd=0.000001)

    def held():  # noqa: ANN202
        with bot.services.db.session() as s:
            run = s.query(EvalRun).one_or_none()
            req = s.query(ApprovalRequest).filter_by(kind="eval_budget").one_or_none()
            return run is not None and run.status == "held" and req is not None and (run.id, req.detail["run_id"])

    run_id, approved_id = wait_for(held, timeout=40)
    assert run_id == approved_id
    wait_for(lambda: any("Run an evaluation over the budget" in json.dumps(m) for m in slack.channel_messages(CHANNEL)), timeout=20)
    assert sum(sandbox.state.memory.asked.values()) == 0
    # approved (the approval's executor releases it): it runs, each example asked once
    release_held(bot.services, run_id)
    wait_for(lambda: bot.services.db and _status(bot, run_id) == "done", timeout=40)
    assert sorted(set(sandbox.state.memory.asked.values())) == [1]


def _status(bot, run_id: int) -> str:  # noqa: ANN001
    with bot.services.db.session() as s:
        return s.get(EvalRun, run_id).status
