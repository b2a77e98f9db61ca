"""`/ft start | list | status | cancel | pause | resume` through signed requests to the running app."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from bot.messages.table import table_texts
from storage.models import AuditLog, Job, Subscription
from tests.conftest import wait_for


def _jobs_at_provider(sandbox) -> int:  # noqa: ANN001
    return len(sandbox.state.jobs)


def test_start_creates_job_subscribes_and_posts_card(db_url, make_chat, slack, sandbox) -> None:  # noqa: ANN001
    chat = make_chat(db_url)
    fid = chat.upload()
    answer = chat.ask(f"start {fid} epochs=3 batch=2 lr=0.5 suffix=support-v1 seed=7")
    assert answer["response_type"] == "ephemeral" and ":rocket: Started `ftjob-" in answer["text"]
    job_id = answer["text"].split("`")[1]
    card = wait_for(lambda: slack.channel_messages("C0001"))[0]
    assert job_id in card["text"] and card["metadata"]["event_type"] == "ftbot_message"
    sim = sandbox.state.jobs[job_id].obj
    assert sim["method"]["supervised"]["hyperparameters"]["n_epochs"] == 3
    assert sim["method"]["supervised"]["hyperparameters"]["learning_rate_multiplier"] == 0.5
    assert sim["seed"] == 7 and sim["metadata"]["ftbot_suffix"] == "support-v1"
    with chat.bot.services.db.session() as s:
        job = s.scalar(select(Job))
        assert (job.provider_job_id, job.started_by, job.team_id, job.origin_channel) == (job_id, "U0001", "T0001", "C0001")
        assert s.scalar(select(Subscription.card_ts)) == card["ts"]
        assert s.scalar(select(AuditLog.action)) == "job.start"


def test_start_delivered_twice_creates_one_job(chat, slack, sandbox) -> None:  # noqa: ANN001
    fid = chat.upload()
    first = chat.ask(f"start {fid}", trigger_id="123.456.abc")
    again = chat.ask(f"start {fid}", trigger_id="123.456.abc")
    assert "Started" in first["text"] and "Already started" in again["text"]
    assert _jobs_at_provider(sandbox) == 1
    wait_for(lambda: slack.channel_messages("C0001"))
    assert len(slack.channel_messages("C0001")) == 1  # one card


@pytest.mark.parametrize(
    ("args", "expect"),
    [
        ("epochs=0", "`epochs` must be from 1 to 50"),
        ("epochs=51", "`epochs` must be from 1 to 50"),
        ("epochs=three", "`epochs` must be a whole number"),
        ("batch=1000", "`batch` must be from 1 to 256"),
        ("lr=-1", "`lr` must be above 0"),
        ("lr=fast", "`lr` must be a number"),
        ("suffix=" + "x" * 65, "at most 64 characters"),
        ("colour=blue", "Unknown option `colour`"),
        ("epochs=2 epochs=3", "`epochs` is given twice"),
        ("beta=0.1", "`beta` only applies to `method=dpo`"),
        ("method=rl", "`method` must be supervised or dpo"),
        ("extra.jsonl", "needs one training file, got 2 files"),
    ],
)
def test_start_rejects_bad_arguments_and_creates_nothing(chat, sandbox, args: str, expect: str) -> None:  # noqa: ANN001
    fid = chat.upload()
    answer = chat.ask(f"start {fid} {args}")
    assert expect in answer["text"] and "Usage: `/ft start FILE" in answer["text"]
    assert answer["response_type"] == "ephemeral"
    assert _jobs_at_provider(sandbox) == 0


def test_start_unknown_file(chat, sandbox) -> None:  # noqa: ANN001
    answer = chat.ask("start file-doesnotexist")
    assert "Unknown training file `file-doesnotexist`" in answer["text"]
    answer = chat.ask("start my-dataset.jsonl")
    assert "Unknown training file `my-dataset.jsonl`" in answer["text"]
    assert _jobs_at_provider(sandbox) == 0


def test_start_by_forbidden_user_is_refused(make_chat, sandbox, slack, sqlite_url) -> None:  # noqa: ANN001
    chat = make_chat(sqlite_url, operators=("U0BOSS", "S0OPS"))
    slack.set_usergroup("S0OPS", ["U0OPS1"])
    fid = chat.upload()
    refused = chat.ask(f"start {fid}", user="U0001")
    assert ":lock: Only operators" in refused["ack"]["text"]
    assert _jobs_at_provider(sandbox) == 0
    # a member of the operators' user group may
    assert "Started" in chat.ask(f"start {fid}", user="U0OPS1")["text"]
    # and everyone may look
    assert "Fine-tuning jobs" in json.dumps(chat.ask("list", user="U0001")["blocks"])


def test_start_provider_failures_read_as_people_talk(chat, sandbox) -> None:  # noqa: ANN001
    sandbox.state.daily_job_limit = 1
    fid = chat.upload()
    chat.ask(f"start {fid}")
    refused = chat.ask(f"start {fid} epochs=2")
    assert refused["text"].startswith(":x: OpenAI refused:") and "daily limit of 1 fine-tuning jobs for gpt-4o-mini" in refused["text"]
    sandbox.state.daily_job_limit = 0
    sandbox.state.faults.rate = 1.0
    sandbox.state.faults.kinds = ("503",)
    down = chat.ask(f"start {fid} epochs=3")
    assert "OpenAI is having trouble" in down["text"] or "unreachable" in down["text"]
    assert len(sandbox.state.jobs) == 1


def test_model_refused_by_provider(chat, sandbox) -> None:  # noqa: ANN001
    fid = chat.upload()
    answer = chat.ask(f"start {fid} model=gpt-9-ultra")
    assert "OpenAI refused: Model gpt-9-ultra is not available" in answer["text"]


def test_list_status_and_prefix_resolution(chat, sandbox) -> None:  # noqa: ANN001
    job_id = chat.start()
    listing = chat.ask("list")
    rows = table_texts(next(b for b in listing["blocks"] if b["type"] == "table"))
    assert rows[0] == ["Status", "Progress", "Job", "Base model", "Fine-tuned model", "Started by", "Created (UTC)"]
    assert len(rows) == 2 and rows[1][2:4] == [job_id, "gpt-4o-mini-2024-07-18"] and rows[1][5] == "<@U0001>"
    assert rows[1][0].split(" ", 1)[1] in {"validating files", "queued", "running", "succeeded"}
    assert job_id in listing["text"]  # the text fallback still lists the jobs
    status = chat.ask(f"status {job_id[:12]}")
    blocks = json.dumps(status["blocks"])
    assert job_id in blocks and "Base model" in blocks and "started by <@U0001>" in blocks
    wait_for(lambda: sandbox.state.get_job(job_id)["status"] == "succeeded")
    done = json.dumps(chat.ask(f"status {job_id}")["blocks"])
    assert "Train loss" in done


def test_unknown_and_ambiguous_job_ids(chat, sandbox) -> None:  # noqa: ANN001
    assert "No job matches `ftjob-nope`" in chat.ask("status ftjob-nope")["text"]
    fid = chat.upload()
    chat.ask(f"start {fid}")
    chat.ask(f"start {fid} seed=1")
    ambiguous = chat.ask("status ftjob-")
    assert "matches several jobs" in ambiguous["text"]
    assert "needs exactly one job id" in chat.ask("status")["text"]
    assert "too short" in chat.ask("status ft")["text"]


def test_jobs_are_scoped_to_the_team(chat) -> None:  # noqa: ANN001
    job_id = chat.start()
    reply = chat.bot.slack.command(f"status {job_id}", team_id="T0OTHER")
    assert reply.status == 200
    wait_for(lambda: [r for r in chat.slack.responses() if f"No job matches `{job_id}`" in r.get("text", "")])
    assert job_id in json.dumps(chat.ask(f"status {job_id}")["blocks"])  # the job's own team sees it


def test_pause_resume_cancel(chat, sandbox, slack) -> None:  # noqa: ANN001
    # The sandbox holds the job in validation until told otherwise: no race with its timing.
    sandbox.state.timing.validating_seconds = 3600
    sandbox.state.timing.step_seconds = 0.5
    job_id = chat.start(extra="epochs=3 batch=1")
    assert sandbox.state.get_job(job_id)["status"] == "validating_files"
    assert "is validating files: only a running job can be paused" in chat.ask(f"pause {job_id}")["text"]
    assert "only a paused job can be resumed" in chat.ask(f"resume {job_id}")["text"]
    assert sandbox.state.get_job(job_id)["status"] == "validating_files"
    sandbox.state.timing.validating_seconds = 0.05
    wait_for(lambda: sandbox.state.get_job(job_id)["status"] == "running")
    assert "Paused" in chat.ask(f"pause {job_id}")["text"]
    assert sandbox.state.get_job(job_id)["status"] == "paused"
    assert "Resuming" in chat.ask(f"resume {job_id}")["text"]
    assert sandbox.state.get_job(job_id)["status"] != "paused"
    assert "Cancelling" in chat.ask(f"cancel {job_id}")["text"]
    assert sandbox.state.get_job(job_id)["status"] == "cancelled"
    assert "only a queued, running or paused job can be cancelled" in chat.ask(f"cancel {job_id}")["text"]


def test_steering_forbidden_unknown_and_provider_down(make_chat, sandbox, sqlite_url) -> None:  # noqa: ANN001
    chat = make_chat(sqlite_url, operators=("U0BOSS",))
    job_id = chat.start(user="U0BOSS")
    for verb in ("cancel", "pause", "resume"):
        assert ":lock:" in chat.ask(f"{verb} {job_id}", user="U0001")["ack"]["text"]
        assert "No job matches" in chat.ask(f"{verb} ftjob-unknown", user="U0BOSS")["text"]
    sandbox.state.faults.rate = 1.0
    sandbox.state.faults.kinds = ("500",)
    assert "OpenAI is having trouble" in chat.ask(f"cancel {job_id}", user="U0BOSS")["text"]
    sandbox.state.faults.rate = 0
    assert sandbox.state.get_job(job_id)["status"] != "cancelled"


def test_start_without_arguments_opens_the_form(chat, slack) -> None:  # noqa: ANN001
    chat.upload()
    chat.ask("start", expect_answer=False)
    opened = wait_for(lambda: slack.calls("views.open"))[0].args
    view = opened["view"]
    assert view["callback_id"] == "start_job"
    blocks = {b["block_id"]: b for b in view["blocks"]}
    assert {"file", "model", "epochs", "batch", "lr", "suffix", "method"} <= set(blocks)
    assert "train.jsonl" in json.dumps(blocks["file"])


def test_list_command_pages(chat) -> None:  # noqa: ANN001
    fid = chat.upload()
    for i in range(3):
        chat.ask(f"start {fid} seed={i}")
    page = chat.ask("list 2")
    text = json.dumps(page["blocks"], ensure_ascii=False)
    assert "(1–2 of 3)" in text and '"value": "2"' in text
    assert "`lots` is not a number from 1 to 100" in chat.ask("list lots")["text"]
    with chat.bot.services.db.session() as s:
        assert s.scalar(select(func.count()).select_from(Job)) == 3
